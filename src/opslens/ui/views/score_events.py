"""The Score page for a model that answers from live events (propensity): pick a user and
items (or upload a few events) and see the purchase probabilities with the features that
drove them.

The model's online state is warm-started from the analysis's own events (cached per run);
uploaded events are added to it (the answer then uses them); the time asked defaults to
just after the newest event. The raw feature form of the model is only shown behind the
page's "advanced" switch.

Example:
    >>> drivers_text([{"feature": "pair_views", "value": 3.0, "contribution": 0.8}])
    'pair_views = 3 (+0.80)'
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import streamlit as st

from opslens.config import ProjectConfig
from opslens.errors import DataError, OpslensError
from opslens.ui.state import show_error

__all__ = ["EVENTS_RESULT", "drivers_text", "render_events"]

EVENTS_RESULT = "opslens_score_events_result"
NEW_USER = "a new user (no history)"


def drivers_text(drivers: Sequence[Mapping[str, Any]]) -> str:
    """The drivers of one answer as one line: feature = value (contribution)."""
    return "; ".join(
        f"{d['feature']} = {float(d['value']):g} ({float(d['contribution']):+.2f})" for d in drivers
    )


@st.cache_resource(
    show_spinner="Building the online state from the analysis's events…", max_entries=4
)
def _scorer(_config: ProjectConfig, _predictor: Any, analysis: str, run_id: str) -> Any:
    """The model's online scorer, warm-started from the analysis's events (cached per run)."""
    from opslens.io.sources.files import read_file
    from opslens.runner.stages import load_input

    config = _config.analysis(analysis)
    raw = load_input(config).frame
    items = getattr(getattr(config.params, "items", None), "path", None)
    return _predictor.online_scorer(config, raw, read_file(items) if items else None)


def _last(times: Any) -> int:
    return int(times.ts[-1] if times.ts else times.last_dropped or 0)


def _uploaded(scorer: Any) -> None:
    upload = st.file_uploader(
        "A few events (CSV: user_id, item_id, event_type, timestamp)",
        type=["csv"],
        key="score_events_upload",
    )
    if upload is None:
        return
    seen = st.session_state.setdefault("score_events_seen", set())
    if upload.file_id in seen:
        return
    try:
        frame = pl.read_csv(io.BytesIO(upload.getvalue()), try_parse_dates=True)
    except Exception as e:
        show_error(DataError(f"the CSV cannot be read: {e}".splitlines()[0], fix="upload a CSV"))
        return
    refused = scorer.ingest_many(frame.to_dicts())
    seen.add(upload.file_id)
    st.caption(f"{frame.height - len(refused)} of {frame.height} uploaded events added.")
    for i, reason in refused[:5]:
        st.warning(f"row {i + 1}: {reason}")


def render_events(config: ProjectConfig, name: str, run_id: str, predictor: Any) -> None:
    """Pick a user and items (or upload events), score them, show the ranked answer."""
    try:
        scorer = _scorer(config, predictor, name, run_id)
    except OpslensError as e:
        show_error(e)
        return
    state = scorer.state
    _uploaded(scorer)
    users = sorted(state.users)
    user = st.selectbox("User", [*users[:5000], NEW_USER], key="score_user")
    if user is None:
        return
    known = state.users.get(user)
    recent = sorted(known.pairs, key=lambda i: -_last(known.pairs[i].every))[:5] if known else []
    catalog = sorted(state.catalog) or sorted(state.item_views)
    default = recent or catalog[:5]
    items = st.multiselect("Items", catalog, default=default, key="score_items")
    newest = datetime(1970, 1, 1) + timedelta(microseconds=state.newest or 0)
    at = st.text_input(
        "At (ISO time; default: just after the newest event)",
        value=(newest + timedelta(seconds=1)).isoformat(timespec="seconds"),
        key="score_at",
    )
    st.caption(f"The state holds {state.events:,} events of {len(state.users):,} users.")
    if st.button("Score", key="score_events", type="primary"):
        if not items:
            st.warning("Choose at least one item.")
            return
        try:
            answer = scorer.predict("" if user == NEW_USER else user, items, at)
        except OpslensError as e:
            show_error(e)
            return
        st.session_state[EVENTS_RESULT] = {"analysis": name, "run_id": run_id, "answer": answer}
    result = st.session_state.get(EVENTS_RESULT)
    if isinstance(result, Mapping) and (result["analysis"], result["run_id"]) == (name, run_id):
        _show(result["answer"])


def _show(answer: Mapping[str, Any]) -> None:
    if answer.get("cold_start"):
        st.info(str(answer.get("note", "cold start")))
    st.subheader("Purchase probabilities")
    st.caption(
        f"Within {float(answer['horizon_hours']):g} hours of {answer['at']}, "
        f"by the {answer['model']} model; the features that moved each score most."
    )
    table = pl.DataFrame(
        {
            "item": [r["item_id"] for r in answer["items"]],
            "probability": [round(float(r["probability"]), 4) for r in answer["items"]],
            "category": [r["category"] for r in answer["items"]],
            "drivers": [drivers_text(r["drivers"]) for r in answer["items"]],
        }
    )
    st.dataframe(table, hide_index=True)
    if answer.get("unknown_items"):
        st.warning(f"Not in the item table: {', '.join(answer['unknown_items'])}")
    with st.expander("The whole answer (JSON)"):
        st.json(dict(answer))
