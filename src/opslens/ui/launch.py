"""The process ``opslens ui`` starts: the recipe pages' in-memory runs of the project start in
the background first, then Streamlit's own command line serves the app in this process.

Streamlit runs the app's script only when a browser opens a session, so runs started from
the script (:func:`opslens.ui.analysis.warm`) begin only then; started here, while the
server comes up, they are the same cached runs (``st.cache_resource`` is per process), so
a recipe page opened soon after the app finds its run done or nearly done.

    python -m opslens.ui.launch run path/to/app.py --server.port 8501

Example:
    >>> warm_names(None)
    []
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from opslens.config import ProjectConfig

__all__ = ["main", "warm_names", "warm_start"]


def warm_names(config: ProjectConfig | None) -> list[str]:
    """The analyses whose in-memory runs the recipe pages use (the fleet pages work on the
    Data page's table instead)."""
    from opslens.ui.app import WITHOUT_PROJECT

    if config is None:
        return []
    return [a.name for a in config.analyses if a.recipe not in WITHOUT_PROJECT]


def warm_start() -> None:
    """Start the in-memory runs of ``$OPSLENS_PROJECT``'s analyses in the background (nothing
    without a project; a project that does not load is the app's to report)."""
    from opslens.ui.analysis import warm
    from opslens.ui.state import PROJECT_ENV

    path = os.environ.get(PROJECT_ENV, "")
    if not path or not Path(path).is_file():
        return
    try:
        from opslens.api import load_project

        config = load_project(path)
    except Exception:  # the app's pages show the error
        return
    warm(warm_names(config))


def main(argv: Sequence[str] | None = None) -> None:
    """Warm, then run Streamlit's command line with ``argv`` (``run APP --server...``)."""
    warm_start()
    from streamlit.web import cli

    sys.argv = ["streamlit", *(sys.argv[1:] if argv is None else argv)]
    cli.main()


if __name__ == "__main__":
    main()
