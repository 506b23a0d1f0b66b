"""The fleet demo scores its ranking against both baselines; without failures it says why not.

The demo's failing devices drift over the last weeks before they fail, so the per-device
own-history rule sees them and the robust z of whole-series means barely does: the run
states both figures, with the paired interval of the AUROC difference.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from opslens.api import load_project
from opslens.recipes.fleet import RECIPE
from opslens.recipes.fleet.baselines import auroc, own_history_scores
from opslens.runner import run_analysis
from opslens.synthetic.fleet import make_fleet
from opslens.tracking.runs import open_run
from opslens.tracking.tracker import MemoryTracker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], MemoryTracker]:
    folder = tmp_path_factory.mktemp("fleet-demo")
    bundled = files("opslens.recipes.fleet") / "demo"
    shutil.copy(str(bundled / "failures.csv"), folder / "failures.csv")
    text = (bundled / "project.yaml").read_text()
    (folder / "project.yaml").write_text(
        text.replace('tracking: {uri: "sqlite:///mlflow.db"}', "tracking: {enabled: false}")
    )
    tracker = MemoryTracker()
    run_analysis(load_project(folder / "project.yaml"), "device-fleet", tracker=tracker)
    return open_run(folder / "runs", "device-fleet").facts, tracker


def test_the_demo_run_states_both_baselines_on_the_same_devices(
    demo: tuple[dict[str, Any], MemoryTracker],
) -> None:
    facts, tracker = demo
    scores = {(s["baseline"], s["metric"]): s for s in facts["baselines"]["scores"]}
    assert set(scores) == {
        (b, m) for b in ("own_history", "max_robust_z") for m in ("auroc", "recall_at_k")
    }
    ranking = facts["failures"]["ranking"]
    for name in ("own_history", "max_robust_z"):
        auc = scores[(name, "auroc")]
        assert auc["gate"] and auc["n"] == 300 and auc["unit"] == "devices, 12 failed"
        assert auc["model"] == pytest.approx(ranking["auroc"])  # the same devices and labels
        lo, hi = auc["interval"]
        assert lo <= auc["model"] - auc["value"] <= hi
        assert not scores[(name, "recall_at_k")]["gate"]
        assert tracker.metrics[f"baseline.{name}.auroc"] == pytest.approx(auc["value"])
    # the demo's gearboxes heat up late: the own-history rule (recent week against the
    # earlier weeks, alone and against the site's median) sees most of them, whole-series
    # means much less; the risk ranking beats both, and the run says so
    assert scores[("own_history", "auroc")]["value"] >= 0.95
    assert scores[("max_robust_z", "auroc")]["value"] <= 0.8
    assert ranking["auroc"] > scores[("own_history", "auroc")]["value"]
    assert facts["baselines"]["model_wins"]
    assert facts["failures"]["baselines_unscored"] is None
    summary = RECIPE.narrative(RECIPE.read_facts(facts), []).summary  # type: ignore[union-attr]
    assert summary.endswith("It beats both simple baselines.") and len(summary.split()) <= 40


def test_without_known_failures_the_run_says_the_baselines_were_not_scored(
    tmp_path: Path,
) -> None:
    make_fleet(n_devices=30, n_points=200, n_failing=3, seed=2).readings.write_parquet(
        tmp_path / "readings.parquet"
    )
    (tmp_path / "project.yaml").write_text(
        "tracking: {enabled: false}\n"
        "analyses:\n"
        "  - name: fleet\n"
        "    recipe: fleet\n"
        "    source: {kind: file, path: readings.parquet}\n"
        "    columns: {entity: device_id, time: timestamp, metrics: [temperature, current]}\n"
    )
    run_analysis(load_project(tmp_path / "project.yaml"), "fleet", tracker=MemoryTracker())
    facts = open_run(tmp_path / "runs", "fleet").facts
    assert not facts.get("baselines")
    assert facts["failures"]["baselines_unscored"].startswith(
        "the baselines (a per-device rule on its own history; the largest robust z of metric "
        "means) were not scored: no known failure among the 30 devices"
    )
    summary = RECIPE.narrative(RECIPE.read_facts(facts), []).summary  # type: ignore[union-attr]
    assert "The simple baselines were not scored: no known failures" in summary


def test_the_peer_group_column_reaches_the_own_history_rule(tmp_path: Path) -> None:
    data = make_fleet(n_devices=60, n_points=400, n_failing=6, seed=1)
    sites = data.truth.select("device_id", pl.format("site-{}", "group").alias("site"))
    readings = data.readings.join(sites, on="device_id")
    readings.write_parquet(tmp_path / "readings.parquet")
    failed = data.truth.filter(pl.col("failed"))
    failed.select("device_id", "failure_time").write_csv(tmp_path / "failures.csv")
    (tmp_path / "project.yaml").write_text(
        "tracking: {enabled: false}\n"
        "analyses:\n"
        "  - name: fleet\n"
        "    recipe: fleet\n"
        "    source: {kind: file, path: readings.parquet}\n"
        "    columns: {entity: device_id, time: timestamp, group: site,\n"
        "              metrics: [temperature, vibration, current]}\n"
        "    params:\n"
        "      failures: {path: failures.csv}\n"
        "      lead_time: {window: 3d, step: 1d, horizon: 6d, top_k: 5}\n"
        "      baselines: {recent: 3d}\n"
    )
    run_analysis(load_project(tmp_path / "project.yaml"), "fleet", tracker=MemoryTracker())
    facts = open_run(tmp_path / "runs", "fleet").facts
    stated = next(
        s["value"]
        for s in facts["baselines"]["scores"]
        if (s["baseline"], s["metric"]) == ("own_history", "auroc")
    )
    y = failed["device_id"].to_list()
    kwargs: dict[str, Any] = {
        "entity": "device_id",
        "time": "timestamp",
        "metrics": ["temperature", "vibration", "current"],
        "recent": timedelta(days=3),
    }

    def auc(group: str | None) -> float:
        s = own_history_scores(readings, group=group, **kwargs).sort("device_id")
        return float(auroc(s["device_id"].is_in(y).to_numpy(), s["score"].to_numpy()))

    assert stated == pytest.approx(auc("site"))
    assert abs(auc("site") - auc(None)) > 0.01  # the peer comparison changed the ranking
