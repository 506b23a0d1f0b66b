"""The propensity recipe end to end on generated clickstream data: models, split, reruns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests.fakes.cli import run_cli

from opslens.api import load_project
from opslens.core.baselines import plain_verdict
from opslens.recipes.propensity import RECIPE
from opslens.report.narrators.template import TemplateNarrator
from opslens.runner import run_analysis
from opslens.tracking.models import load_predictor
from opslens.tracking.runs import open_run
from opslens.tracking.tracker import MemoryTracker

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).parents[3] / "examples" / "propensity" / "project.yaml"
NAME = "shop-propensity"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MemoryTracker]:
    """The example project (2,000 users, 60 days) run once with a memory tracker."""
    folder = tmp_path_factory.mktemp("propensity")
    text = EXAMPLE.read_text().replace(
        'tracking: {uri: "sqlite:///mlflow.db"}', "tracking: {enabled: false}"
    )
    (folder / "project.yaml").write_text(text)
    tracker = MemoryTracker()
    run_analysis(load_project(folder / "project.yaml"), NAME, tracker=tracker)
    return folder, tracker


def test_xgboost_beats_the_baseline_and_both_beat_the_base_rate(
    shop: tuple[Path, MemoryTracker],
) -> None:
    folder, tracker = shop
    run = open_run(folder / "runs", NAME)
    train = run.facts["train"]
    test = {k: v["test"] for k, v in train["results"].items()}
    base = test["xgboost"]["base_rate"]
    assert 0 < base < 0.02  # extreme imbalance
    assert test["xgboost"]["pr_auc"] > test["logistic"]["pr_auc"] * 1.05, test
    for model in ("logistic", "xgboost"):
        assert test[model]["pr_auc"] > 10 * base, (model, test[model])
        assert test[model]["roc_auc"] > 0.8
        assert test[model]["precision_at_50"] > 10 * base
        assert 0 < test[model]["recall_at_200"] <= 1
    assert train["chosen"] == "xgboost" and train["scale_pos_weight"] > 1
    assert len(train["calibration"]) >= 5
    assert tracker.aliases == {NAME: "1"}  # the better model registered, the alias moved
    assert {"calibration", "pr_curve", "feature_importance", "funnel"} <= {
        p.stem for p in (run.path / "plots").iterdir()
    }
    models = run.object("models")
    assert set(models) == {"logistic", "xgboost"}


def test_the_model_beats_its_three_baselines_on_the_test_users(
    shop: tuple[Path, MemoryTracker],
) -> None:
    folder, tracker = shop
    run = open_run(folder / "runs", NAME)
    facts = RECIPE.read_facts(run.facts)
    assert facts.baselines is not None
    scores = {(s.baseline, s.metric): s for s in facts.baselines.scores}
    assert {b for b, _ in scores} == {"logistic", "base_rate", "best_rule"}
    rows = run.facts["features"]["rows"]["test"]
    assert all(s.n == rows and s.interval is not None for s in scores.values())
    gating = {k for k, s in scores.items() if s.gate}
    assert gating == {
        ("logistic", "auroc"),
        ("base_rate", "average_precision"),
        ("best_rule", "auroc"),
    }
    for key in gating:  # a lead whose 95% interval over resampled test users excludes 0
        lo, _ = scores[key].interval or (0.0, 0.0)
        assert scores[key].model_wins and lo > 0, scores[key]
    assert scores["best_rule", "auroc"].model - scores["best_rule", "auroc"].value > 0.1
    # a constant score's average precision is the test prevalence
    assert scores["base_rate", "average_precision"].value == pytest.approx(
        run.facts["train"]["results"]["xgboost"]["test"]["base_rate"], rel=1e-6
    )
    assert facts.baselines.model_wins and "the model beats" in facts.baselines.verdict
    assert tracker.metrics["baseline.best_rule.auroc"] == scores["best_rule", "auroc"].value
    # the report reads the typed facts: the baselines first, the verdict (plain) in the summary
    told = TemplateNarrator().narrate(run.facts, [])
    assert told.sections[0].title == "Against the baselines"
    assert plain_verdict(facts.baselines) in told.summary and len(told.summary.split()) <= 40


def test_the_split_is_70_15_15_by_date_without_overlap(shop: tuple[Path, MemoryTracker]) -> None:
    folder, _ = shop
    run = open_run(folder / "runs", NAME)
    bounds = run.table("split_bounds")
    days = dict(zip(bounds["split"], bounds["days"], strict=True))
    total = sum(days.values())
    for name, share in (("train", 0.70), ("val", 0.15), ("test", 0.15)):
        assert abs(days[name] - share * total) <= 1
        events = run.table(f"{name}_events")
        start, end = bounds.filter(pl.col("split") == name).select("start", "end").row(0)
        assert events["timestamp"].min() >= start and events["timestamp"].max() < end
        feats = run.table(f"{name}_features")
        horizon = np.timedelta64(7, "D")
        assert feats["prediction_time"].min() >= start
        assert (feats["prediction_time"].to_numpy() + horizon <= np.datetime64(end)).all()
    # no user-time overlap: every label window of a user in one split ends before the next split's rows
    rows = {s: run.table(f"{s}_features") for s in ("train", "val", "test")}
    for early, late in (("train", "val"), ("val", "test")):
        last = (
            rows[early]
            .group_by("user_id")
            .agg(pl.col("prediction_time").max() + pl.duration(days=7))
        )
        first = rows[late].group_by("user_id").agg(pl.col("prediction_time").min().alias("first"))
        joined = last.join(first, on="user_id")
        assert (joined["prediction_time"] <= joined["first"]).all()
    # sessions never cross a boundary
    for name in ("train", "val", "test"):
        assert (
            run.table(f"{name}_events")["session_id"]
            .is_in(
                pl.concat(
                    [
                        run.table(f"{o}_events")["session_id"]
                        for o in ("train", "val", "test")
                        if o != name
                    ]
                ).implode()
            )
            .sum()
            == 0
        )


def test_the_saved_model_scores_rows_as_the_run_did(shop: tuple[Path, MemoryTracker]) -> None:
    folder, _ = shop
    run = open_run(folder / "runs", NAME)
    predictor = load_predictor(folder / "runs", NAME).predictor
    test = run.table("test_features").head(300)
    got = predictor.predict_frame(test)
    saved = run.table("test_predictions").head(300)
    assert np.allclose(got["probability"].to_numpy(), saved["p_xgboost"].to_numpy())
    one = predictor.predict_one(test.row(0, named=True))
    assert one["model"] == "xgboost" and one["probability"] == pytest.approx(got["probability"][0])


def test_features_and_train_rerun_from_the_saved_outputs(
    shop: tuple[Path, MemoryTracker], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = shop
    before = open_run(folder / "runs", NAME)
    res = run_cli(["run", "project.yaml", "--stages", "features,train"], folder, monkeypatch)
    assert res.code == 0, res.err
    after = open_run(folder / "runs", NAME)
    assert after.run_id != before.run_id
    stages = after.manifest["stages"]
    assert stages["data-gen"]["status"] == "reused" and stages["features"]["status"] == "ran"
    assert after.facts["train"]["results"] == before.facts["train"]["results"]  # idempotent

    res = run_cli(["run", "project.yaml", "--skip-stages", "data-gen"], folder, monkeypatch)
    assert res.code == 0, res.err
    skipped = open_run(folder / "runs", NAME)
    assert skipped.manifest["stages"]["data-gen"]["status"] == "reused"
    assert skipped.manifest["stages"]["sessionize"]["status"] == "ran"
    assert skipped.facts["train"]["results"] == before.facts["train"]["results"]
    assert json.loads(json.dumps(skipped.facts["data-gen"])) == before.facts["data-gen"]
