"""The Data page: read, name, filter and use a table (the logic is in opslens.ui.views.data)."""

from opslens.ui.views.data import render

if __name__ == "__main__":  # Streamlit runs a page script as __main__
    render()
