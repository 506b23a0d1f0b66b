"""The life-cycle spine with an in-memory history and registry: bad input changes nothing,
and the recipes' pure hooks decide at the exact thresholds."""

from __future__ import annotations

import tempfile
from typing import Any

import polars as pl
import pytest

from opslens.core.lifecycle import BATCH_COLUMN, CHAMPION, Comparison, since_training
from opslens.errors import ConfigError
from opslens.recipes import get_recipe, project_from_mapping
from opslens.runner.lifecycle import Deployment


class MemoryHistory:
    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def _add(self, table: str, row: dict[str, Any]) -> int:
        self.rows.setdefault(table, []).append(row)
        return len(self.rows[table])

    def add_batch(self, analysis: str, record: dict[str, Any]) -> int:
        return self._add("batches", {**record, "analysis": analysis})

    def batches(self, analysis: str) -> list[dict[str, Any]]:
        rows = self.rows.get("batches", [])
        return [{**r, "batch": i + 1} for i, r in enumerate(rows) if r["analysis"] == analysis]

    def add_error(self, analysis: str, kind: str, message: str) -> None:
        self._add("errors", {"analysis": analysis, "kind": kind, "message": message, "at": "t"})

    def errors(self, analysis: str) -> list[dict[str, Any]]:
        return [r for r in self.rows.get("errors", []) if r["analysis"] == analysis]

    def add_training(self, analysis: str, version: Any, reason: str, details: Any) -> None:
        self._add(
            "trainings",
            {
                "analysis": analysis,
                "version": version,
                "reason": reason,
                "at": "2026-01-01T00:00:00+00:00",
            },
        )

    def trainings(self, analysis: str) -> list[dict[str, Any]]:
        return [r for r in self.rows.get("trainings", []) if r["analysis"] == analysis]

    def add_alias_move(
        self, analysis: str, alias: str, version: str, previous: Any, reason: str
    ) -> int:
        return self._add(
            "moves",
            {
                "analysis": analysis,
                "alias": alias,
                "version": version,
                "previous": previous,
                "reason": reason,
                "at": "t",
                "until": None,
            },
        )

    def alias_moves(self, analysis: str) -> list[dict[str, Any]]:
        return [r for r in self.rows.get("moves", []) if r["analysis"] == analysis]


class MemoryRegistry:
    def __init__(self, versions: list[str], aliases: dict[str, str]) -> None:
        self.known, self.aliases, self.moves = versions, dict(aliases), 0

    def version_of(self, alias: str) -> str | None:
        return self.aliases.get(alias)

    def versions(self) -> list[str]:
        return list(self.known)

    def set_alias(self, alias: str, version: str) -> None:
        self.moves += 1
        self.aliases[alias] = version

    def load(self, version: str) -> Any:
        raise AssertionError("nothing should be loaded")

    def run_of(self, version: str) -> str | None:
        return None

    def log_steps(self, run_id: str, steps: Any) -> None:
        raise AssertionError("nothing should be logged")


def _deployment(recipe: str = "residual") -> tuple[Deployment, MemoryHistory, MemoryRegistry]:
    columns = (
        {"time": "ts", "metrics": ["a"]}
        if recipe == "residual"
        else {"target": "y", "categorical": ["c"]}
    )
    project = project_from_mapping(
        {
            "runs_dir": tempfile.mkdtemp(),
            "analyses": [
                {"name": "x", "recipe": recipe, "source": {"kind": "memory"}, "columns": columns}
            ],
        }
    )
    history, registry = MemoryHistory(), MemoryRegistry(["1", "2"], {CHAMPION: "1"})
    return Deployment(project, "x", history, registry), history, registry


def test_promote_of_an_unknown_version_and_retrain_with_nothing_new_change_nothing() -> None:
    life, history, registry = _deployment()
    with pytest.raises(
        ConfigError, match=r"'x' has no registered version 9; fix: choose one of: 1, 2"
    ):
        life.promote("9")
    with pytest.raises(ConfigError, match="nothing new to retrain 'x' on"):
        life.retrain("manual: again", require_new=True)
    assert registry.moves == 0 and registry.aliases == {CHAMPION: "1"} and history.rows == {}


def test_a_recipe_without_a_life_cycle_is_refused() -> None:
    project = project_from_mapping(
        {
            "analyses": [
                {
                    "name": "f",
                    "recipe": "fleet",
                    "source": {"kind": "memory"},
                    "columns": {"entity": "d", "time": "t", "metrics": ["m"]},
                }
            ]
        }
    )
    with pytest.raises(ConfigError, match="uses the fleet recipe, which has no life cycle"):
        Deployment(project, "f", MemoryHistory(), MemoryRegistry([], {}))


def test_residual_hooks_fire_just_past_the_ks_threshold() -> None:
    hooks = get_recipe("residual").lifecycle
    assert hooks is not None
    at = [{"a_ks": 0.3, "a_alert_rate": 0.2}]
    past = [{"a_ks": 0.3001, "a_alert_rate": 0.2001}]
    assert hooks.retrain_reason(at, None, None, None) is None and hooks.monitor(at, None) == []
    assert hooks.retrain_reason(past, None, None, None) == (
        "automatic: a residual KS 0.3 > 0.3 (alert rate 0.2)"
    )
    assert [a["kind"] for a in hooks.monitor(past, None)] == ["drift", "alert"]


def test_distribution_hook_fires_when_the_log_score_drops_past_half_a_nat() -> None:
    hooks = get_recipe("distribution").lifecycle
    assert hooks is not None
    first = {"log_score": -2.0}
    assert hooks.retrain_reason([first, {"log_score": -2.5}], None, None, None) is None
    assert hooks.retrain_reason([first, {"log_score": -2.51}], None, None, None) is not None
    assert hooks.retrain_reason([first], None, None, None) is None  # nothing to compare with


def test_residual_window_is_the_two_latest_batches() -> None:
    hooks = get_recipe("residual").lifecycle
    assert hooks is not None
    life, _, _ = _deployment()
    labelled = pl.DataFrame(
        {"ts": list(range(9)), "a": [1.0] * 9, BATCH_COLUMN: [1, 1, 1, 2, 2, 2, 3, 3, 3]}
    )
    rows = hooks.window(pl.DataFrame({"ts": [0], "a": [1.0]}), labelled, life.analysis)
    assert rows[BATCH_COLUMN].unique().sort().to_list() == [2, 3]


def test_comparison_ties_go_to_the_challenger_and_nan_loses() -> None:
    tie = Comparison(metric="rmse", champion=1.0, challenger=1.0, higher_is_better=False, rows=3)
    nan = Comparison(
        metric="rmse", champion=1.0, challenger=float("nan"), higher_is_better=False, rows=3
    )
    assert tie.challenger_wins and not nan.challenger_wins
    assert since_training([{"model_version": 1}, {"model_version": "2"}], "2") == [
        {"model_version": "2"}
    ]


def test_promote_is_baseline_gated_unless_forced() -> None:
    import json

    from opslens.errors import RunError

    life, history, registry = _deployment()
    registry.aliases = {}
    registry.run_of = lambda version: "20260101T000000Z-beef"  # type: ignore[method-assign]
    run = life.project.runs_root() / "x" / "20260101T000000Z-beef"
    run.mkdir(parents=True)
    from opslens.core.baselines import BaselineScore, summarise

    lost = summarise(
        [
            BaselineScore(
                baseline="three_sigma",
                label="a 3-sigma band",
                metric="f1",
                metric_label="F1",
                model=0.4,
                value=0.6,
                higher_is_better=True,
                n=50,
            )
        ]
    )
    analysis = {"name": "x", "recipe": "residual", "run_id": "20260101T000000Z-beef"}
    (run / "facts.json").write_text(
        json.dumps({"analysis": analysis, "baselines": lost.model_dump(mode="json")})
    )
    with pytest.raises(
        RunError,
        match=r"version 2 of 'x' loses to its own baseline \(a 3-sigma band is better on F1: "
        r"0.6 against 0.4 \(50 held-out rows\)\)",
    ):
        life.promote("2")
    assert registry.moves == 0 and history.rows == {}
    life.promote("2", force=True, reason="ops call")
    assert registry.aliases == {CHAMPION: "2"}
    assert history.alias_moves("x")[0]["reason"] == "ops call (forced)"


def test_retrain_without_a_champion_trains_nothing() -> None:
    life, history, registry = _deployment()
    registry.aliases = {}
    with pytest.raises(ConfigError, match="'x' has no champion yet; fix: train it first"):
        life.retrain_if_due()
    assert registry.moves == 0 and history.rows == {}
