"""Inputs outside the training range: named per batch with their share of rows, the noise ratio
split into rows outside the range and rows inside it in no segment, a calendar counter never
retrains in a loop (refused with a one-line message), and batches drawn from the training
distribution raise no drift warning."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from opslens.errors import ConfigError
from opslens.recipes.segments import SegmentPipeline, SegmentsParams
from opslens.synthetic.patients import FEATURES, make_patient_batches, make_patients

PARAMS = SegmentsParams.model_validate(
    {"model_features": ["score_lag1", "score_lag2"], "monitor": {"window_batches": 1}}
)


def _pipe(data: pl.DataFrame, features: list[str]) -> SegmentPipeline:
    pipe = SegmentPipeline(
        PARAMS, features=features, categorical=["ward"], series_target="next_score"
    ).fit(data, data["next_score"], data["resource_hours"])
    pipe.update_thresholds(alert={"memory_usage": 1e9})  # this process's memory is not the point
    return pipe


@pytest.fixture(scope="module")
def pipe() -> SegmentPipeline:
    return _pipe(make_patients(n_rows=3000, seed=0).frame, list(FEATURES))


def _drift_count(alerts: list[dict]) -> int:
    return sum(a["kind"] == "drift" for a in alerts)


def test_twenty_batches_from_the_training_distribution_raise_no_drift_warning(pipe) -> None:
    warned = 0
    for b in make_patient_batches(20, 300, drift_batch=99, seed=11):  # labelled, no drift
        result = pipe.process_batch(b.frame, auto_retrain=False)
        warned += _drift_count(result.alerts)
        assert result.retrain_reason is None
    assert warned == 0, [a for a in pipe.alerts() if a["kind"] == "drift"]


def test_inputs_outside_the_training_range_are_named_with_their_share(pipe) -> None:
    frame = make_patient_batches(1, 400, drift_batch=99, seed=12)[0].frame
    older = pl.Series(np.arange(400) < 120)  # 30% of the rows far older than anyone trained on
    new_ward = pl.Series(np.arange(400) % 10 == 0)  # 10% from a ward never seen
    frame = frame.with_columns(
        pl.when(older).then(pl.col("age") + 200).otherwise(pl.col("age")).alias("age"),
        pl.when(new_ward).then(pl.lit("mars")).otherwise(pl.col("ward")).alias("ward"),
    )
    r = pipe.process_batch(frame, auto_retrain=False)
    report = r.record["out_of_range"]
    # (a row or two of a fresh batch lies just past the training extremes by chance)
    assert report["age"]["above"] == pytest.approx(0.3, abs=0.01)
    assert report["ward"]["new"] == pytest.approx(0.1)
    assert r.record["past_range"] == []
    named = {a["feature"]: a["value"] for a in r.alerts if a["metric"] == "out_of_range"}
    assert named == pytest.approx({"age": 0.3, "ward": 0.1}, abs=0.01)
    assert r.record["rejected_by_reason"] == {"unseen category": 40}


def test_noise_split_outside_the_range_and_inside_it_in_no_segment() -> None:
    # its own pipeline, so the trend's history does not depend on which tests ran before
    pipe = _pipe(make_patients(n_rows=3000, seed=0).frame, list(FEATURES))
    for b in make_patient_batches(3, 300, drift_batch=99, seed=11):  # the trend's history
        pipe.process_batch(b.frame, auto_retrain=False)
    # the drift population lies between the planted segments, inside every feature's range
    between = make_patient_batches(1, 400, drift_batch=0, drift_share=1.0, seed=13)[0].frame
    inside = pipe.process_batch(between, auto_retrain=False).record
    assert inside["noise_ratio"] >= 0.3
    assert inside["noise_in_range"] >= 0.9 * inside["noise_ratio"]
    # the training population with one vital far beyond anything seen in training
    frame = make_patient_batches(1, 400, drift_batch=99, seed=14)[0].frame
    shifted = frame.with_columns(pl.col("temperature") + 20)
    outside = pipe.process_batch(shifted, auto_retrain=False).record
    assert outside["noise_out_of_range"] >= 0.9 * outside["noise_ratio"] > 0.3
    for r in (inside, outside):
        assert r["noise_in_range"] + r["noise_out_of_range"] == pytest.approx(r["noise_ratio"])
    # the noise-ratio trend watches rows inside the range: only the first batch warns of it
    trend = [a for a in pipe.alerts() if a["metric"] == "noise_ratio_trend"]
    assert [a["batch"] for a in trend] == [inside["batch"]]


def _with_month(frame: pl.DataFrame, months: list[int], seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return frame.with_columns(pl.Series("month", rng.choice(months, frame.height).astype(float)))


def test_a_calendar_counter_never_retrains_in_a_loop_and_retraining_is_refused() -> None:
    """Trained on January–September with the month as a segmenting feature; October, November
    and December each lie past the range: the noise ratio passes the retraining threshold on
    every batch, yet nothing retrains and the warning names the month."""
    data = _with_month(make_patients(n_rows=3000, seed=0).frame, list(range(1, 10)), 0)
    pipe = _pipe(data, [*FEATURES, "month"])
    batches = make_patient_batches(3, 500, drift_batch=99, seed=3)
    for i, b in enumerate(batches):
        r = pipe.process_batch(_with_month(b.frame, [10 + i], i))
        assert r.record["noise_ratio"] > PARAMS.monitor.noise_threshold  # would have retrained
        assert r.record["noise_out_of_range"] == pytest.approx(r.record["noise_ratio"])
        assert r.record["out_of_range"]["month"]["above"] == 1.0
        assert r.record["past_range"] == ["month"]
        assert r.retrain_reason is None and r.retrained is None
        (month,) = [a for a in r.alerts if a.get("feature") == "month"]
        assert "a counter; drop or encode it" in month["message"]
    assert pipe.retrainings == [] and pipe.version == 1
    with pytest.raises(ConfigError) as e:
        pipe.retrain("manual: new quarter")
    said = str(e.value)
    assert "\n" not in said and said.startswith("feature 'month' is above its training range")
    assert "drop 'month' from columns.metrics" in said
    assert pipe.retrainings == [] and pipe.version == 1
