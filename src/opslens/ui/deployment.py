"""A deployed model's life cycle on a page, for any recipe with one (segments, residual,
distribution): the batches and their monitoring, the alerts, the retrainings, the alias
history (which version was champion when, and why), and promoting or rolling back a
version after a confirmation.

It reads and moves what ``opslens batch`` / ``retrain`` / ``promote`` do, through the same
:class:`opslens.runner.lifecycle.Deployment`, so a move made here is in ``opslens models
history`` and the service follows it.

Example:
    >>> batch_rows([{"batch": 1, "rows_in": 9, "noise_ratio": 0.5, "out_of_range":
    ...     {"age": {"share": 0.2}}, "baseline": {"rmse": 2.0}, "rmse": 1.5, "alerts": []}])
    [{'batch': 1, 'rows_in': 9, 'noise_ratio': 0.5, 'rmse': 1.5, 'out_of_range.age': 0.2, 'baseline.rmse': 2.0}]
    >>> rollback_target([{"alias": "champion", "version": "1", "previous": None},
    ...     {"alias": "champion", "version": "2", "previous": "1"}])
    '1'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
import streamlit as st

from opslens.config import ProjectConfig
from opslens.core.lifecycle import CHAMPION
from opslens.runner.lifecycle import Deployment
from opslens.ui.state import show_error

__all__ = ["alert_rows", "batch_records", "batch_rows", "render_deployment", "rollback_target"]


def batch_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per batch: its scalar monitoring figures, each feature's out-of-range share
    (``out_of_range.<feature>``) and the global baseline's figures (``baseline.<metric>``)."""
    rows = []
    for r in records:
        row: dict[str, Any] = {
            k: v for k, v in r.items() if isinstance(v, int | float | str) and not k.endswith("_at")
        }
        for feature, share in (r.get("out_of_range") or {}).items():
            row[f"out_of_range.{feature}"] = (
                share.get("share") if isinstance(share, dict) else share
            )
        for metric, value in (r.get("baseline") or {}).items():
            row[f"baseline.{metric}"] = value
        rows.append({k: v for k, v in row.items() if k not in ("run_id", "run_path")})
    return rows


def alert_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every alert of every batch, with the batch's number."""
    return [
        {"batch": r.get("batch"), **{k: str(v) for k, v in a.items()}}
        for r in records
        for a in r.get("alerts") or []
    ]


def rollback_target(moves: Sequence[Mapping[str, Any]]) -> str | None:
    """The version the champion held before its latest move, or None."""
    champion = [m for m in moves if m.get("alias") == CHAMPION]
    return str(champion[-1]["previous"]) if champion and champion[-1].get("previous") else None


def _open(config: ProjectConfig, name: str) -> Deployment | None:
    from opslens.lifecycle.registry import open_stores

    if not config.tracking.enabled:
        st.info(
            "No registry: tracking is off in project.yaml (`tracking.enabled: true` keeps the "
            "versions, the batches and their history)."
        )
        return None
    try:
        history, registry = open_stores(config, name)
        return Deployment(config, name, history, registry)
    except Exception as e:
        show_error(e)
        return None


def batch_records(config: ProjectConfig, name: str) -> list[dict[str, Any]]:
    """The batches ``opslens batch`` recorded for analysis ``name`` (empty, the error shown,
    when the analysis has no history: tracking off, no life cycle)."""
    from opslens.lifecycle.registry import open_stores

    if not config.tracking.enabled:
        return []
    try:
        history, _ = open_stores(config, name)
        return history.batches(name)
    except Exception as e:
        show_error(e)
        return []


def _table(rows: list[dict[str, Any]], empty: str) -> None:
    if rows:
        st.dataframe(pl.DataFrame(rows, infer_schema_length=None), hide_index=True)
    else:
        st.caption(empty)


def _moves(life: Deployment, moves: list[dict[str, Any]], key: str) -> None:
    """Promote a version or roll back, each behind a confirmation."""
    st.subheader("Promote or roll back")
    versions = life.registry.versions()
    champion = life.registry.version_of(CHAMPION)
    if not versions:
        st.caption("No registered version yet: run the analysis (Runs page, or `opslens run`).")
        return
    st.caption(f"Champion: version {champion or '-'} of {len(versions)} registered.")
    version = st.selectbox("Version", versions, index=len(versions) - 1, key=f"{key}_version")
    reason = st.text_input("Why (kept in the history)", key=f"{key}_reason")
    back = rollback_target(moves)
    c1, c2 = st.columns(2)
    if c1.button(f"Promote version {version}", key=f"{key}_promote"):
        st.session_state[f"{key}_pending"] = ("promote", str(version))
    if back and c2.button(f"Roll back to version {back}", key=f"{key}_rollback"):
        st.session_state[f"{key}_pending"] = ("rollback", back)
    pending = st.session_state.get(f"{key}_pending")
    if not pending:
        return
    action, target = pending
    st.warning(
        f"Make version {target} champion"
        + (" (rolled back, without comparison)" if action == "rollback" else "")
        + "? The service and `opslens stream --from registry` follow it."
    )
    c3, c4 = st.columns(2)
    if c4.button("Cancel", key=f"{key}_cancel"):
        st.session_state.pop(f"{key}_pending", None)
        st.rerun()
    if not c3.button("Confirm", key=f"{key}_confirm", type="primary"):
        return
    st.session_state.pop(f"{key}_pending", None)
    try:
        if action == "rollback":
            life.promote(target, force=True, reason=reason or "rolled back in the app")
        else:
            comparison = life.promote(target, reason=reason or "promoted in the app")
            if comparison is not None:
                st.caption(comparison.summary())
    except Exception as e:
        show_error(e)
        return
    st.success(f"Version {target} is champion.")


def render_deployment(config: ProjectConfig, name: str, *, key: str) -> None:
    """The life cycle of analysis ``name``: health, batches, alerts, retrainings, aliases and
    the promote / roll back controls (``key`` prefixes the widgets' keys)."""
    life = _open(config, name)
    if life is None:
        return
    try:
        health = life.health()
        records = life.history.batches(name)
        trainings = life.history.trainings(name)
        moves = life.alias_history()
    except Exception as e:
        show_error(e)
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Status", str(health["status"]))
    c2.metric("Champion", str(health["champion"] or "-"))
    c3.metric("Batches", str(health["batches"]))
    st.subheader("Batches")
    _table(batch_rows(records), f"No batch yet: `opslens batch {name} --input batch.parquet`.")
    st.subheader("Alerts")
    _table(alert_rows(records), "No alert in any batch.")
    st.subheader("Retraining history")
    _table(
        [{"at": t["at"][:19], "version": t["version"], "reason": t["reason"]} for t in trainings],
        "No training recorded yet.",
    )
    st.subheader("Alias history")
    _table(
        [
            {
                "alias": m["alias"],
                "version": m["version"],
                "was": m["previous"] or "-",
                "from": m["at"][:19],
                "until": (m["until"] or "now")[:19],
                "why": m["reason"],
            }
            for m in moves
        ],
        "No alias has been set yet.",
    )
    _moves(life, moves, key)
