"""The Runs page: every analysis of the project, its runs, their metrics, plots and reports.

One tab per analysis of project.yaml: its complete runs (newest first, the one
``latest`` names marked) with their headline metrics; the chosen run's metrics,
plots and HTML report (written with :func:`opslens.api.write_report` when
missing). "Run now" runs the analysis in this process with
:func:`opslens.runner.run_analysis`, the function ``opslens run`` calls, so the
run folder and MLflow entries are the same as the CLI's; a failed run leaves
the previous runs as they were.

Example:
    >>> finished_label("2026-01-02T03:04:05.123456+00:00")
    '2026-01-02 03:04:05'
    >>> key_metrics([{"rows": 10.0, "k": 3.0}, {"rows": 9.0, "n": 1.0}], n=2)
    ['rows', 'k']
    >>> paired_metrics({"rows": 10.0, "model.auroc": 0.9, "baseline.base_rate.auroc": 0.5})
    ['model.auroc', 'baseline.base_rate.auroc']
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
import streamlit as st
import streamlit.components.v1 as components

from opslens import runner
from opslens.api import write_report
from opslens.config import AnalysisConfig, ProjectConfig
from opslens.errors import OpslensError, RunError
from opslens.explain.text import format_metric
from opslens.report.facts import read_baselines, read_run_facts, short_verdict
from opslens.tracking.runs import RunView, list_runs, open_run
from opslens.ui.images import show_png
from opslens.ui.state import project, show_error

__all__ = ["StreamlitProgress", "finished_label", "key_metrics", "paired_metrics", "render"]

N_METRICS = 6


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float
    bar: Any
    drawn: tuple[int, str] | None = None
    at: float = 0.0


class StreamlitProgress:
    """What ``run_analysis(progress=...)`` calls (rich's Progress API), drawn as progress bars.

    ``container`` is where the bars go (an ``st.status``, a column, ``st`` itself);
    a bar is redrawn only when its percentage or text changes, so a stage looping
    over thousands of items sends a hundred updates, not thousands.

    Example:
        >>> class Bar:
        ...     def progress(self, value, text=""): print(f"{value:.2f} {text}")
        ...     def empty(self): print("removed")
        >>> class Box:
        ...     def progress(self, value, text=""): print(f"{value:.2f} {text}"); return Bar()
        >>> progress = StreamlitProgress(Box())
        >>> task = progress.add_task("eta", total=2)
        0.00 eta
        >>> progress.update(task, description="eta: prepare")
        0.00 eta: prepare
        >>> progress.advance(task)
        0.50 eta: prepare
        >>> progress.remove_task(task)
        removed
    """

    def __init__(self, container: Any) -> None:
        self._container = container
        self._tasks: dict[int, _Task] = {}
        self._next = 0

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        """A new bar; its id."""
        task_id = self._next
        self._next += 1
        task = _Task(description, total, 0.0, None)
        task.bar = self._container.progress(0.0, text=description)
        task.drawn = (0, description)
        task.at = time.monotonic()
        self._tasks[task_id] = task
        return task_id

    def advance(self, task_id: int, advance: float = 1) -> None:
        """``advance`` more items of the task done."""
        task = self._tasks.get(task_id)
        if task is not None:
            task.completed += advance
            self._draw(task)

    def update(
        self,
        task_id: int,
        *,
        description: str | None = None,
        total: float | None = None,
        completed: float | None = None,
        advance: float | None = None,
        **_: Any,
    ) -> None:
        """Change a task's text, total or progress."""
        task = self._tasks.get(task_id)
        if task is None:
            return
        if description is not None:
            task.description = description
        if total is not None:
            task.total = total
        if completed is not None:
            task.completed = completed
        if advance is not None:
            task.completed += advance
        self._draw(task)

    def remove_task(self, task_id: int) -> None:
        """Take the task's bar away."""
        task = self._tasks.pop(task_id, None)
        if task is not None:
            task.bar.empty()

    def _draw(self, task: _Task) -> None:
        if task.total:
            percent = int(100 * min(task.completed / task.total, 1.0))
            text = task.description
        else:  # unknown total: a count, redrawn at most five times a second
            percent = 0
            text = f"{task.description} ({format_metric(task.completed)} done)"
            if task.drawn is not None and task.drawn[1].split(" (")[0] == task.description:
                if time.monotonic() - task.at < 0.2:
                    return
        if (percent, text) == task.drawn:
            return
        task.bar.progress(percent / 100, text=text)
        task.drawn = (percent, text)
        task.at = time.monotonic()


def finished_label(value: Any) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS`` (UTC, as the runs record it)."""
    text = str(value or "")
    return text[:19].replace("T", " ")


def key_metrics(metrics: Sequence[dict[str, Any]], n: int = N_METRICS) -> list[str]:
    """The names of the first ``n`` metrics, newest run first, then any others in order."""
    names: list[str] = []
    for m in metrics:
        names += [k for k in m if k not in names]
    return names[:n]


def paired_metrics(metrics: dict[str, Any], n: int = N_METRICS) -> list[str]:
    """The first ``n`` metrics of the model against its baselines (``model.<m>``,
    ``baseline.<name>.<m>``): propensity's PR-AUC and base rate, distribution's log score
    against its own-histogram baseline."""
    return [k for k in metrics if k.startswith(("model.", "baseline."))][:n]


def _latest_id(config: ProjectConfig, name: str) -> str | None:
    try:
        return open_run(config.runs_root(), name).run_id
    except RunError:
        return None


def _facts_file(run: RunView) -> str:
    return str(run.path / "facts.json")


def run_verdict(run: RunView) -> str:
    """Which won against the baselines, in a few words (the facts' typed ``baselines``)."""
    if not run.has("facts.json"):
        return ""
    try:
        return short_verdict(read_baselines(run.facts, where=_facts_file(run)))
    except RunError:  # the run's details say which field
        return "facts do not match the model"


def _runs_table(runs: list[RunView], latest: str | None) -> pl.DataFrame:
    manifests = [r.manifest for r in runs]
    names = key_metrics([m.get("metrics") or {} for m in manifests])
    rows = [
        {
            "run": r.run_id,
            "latest": r.run_id == latest,
            "finished": finished_label(m.get("finished")),
            "status": str(m.get("status", "")),
            "against the baselines": run_verdict(r),
            **{k: (m.get("metrics") or {}).get(k) for k in names},
        }
        for r, m in zip(runs, manifests, strict=True)
    ]
    return pl.DataFrame(rows, infer_schema_length=None, strict=False)


def _start(config: ProjectConfig, name: str) -> None:
    """Run the analysis here; on success select the new run and reload the page."""
    with st.status(f"Running {name}…", expanded=True) as status:
        try:
            result = runner.run_analysis(config, name, progress=StreamlitProgress(status))
        except Exception as e:  # OpslensError: its problem and fix; anything else, briefly
            status.update(label=f"The run of {name} failed", state="error", expanded=True)
            show_error(e)
            return
        status.update(label=f"Run {result.run_id} complete", state="complete", expanded=False)
    st.session_state[f"_runs_pick_{name}"] = result.run_id
    st.session_state[f"_runs_notice_{name}"] = (
        f"Run {result.run_id} of {name} complete: {result.headline()}"
    )
    st.rerun()


def _metrics(run: RunView) -> None:
    values = run.manifest.get("metrics") or {}
    for names in (key_metrics([values]), paired_metrics(values)):
        if not names:
            continue
        for column, key in zip(st.columns(len(names)), names, strict=True):
            column.metric(key, format_metric(values[key]))


def _plots(run: RunView) -> None:
    plots = run.plots()
    if not plots:
        return
    st.subheader("Plots")
    columns = st.columns(2)
    for i, path in enumerate(plots):
        with columns[i % 2]:
            show_png(path.read_bytes(), caption=path.stem.replace("_", " "))


def _report(config: ProjectConfig, name: str, run: RunView) -> None:
    st.subheader("Report")
    rewrite = st.button("Write report", key=f"report_{name}")
    if rewrite or not run.has("report.html"):
        try:
            with st.spinner("Writing the report…"):
                write_report(config, name, run_id=run.run_id)
        except Exception as e:  # the report's failure leaves the rest of the page
            show_error(e)
    if run.has("report.html"):
        html = (run.path / "report.html").read_text()
        iframe = getattr(st, "iframe", None)  # Streamlit >= 1.5x; components.html before it
        if iframe is not None:
            iframe(html, height=900)
        else:
            components.html(html, height=900, scrolling=True)


def _baselines(run: RunView) -> None:
    """The verdict against the baselines, from the facts read through the recipe's model;
    a facts file the model rejects is shown as the error naming the field."""
    if not run.has("facts.json"):
        return
    try:
        baselines = read_run_facts(run.facts, where=_facts_file(run)).baselines
    except OpslensError as e:
        show_error(e)
        return
    if baselines is None or not baselines.scores:
        return
    if baselines.model_wins:
        st.success(f"Against the baselines: {baselines.verdict}.")
    else:
        st.warning(f"Against the baselines: {baselines.verdict}.")


def _run_details(config: ProjectConfig, name: str, run: RunView) -> None:
    manifest = run.manifest
    st.caption(
        f"Run {run.run_id}: {manifest.get('status', '?')}, finished "
        f"{finished_label(manifest.get('finished'))} UTC; data: "
        f"{(manifest.get('input') or {}).get('source') or 'unknown'}"
    )
    for warning in manifest.get("warnings") or []:
        st.warning(str(warning))
    _baselines(run)
    _metrics(run)
    _plots(run)
    _report(config, name, run)


def _analysis(config: ProjectConfig, analysis: AnalysisConfig, active: bool) -> None:
    name = analysis.name
    st.caption(f"{analysis.recipe} recipe" + ("" if active else " · not active"))
    if st.button("Run now", key=f"start_{name}", type="primary"):
        _start(config, name)
    notice = st.session_state.pop(f"_runs_notice_{name}", None)
    if notice:
        st.success(notice)
    runs = list_runs(config.runs_root(), name)
    if not runs:
        st.info(
            f"'{name}' has no complete run yet: press Run now, or run "
            f"`opslens run --analysis {name}`."
        )
        return
    latest = _latest_id(config, name)
    st.dataframe(_runs_table(runs, latest), hide_index=True)
    ids = [r.run_id for r in runs]
    key = f"run_{name}"
    picked = st.session_state.pop(f"_runs_pick_{name}", None)
    if picked in ids:
        st.session_state[key] = picked
    elif st.session_state.get(key) not in ids:  # first view, or its run is gone
        st.session_state[key] = latest if latest in ids else ids[0]
    chosen = st.selectbox(
        "Run", ids, key=key, format_func=lambda r: f"{r} (latest)" if r == latest else r
    )
    run = next((r for r in runs if r.run_id == chosen), runs[0])
    _run_details(config, name, run)


def render() -> None:
    """The Runs page."""
    st.title("Runs")
    config = project()
    if config is None:
        st.info(
            "The Runs page shows a project's runs: start the app with `opslens ui -p project.yaml`."
        )
        return
    active = {a.name for a in config.active_analyses()}
    tabs = st.tabs([a.name for a in config.analyses])
    for tab, analysis in zip(tabs, config.analyses, strict=True):
        with tab:
            try:
                _analysis(config, analysis, analysis.name in active)
            except OpslensError as e:
                show_error(e)
            except Exception as e:  # last resort: never a traceback
                show_error(e)
