"""The fleet recipe's app pages (``RECIPE.ui_pages``): Series, Fleet and Known failures.

Each module is a page: ``TITLE`` and ``render()`` (the app passes ``render`` to
``st.Page``), and a guard that renders the module's page when the file is run as a
script (``streamlit run``, ``AppTest.from_file``). The guard imports the module rather
than using the script's own copies, so the classes a page keeps in the session are
the same ones every other page checks. These are UI code kept in the recipe's
package: they alone in ``opslens.recipes`` may use Streamlit, the app's session
state (:mod:`opslens.ui.state`) and the runner (see the import contracts in
pyproject.toml). The app finds them through the registry, never by name.
"""
