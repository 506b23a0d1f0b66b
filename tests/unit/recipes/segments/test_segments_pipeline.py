"""SegmentPipeline, the in-memory API: drift fires retraining at the planted batch, promotion
follows the comparison, a worse challenger keeps the champion, thresholds, errors, health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from opslens.errors import DataError
from opslens.recipes.segments import SegmentPipeline, SegmentsParams
from opslens.synthetic.patients import FEATURES, make_patient_batches, make_patients

DRIFT_AT = 6  # 0-based batch index of the planted drift


def _params(**monitor: object) -> SegmentsParams:
    return SegmentsParams.model_validate(
        {
            "model_features": ["score_lag1", "score_lag2"],
            "lgb_series": {"n_estimators": 60},
            "lgb_resource": {"n_estimators": 60},
            "monitor": {"noise_threshold": 0.25, "window_batches": 1, **monitor},
        }
    )


def _pipe(params: SegmentsParams, clock=None) -> SegmentPipeline:
    data = make_patients(n_rows=2000, seed=0).frame
    return SegmentPipeline(
        params,
        features=list(FEATURES),
        categorical=["ward"],
        series_target="next_score",
        clock=clock,
    ).fit(data, data["next_score"], data["resource_hours"])


def test_drift_triggers_retraining_at_the_planted_batch_and_promotes() -> None:
    pipe = _pipe(_params())
    fired = []
    for i, b in enumerate(make_patient_batches(9, 400, drift_batch=DRIFT_AT, seed=0)):
        result = pipe.process_batch(b.frame)
        r = result.record
        assert r["rows_in"] == r["rows_scored"] + r["rows_rejected"] == 400
        if result.retrained is not None:
            fired.append(i)
    assert fired and DRIFT_AT <= fired[0] <= DRIFT_AT + 2, fired
    assert fired == [fired[0]], "after the promotion the new segment is known: no second retraining"
    first = pipe.retrainings[0]
    assert first.reason.startswith("automatic: noise ratio")
    assert first.promoted and first.ratio < 0.8
    assert pipe.version == 2
    assert pipe.history[-1]["noise_ratio"] < 0.1, "the promoted model knows the drifted population"
    assert any(a["metric"] == "noise_ratio_trend" for a in pipe.alerts())


def test_a_worse_challenger_keeps_the_champion() -> None:
    pipe = _pipe(_params(expanding_window_size=200))
    champion = pipe.model_
    pipe.process_batch(make_patient_batches(1, 300, seed=2)[0].frame, auto_retrain=False)
    result = pipe.retrain("manual: try a tiny window")
    assert not result.promoted and result.ratio > 1
    assert pipe.model_ is champion and pipe.version == 1
    assert pipe.challenger_ is not champion
    assert "champion kept" in result.summary()


def test_scheduled_retraining_is_due_after_the_interval() -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    pipe = _pipe(_params(retrain_interval="1d", noise_threshold=0.9), clock=lambda: now[0])
    batch = make_patient_batches(1, 200, seed=1)[0].frame
    assert pipe.process_batch(batch, auto_retrain=False).retrain_reason is None
    now[0] += timedelta(days=1, hours=1)
    reason = pipe.process_batch(batch, auto_retrain=False).retrain_reason
    assert reason is not None and reason.startswith("scheduled:")


def test_thresholds_alerts_errors_and_degradation() -> None:
    pipe = _pipe(_params(noise_threshold=0.99))
    batch = make_patient_batches(1, 200, seed=1)[0].frame
    pipe.update_thresholds(
        alert={"noise_ratio": 0.0, "memory_usage": 1e-6}, drift={"noise_ratio_trend": 1.0}
    )
    result = pipe.process_batch(batch)
    assert {a["metric"] for a in result.alerts} >= {"memory_usage"}
    assert pipe.health()["status"] == "degraded"
    with pytest.raises(DataError):
        pipe.process_batch(batch.drop("bmi"))
    with pytest.raises(DataError):
        pipe.process_batch(batch.head(0))
    stats = pipe.error_statistics()
    assert stats["errors"] == 2 and stats["by_kind"] == {"batch": 2}
    assert pipe.recent_errors(1)[0]["message"].startswith("the batch has no rows")
    bad = batch.with_columns(ward=batch["ward"].set(batch["ward"].is_in(["icu"]), "mars"))
    r = pipe.process_batch(bad).record
    assert (
        r["rejected_by_reason"] == {"unseen category": r["rows_rejected"]}
        and r["rows_rejected"] > 0
    )
    pipe.enable_graceful_degradation(False)
    assert pipe.health()["graceful_degradation"] is False
