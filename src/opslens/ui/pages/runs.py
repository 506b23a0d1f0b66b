"""The Runs page (logic in opslens.ui.views.runs)."""

from opslens.ui.views.runs import render

if __name__ == "__main__":  # Streamlit runs a page script as __main__
    render()
