"""The Streamlit app (``opslens ui``): explore fleet data, score instances, browse every run.

``app.py`` is the entry script; ``pages/`` holds one thin script per page that calls
the page's ``render()`` in ``views/``; ``state.py`` is the session's data and the
cached computations every page shares.
"""
