"""The distribution recipe on planted deliveries: five shapes of different scales, honest quality.

Planted: bike / scooter / van / truck, and a bimodal truck-at-the-weekend shape,
0.1% of the rows 20 times too long (stuck parcels). Defaults only (plus the unit
and a declared support), so the test is of the defaults.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score
from tests.fakes.cli import run_cli

from opslens.api import load_project
from opslens.recipes.distribution.narrative import (
    COVERAGE_SENTENCE,
    HDR_SENTENCE,
    LOG_SCORE_SENTENCE,
)
from opslens.runner import run_analysis
from opslens.synthetic.trips import make_trips
from opslens.tracking.models import load_predictor
from opslens.tracking.runs import open_run
from opslens.tracking.tracker import MemoryTracker

pytestmark = pytest.mark.slow

CATS = ["zone", "hour_band", "vehicle_type", "day_type"]
PROJECT = """
tracking: {enabled: false}
analyses:
  - name: deliveries
    recipe: distribution
    source: {kind: file, path: trips.parquet}
    columns: {time: started_at, target: duration_min, categorical: [zone, hour_band, vehicle_type, day_type]}
    params: {unit: min, support: [0, null]}
"""


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    folder = tmp_path_factory.mktemp("deliveries")
    data = make_trips(n_rows=30_000, seed=3, scenario="delivery")
    data.trips.write_parquet(folder / "trips.parquet")
    (folder / "project.yaml").write_text(PROJECT)
    run_analysis(load_project(folder / "project.yaml"), "deliveries", tracker=MemoryTracker())
    return folder, data


def _comb(frame: pl.DataFrame) -> pl.Expr:
    return pl.concat_str([pl.format(f"{c}={{}}", c) for c in CATS], separator="|").alias("comb")


def test_defaults_recover_five_shapes_of_different_scales(delivered: tuple[Path, Any]) -> None:
    folder, data = delivered
    run = open_run(folder / "runs", "deliveries")
    truth = data.truth.with_columns(_comb(data.truth))
    joined = run.table("clusters").join(truth.select("comb", "shape"), on="comb", how="inner")
    assert joined.height == run.table("clusters").height == 192
    ari = adjusted_rand_score(joined["shape"].to_numpy(), joined["cluster"].to_numpy())
    assert ari >= 0.9, ari
    assert run.facts["choose_k"]["k"] == 5
    assert "within one standard error" in run.facts["choose_k"]["reason"]
    assert all("silhouette" in c for c in run.facts["choose_k"]["curve"])  # second opinions kept


def test_blended_prediction_beats_both_baselines_on_the_later_rows(
    delivered: tuple[Path, Any],
) -> None:
    folder, _ = delivered
    run = open_run(folder / "runs", "deliveries")
    ev = run.facts["classify"]["holdout_scores"]
    assert ev["blended"]["log_score"] >= ev["own_histogram"]["log_score"]
    assert ev["blended"]["log_score"] >= ev["global_histogram"]["log_score"] + 1.0
    assert ev["blended"]["crps"] <= ev["global_histogram"]["crps"]
    assert abs(ev["blended"]["coverage_90"] - 0.9) <= 0.04
    assert abs(ev["blended"]["coverage_50"] - 0.5) <= 0.04
    assert 0 < ev["strength"] < float("inf")
    assert run.facts["prepare"]["holdout"] == "the last 25% of started_at"
    # the classifier is scored on combinations it never saw
    clf = run.facts["classify"]
    assert clf["split"] == "held-out combinations" and clf["test_combinations"] >= 20
    assert clf["accuracy"] >= 0.9  # the vehicle (and the weekend) decide the shape


def test_hdrs_hold_their_coverage_inside_the_support(delivered: tuple[Path, Any]) -> None:
    folder, data = delivered
    run = open_run(folder / "runs", "deliveries")
    rows = data.trips.with_columns(_comb(data.trips)).join(
        run.table("clusters").select("comb", "cluster"), on="comb"
    )
    outliers = 0
    for prof in run.table("profiles").iter_rows(named=True):
        v = rows.filter(pl.col("cluster") == prof["cluster"])["duration_min"].to_numpy()
        for c in (50, 90):
            regions = prof[f"hdr_{c}"]
            inside = np.zeros(v.size, dtype=bool)
            for lo, hi in regions:
                assert 0.0 <= lo and v.min() <= lo <= hi <= v.max()
                inside |= (v >= lo) & (v <= hi)
            assert abs(inside.mean() - c / 100) <= 0.02, (prof["cluster"], c, inside.mean())
        if prof["n_outliers"]:
            assert prof["outlier_max"] == pytest.approx(v.max())
        outliers += prof["n_outliers"]
    assert outliers >= 10  # the stuck parcels are counted, not folded into the regions
    assert run.facts["cluster"]["outliers"] == outliers


def test_headline_metrics_in_the_runs_listing(
    delivered: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = delivered
    run = open_run(folder / "runs", "deliveries")
    assert list(run.manifest["metrics"])[:4] == [
        "log_score",
        "log_score_own",
        "log_score_global",
        "coverage_90",
    ]
    result = run_cli(["runs"], folder, monkeypatch)
    assert result.code == 0, result.err
    assert "log_score=" in result.out and "coverage_90=" in result.out


def test_unknown_level_is_answered_by_the_combinations_sharing_the_known_attributes(
    delivered: tuple[Path, Any],
) -> None:
    folder, _ = delivered
    run = open_run(folder / "runs", "deliveries")
    model = load_predictor(folder / "runs", "deliveries").predictor
    instance = {"zone": "nowhere", "hour_band": "night", "vehicle_type": "truck", "day_type": "x"}
    answer = model.predict_one(instance)
    assert answer["unknown"] == ["zone", "day_type"]
    clusters = run.table("clusters").filter(
        pl.col("comb").str.contains("hour_band=night|vehicle_type=truck|", literal=True)
    )
    weights = clusters.group_by("cluster").agg(pl.col("n_rows").sum())
    expected = {str(c): n / weights["n_rows"].sum() for c, n in weights.iter_rows()}
    got = {k: v for k, v in answer["probabilities"].items() if v > 0}
    assert got.keys() == expected.keys() and len(got) == 2  # truck weekday and weekend
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, abs=1e-12)
    # the same answer in a batch, and the level flagged on the plot
    batch = model.predict_frame(pl.DataFrame([instance]))
    assert [batch[f"p_{c}"][0] for c in model.classes] == [
        answer["probabilities"][str(c)] for c in model.classes
    ]
    fig = model.figure({**instance, "duration_min": 2000.0}, answer, "late truck")
    title = fig.axes[0].get_title()
    assert "zone=nowhere (unknown)" in title and "vehicle_type=truck" in title
    assert fig.axes[0].get_xlabel() == "duration_min (min)"
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("outside the 90% HDR" in t for t in legend)
    assert model.predict_one({**instance, "duration_min": 2000.0})["outside_hdr_90"] is True


def test_answers_kept_per_combination_equal_fresh_ones(delivered: tuple[Path, Any]) -> None:
    import pickle

    folder, _ = delivered
    model = load_predictor(folder / "runs", "deliveries").predictor
    rows = pl.read_parquet(folder / "trips.parquet").head(300).to_dicts()
    first = [model.predict_one(r) for r in rows]
    again = [model.predict_one(r) for r in rows]  # from the answers kept per combination
    fresh = pickle.loads(pickle.dumps(model))  # the kept answers are not pickled
    assert "_answers" not in fresh.__dict__ and len(model.__dict__["_answers"]) > 1
    assert first == again == [fresh.predict_one(r) for r in rows]
    # the target check is made per instance, never kept
    assert {a["outside_hdr_90"] for a in first} == {False, True}


def test_numeric_levels_are_one_level(tmp_path: Path) -> None:
    data = make_trips(n_rows=6_000, seed=4, scenario="delivery")
    hours = {"night": 0, "morning": 6, "midday": 12, "evening": 18}
    trips = data.trips.with_columns(
        pl.col("hour_band").replace_strict(hours, return_dtype=pl.Float64).alias("hour")
    )
    trips.write_parquet(tmp_path / "trips.parquet")
    (tmp_path / "project.yaml").write_text(
        PROJECT.replace("zone, hour_band, vehicle_type, day_type", "hour, vehicle_type").replace(
            "name: deliveries", "name: hours"
        )
    )
    run_analysis(load_project(tmp_path / "project.yaml"), "hours", tracker=MemoryTracker())
    model = load_predictor(tmp_path / "runs", "hours").predictor
    assert model.classifier.levels_["hour"] == ["0", "12", "18", "6"]
    answers = [model.predict_one({"hour": h, "vehicle_type": "van"}) for h in (6, 6.0, "6", "6.0")]
    assert all(a["unknown"] == [] for a in answers)
    assert all(a["probabilities"] == answers[0]["probabilities"] for a in answers)
    assert all(a["hdr_90"] == answers[0]["hdr_90"] for a in answers)
    comb = open_run(tmp_path / "runs", "hours").table("clusters")["comb"].to_list()
    assert "hour=6|vehicle_type=van" in comb


def test_report_explains_and_formats_for_people(
    delivered: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = delivered
    result = run_cli(["report", "deliveries"], folder, monkeypatch)
    assert result.code == 0, result.err
    html = (open_run(folder / "runs", "deliveries").path / "report.html").read_text()
    for sentence in (HDR_SENTENCE, LOG_SCORE_SENTENCE, COVERAGE_SENTENCE):
        assert sentence.replace("'", "&#39;") in html or sentence in html
    assert "Which combinations follow which pattern" in html
    assert "vehicle_type=truck" in html
    assert re.search(r"-\d[\d.,]* min", html) is None  # no negative duration
    assert re.search(r"\b\d{2,3}(\.\d)?%", html)  # shares as percentages
    assert not re.search(r"covers 1 of", html)
