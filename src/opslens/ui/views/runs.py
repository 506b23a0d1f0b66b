"""The Runs page: every analysis of the project, its runs, their metrics, plots and reports.

One tab per analysis of project.yaml: its complete runs (newest first, the one
``latest`` names marked) with their headline metrics; the chosen run's metrics,
plots and HTML report (written with :func:`opslens.api.write_report` when
missing). "Run now" runs the analysis in this process with
:func:`opslens.ui.running.run_now` (:func:`opslens.runner.run_analysis`, the function
``opslens run`` calls), so the
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

from collections.abc import Sequence
from typing import Any

import polars as pl
import streamlit as st
import streamlit.components.v1 as components

from opslens.api import write_report
from opslens.config import AnalysisConfig, ProjectConfig
from opslens.errors import OpslensError, RunError
from opslens.explain.text import format_metric
from opslens.report.facts import read_baselines, read_run_facts, short_verdict
from opslens.tracking.runs import RunView, list_runs, open_run
from opslens.ui.images import show_png
from opslens.ui.running import run_now
from opslens.ui.state import project, show_error

__all__ = ["finished_label", "key_metrics", "paired_metrics", "render"]

N_METRICS = 6


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
    """Run the analysis here (:func:`opslens.ui.running.run_now`); on success select the new
    run and reload the page."""
    result = run_now(config, name)
    if result is None:
        return
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
