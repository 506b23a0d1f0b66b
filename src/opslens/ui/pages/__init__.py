"""The entry scripts of the app's generic pages: each runs its view's ``render()`` when
Streamlit executes it (as ``__main__``), and nothing when imported."""
