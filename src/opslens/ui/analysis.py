"""What a recipe's own pages share: choose one of the project's analyses of the recipe and
run its stages in memory (:func:`opslens.runner.run_in_memory`), once per server.

The in-memory run is the recipe's own stages on the analysis's own source, seeded from
its ``random_state``; it is cached on the project file (path and modification time) and
the analysis name, so every page and every session reuses it, and an edited
project.yaml runs again. Nothing is written: the run folder and the registry are the
CLI's (``opslens run``) and the Runs page's.

Example:
    >>> baseline_rows({"model.crps": 5.9, "baseline.own.crps": 6.0, "rows": 3.0})
    [{'metric': 'crps', 'model': 5.9, 'own': 6.0}]
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from opslens.config import AnalysisConfig, ProjectConfig
from opslens.runner.memory import MemoryRun, run_in_memory
from opslens.ui.images import show_figure
from opslens.ui.state import PROJECT_ENV, project, show_error

__all__ = [
    "baseline_rows",
    "choose_analysis",
    "figure",
    "memory_run",
    "open_page",
    "show_baselines",
]


def choose_analysis(recipe: str, *, key: str) -> tuple[ProjectConfig, AnalysisConfig] | None:
    """A select box of the project's ``recipe`` analyses; the project and the one chosen, or
    None (a message says why: no project, or no analysis of that recipe)."""
    config = project()
    if config is None:
        st.info(
            f"Start the app with a project that has a {recipe} analysis: "
            "`opslens ui -p project.yaml` (or `opslens demo` first, for a ready one)."
        )
        return None
    names = [a.name for a in config.analyses if a.recipe == recipe]
    if not names:
        st.info(f"The project has no {recipe} analysis: add one to project.yaml.")
        return None
    name = st.selectbox("Analysis", names, key=key) if len(names) > 1 else names[0]
    return config, config.analysis(str(name))


def open_page(
    title: str, recipe: str, *, key: str
) -> tuple[ProjectConfig, AnalysisConfig, MemoryRun] | None:
    """A recipe page's start: its title, the analysis chosen and its in-memory run with a
    model; None when any is missing (the page then says why)."""
    st.title(title)
    chosen = choose_analysis(recipe, key=key)
    if chosen is None:
        return None
    config, analysis = chosen
    run = memory_run(config, analysis.name)
    if run is None or run.model is None:
        return None
    return config, analysis, run


@st.cache_resource(show_spinner=False, max_entries=16)
def _run(path: str, mtime: float, name: str) -> MemoryRun:
    from opslens.api import load_project

    return run_in_memory(load_project(path), name)


#: analyses run at once when the app starts: two, so a page late in the navigation does not
#: wait for every run before its own (the stages release the GIL in polars, numpy, XGBoost)
WARM_THREADS = 2


@st.cache_resource(show_spinner=False, max_entries=4)
def _warming(path: str, mtime: float, names: tuple[str, ...]) -> list[threading.Thread]:
    todo = list(reversed(names))  # the project's order; list.pop is atomic under the GIL

    def work() -> None:
        while todo:
            try:
                name = todo.pop()
            except IndexError:  # the other thread took the last one
                return
            try:
                _run(path, mtime, name)
            except Exception:  # the page shows the error when it is opened
                continue

    threads = [
        threading.Thread(target=work, name=f"opslens-warm-{i}", daemon=True)
        for i in range(min(WARM_THREADS, len(names)))
    ]
    for thread in threads:
        thread.start()
    return threads


def warm(names: Sequence[str]) -> None:
    """Start, once per server and project file, the in-memory runs of the analyses ``names``
    in the background, so a recipe page opened later finds its run ready (a page opened
    while its run is still going waits for that run rather than starting another)."""
    path = os.environ.get(PROJECT_ENV, "")
    if names and path and Path(path).is_file():
        _warming(path, Path(path).stat().st_mtime, tuple(names))


def memory_run(config: ProjectConfig, name: str) -> MemoryRun | None:
    """The in-memory run of analysis ``name`` (cached per project file and analysis), or None
    with the error shown in the page."""
    path = os.environ.get(PROJECT_ENV, "")
    mtime = Path(path).stat().st_mtime if path and Path(path).is_file() else 0.0
    try:
        with st.spinner(f"Running {name}'s stages in memory…"):
            if path and mtime:
                return _run(path, mtime, name)
            return run_in_memory(config, name)
    except Exception as e:
        show_error(e)
        return None


def figure(run: MemoryRun, name: str, *, caption: str | None = None) -> None:
    """Draw the run's figure ``name`` (a recipe's own plot), or say it is missing."""
    fig = run.plots.get(name)
    if fig is None:
        st.caption(f"(no '{name}' plot in this run)")
        return
    show_figure(fig, caption=caption)


def baseline_rows(metrics: Mapping[str, float]) -> list[dict[str, Any]]:
    """The run's model-vs-baseline metrics as rows: the metric, the model's value and each
    baseline's (``model.<m>`` and ``baseline.<name>.<m>`` in the run's metrics)."""
    rows: dict[str, dict[str, Any]] = {}
    for key, value in metrics.items():
        parts = key.split(".")
        if parts[0] == "model" and len(parts) == 2:
            rows.setdefault(parts[1], {"metric": parts[1]})["model"] = value
        elif parts[0] == "baseline" and len(parts) == 3:
            rows.setdefault(parts[2], {"metric": parts[2]})[parts[1]] = value
    return list(rows.values())


def show_baselines(run: MemoryRun) -> None:
    """The verdict of the model against the recipe's baselines and the scores behind it."""
    if run.baselines is not None:
        (st.success if run.baselines.model_wins else st.warning)(run.baselines.verdict)
    rows = baseline_rows(run.metrics)
    if rows:
        st.dataframe(rows, hide_index=True)
