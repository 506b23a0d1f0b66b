"""The Propensity page: a user's items ranked by purchase probability from the event log,
the held-out precision-recall curve against the baselines, and the features that matter.

The model is the one the recipe's own stages fit in memory on the analysis's events
(:func:`opslens.ui.analysis.memory_run`); the ranking asks its online state, warm-started
from the same events (the Score page's event form, :func:`opslens.ui.views.score_events.render_events`),
so no raw feature row is typed here (that form is on the Score page, behind "advanced").

Example:
    >>> headline({"test_base_rate": 0.006, "model.average_precision": 0.15,
    ...     "baseline.logistic.average_precision": 0.13})
    [('base rate', '0.6%'), ('PR-AUC (model)', '0.150'), ('PR-AUC (logistic)', '0.130')]
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from opslens.ui.analysis import figure, open_page, show_baselines
from opslens.ui.views.score_events import render_events

__all__ = ["TITLE", "headline", "render"]

#: the page's name in the app's navigation
TITLE = "Propensity"


def headline(metrics: Mapping[str, float]) -> list[tuple[str, str]]:
    """The held-out base rate and the PR-AUC of the model and of each baseline."""
    out = []
    if "test_base_rate" in metrics:
        out.append(("base rate", f"{metrics['test_base_rate']:.1%}"))
    if "model.average_precision" in metrics:
        out.append(("PR-AUC (model)", f"{metrics['model.average_precision']:.3f}"))
    for key, value in metrics.items():
        parts = key.split(".")
        if parts[0] == "baseline" and parts[-1] == "average_precision" and parts[1] != "base_rate":
            out.append((f"PR-AUC ({parts[1]})", f"{value:.3f}"))
    return out


def render() -> None:
    """Draw the Propensity page."""
    opened = open_page("Propensity", "propensity", key="propensity_analysis")
    if opened is None:
        return
    config, analysis, run = opened
    st.subheader("Held-out precision and recall against the baselines")
    for where, (label, value) in zip(st.columns(4), headline(run.metrics)[:4], strict=False):
        where.metric(label, value)
    show_baselines(run)
    figure(run, "pr_curve")
    st.subheader("Feature importance")
    figure(run, "feature_importance")
    st.header("Rank a user's items")
    render_events(config, analysis.name, "memory", run.model)
