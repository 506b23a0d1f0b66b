"""The Score page (logic in opslens.ui.views.score)."""

from opslens.ui.views.score import render

if __name__ == "__main__":  # Streamlit runs a page script as __main__
    render()
