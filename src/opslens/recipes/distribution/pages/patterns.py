"""The Patterns page: pick values of the categoricals and see the pattern the model predicts,
with its probabilities, distribution and HDRs; which combination follows which pattern;
the held-out scores against the baselines.

Everything comes from the recipe's own stages run in memory on the analysis's source
(:func:`opslens.ui.analysis.memory_run`): the predictor they fit answers the choice
(``PatternPredictor.predict_one``), its combinations make the pattern map, and the
``evaluate`` stage's held-out scores and baselines are shown as the run states them.

Example:
    >>> hdr_text([[1.0, 2.5], [4.0, 6.0]], "min")
    '1–2.5 min, 4–6 min'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
import streamlit as st

from opslens.ui.analysis import figure, open_page, show_baselines
from opslens.ui.images import show_figure
from opslens.ui.state import show_error

__all__ = ["TITLE", "hdr_text", "pattern_map", "render"]

#: the page's name in the app's navigation
TITLE = "Patterns"


def hdr_text(regions: Sequence[Sequence[float]], unit: str = "") -> str:
    """Highest-density regions as text: ``lo–hi unit`` per region."""
    suffix = f" {unit}" if unit else ""
    return ", ".join(f"{lo:.3g}–{hi:.3g}{suffix}" for lo, hi in regions)


def pattern_map(predictor: Any) -> pl.DataFrame:
    """Every combination the model saw, its pattern and its number of rows (most rows first)."""
    frame = pl.DataFrame(
        {c: [str(v) for v in predictor.levels[:, i]] for i, c in enumerate(predictor.inputs)}
    )
    return frame.with_columns(
        pl.Series("pattern", [int(c) for c in predictor.cluster_of]),
        pl.Series("rows", [int(n) for n in predictor.counts]),
    ).sort(["pattern", "rows"], descending=[False, True])


def _choose(predictor: Any, combos: pl.DataFrame) -> dict[str, str]:
    st.subheader("Predict a pattern")
    columns = st.columns(len(predictor.inputs))
    chosen: dict[str, str] = {}
    for where, name in zip(columns, predictor.inputs, strict=True):
        levels = sorted(combos[name].unique().to_list())
        chosen[name] = str(where.selectbox(name, levels, key=f"patterns_{name}"))
    return chosen


@st.cache_resource(show_spinner=False, max_entries=256)
def _instance_figure(_predictor: Any, model: int, chosen: tuple[tuple[str, str], ...]) -> Any:
    """The predictor's figure of one combination (drawn once per server, model — the
    predictor's id — and combination)."""
    instance = dict(chosen)
    answer = _predictor.predict_one(instance)
    # the figure's subtitle lists the chosen values: the title does not repeat them
    return _predictor.figure(instance, answer, "The chosen combination")


def _answer(predictor: Any, chosen: dict[str, str]) -> None:
    try:
        answer = predictor.predict_one(chosen)
    except Exception as e:
        show_error(e)
        return
    unit = predictor.unit
    prediction = answer["prediction"]
    c1, c2, c3 = st.columns(3)
    c1.metric("Predicted pattern", str(answer["cluster"]))
    c2.metric("Probability", f"{answer['probability']:.1%}")
    c3.metric("Median", f"{prediction['median']:.3g} {unit}".strip())
    st.write(
        f"50% HDR: {hdr_text(prediction['hdr_50'], unit)}; "
        f"90% HDR: {hdr_text(prediction['hdr_90'], unit)} "
        f"({prediction['basis']})."
    )
    st.dataframe(
        pl.DataFrame(
            {
                "pattern": list(answer["probabilities"]),
                "probability": list(answer["probabilities"].values()),
            }
        ),
        hide_index=True,
    )
    show_figure(_instance_figure(predictor, id(predictor), tuple(chosen.items())))


def render() -> None:
    """Draw the Patterns page."""
    opened = open_page("Patterns", "distribution", key="patterns_analysis")
    if opened is None:
        return
    _, _, run = opened
    predictor = run.model
    combos = pattern_map(predictor)
    _answer(predictor, _choose(predictor, combos))
    st.subheader("Pattern map")
    counts = combos.group_by("pattern").agg(pl.len().alias("combinations")).sort("pattern")
    st.caption(
        f"{combos.height} combinations in {counts.height} patterns: "
        + ", ".join(f"pattern {p}: {n}" for p, n in counts.iter_rows())
    )
    st.dataframe(combos, hide_index=True)
    figure(run, "cluster_profiles")
    st.subheader("Held-out scores against the baselines")
    show_baselines(run)
    figure(run, "holdout_scores")
