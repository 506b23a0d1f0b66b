"""The fleet model scores devices it never saw: readings → fingerprint → rare score + group.

A synthetic fleet with planted groups and drifting failing devices is split by device:
the model is trained on 180 devices and scores the 60 held out. Measured here: the rare
score separates the held-out failing devices (AUROC; the baseline a user would try
first — the largest |z| of a device's metric means against the training devices — is
computed in the same run), the nearest group recovers the planted group (ARI), the
stream's answer equals the batch's, and the CLI serves it (`opslens stream`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import polars.selectors as cs
import pytest
from pydantic import ValidationError
from sklearn.metrics import adjusted_rand_score, roc_auc_score
from tests.fakes.cli import run_cli

import opslens
from opslens.errors import InstanceError
from opslens.online.service.schemas import request_models
from opslens.synthetic.fleet import make_fleet

METRICS = ["temperature", "vibration", "current"]
COLUMNS = {"entity": "device_id", "time": "timestamp", "metrics": METRICS}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    fleet = make_fleet(seed=0, n_devices=240, n_points=600, n_failing=16)
    ids = fleet.truth["device_id"].to_numpy()
    held = sorted(np.random.default_rng(1).choice(ids, size=60, replace=False).tolist())
    train = fleet.readings.filter(~pl.col("device_id").is_in(held))
    test = fleet.readings.filter(pl.col("device_id").is_in(held))
    result = opslens.run(
        train,
        recipe="fleet",
        name="fleet-split",
        runs_dir=tmp_path_factory.mktemp("fleet") / "runs",
        columns=COLUMNS,
        params={"inspect_top": 0},
    )
    return {"fleet": fleet, "train": train, "test": test, "result": result}


def _means(readings: pl.DataFrame) -> pl.DataFrame:
    return readings.group_by("device_id").agg(pl.col(m).fill_nan(None).mean() for m in METRICS)


def test_held_out_failing_devices_score_high(split: dict[str, Any]) -> None:
    model = split["result"].predictor()
    scored = model.predict_frame(split["test"]).join(split["fleet"].truth, on="device_id")
    assert scored.height == 60 and 3 <= int(scored["failed"].sum()) <= 10
    auroc = roc_auc_score(scored["failed"], scored["score"])

    train_means = _means(split["train"]).select(METRICS).to_numpy()
    held = _means(split["test"]).join(split["fleet"].truth, on="device_id")
    z = np.abs(
        (held.select(METRICS).to_numpy() - np.median(train_means, axis=0)) / train_means.std(axis=0)
    ).max(axis=1)
    baseline = roc_auc_score(held["failed"], z)
    assert auroc >= 0.9, f"fleet model {auroc:.3f}, metric-mean |z| baseline {baseline:.3f}"
    assert auroc > baseline + 0.2, f"fleet model {auroc:.3f}, baseline {baseline:.3f}"


def test_nearest_group_recovers_the_planted_groups(split: dict[str, Any]) -> None:
    model = split["result"].predictor()
    scored = model.predict_frame(split["test"]).join(
        split["fleet"].truth.select("device_id", pl.col("group").alias("planted")), on="device_id"
    )
    healthy = scored.filter(~pl.col("is_rare"))
    assert healthy.height >= 40
    assert adjusted_rand_score(healthy["planted"], healthy["group"]) >= 0.9


def test_training_devices_get_their_batch_scores(split: dict[str, Any]) -> None:
    result = split["result"]
    again = result.predictor().predict_frame(split["train"])
    batch = result.table("rare_scores").select("device_id", "combined")
    joined = again.join(batch, on="device_id")
    assert joined.height == 180
    assert float((joined["score"] - joined["combined"]).abs().max()) == 0.0


def _instance(readings: pl.DataFrame, device: str) -> dict[str, Any]:
    rows = readings.filter(pl.col("device_id") == device).drop("device_id")
    rows = rows.with_columns(
        pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S"), cs.float().fill_nan(None)
    )
    return {"device_id": device, "readings": rows.to_dicts()}


def test_predict_one_equals_predict_frame(split: dict[str, Any]) -> None:
    model = split["result"].predictor()
    test = split["test"]
    device = test["device_id"][0]
    one = model.predict_one(_instance(test, device))
    row = model.predict_frame(test.filter(pl.col("device_id") == device)).row(0, named=True)
    assert one["score"] == row["score"] and one["group"] == row["group"]
    assert one["is_rare"] == row["is_rare"]
    readings = _instance(test, device)["readings"]
    column_wise = {"device_id": device, **{k: [r[k] for r in readings] for k in readings[0]}}
    assert model.predict_one(column_wise)["score"] == one["score"]
    explained = model.explain_one(_instance(test, device))
    assert len(explained["deviating_features"]) == 5
    with pytest.raises(InstanceError, match="lack timestamp"):
        model.predict_one({"device_id": "x", "readings": [{"temperature": 1.0}] * 5})
    with pytest.raises(InstanceError, match="1 reading;"):
        model.predict_one({"device_id": "x", "readings": readings[:1]})
    assert not model.supports("figure") and model.supports("explain_one")


def test_the_single_device_path_answers_as_the_table_path(split: dict[str, Any]) -> None:
    """Readings as JSON sends them (ISO text) take the numpy path; its answers equal the
    one-device table's, for every held-out device and for readings out of order, with
    nulls, whole numbers, a trailing Z, fractional seconds, sensor faults (a flatline, a
    sensor that sends only nulls, a change of unit), or a history short enough for the
    window model."""
    model = split["result"].predictor()
    test = split["test"]
    compared: set[str] = set()
    fast = unvalidated = 0
    schema = request_models("fleet-split", model).single
    for k, device in enumerate(test["device_id"].unique(maintain_order=True).to_list()):
        readings = json.loads(json.dumps(_instance(test, device)["readings"], default=str))
        for r in readings:
            r["timestamp"] = r["timestamp"].replace(" ", "T")
        variants = [readings]
        if k < 8:
            rng = np.random.default_rng(k)
            shuffled = [readings[i] for i in rng.permutation(len(readings))]
            holes = [{**r, "vibration": None} if i % 7 == 0 else r for i, r in enumerate(readings)]
            whole = [{**r, "current": round(r["current"] or 0)} for r in readings]
            zulu = [{**r, "timestamp": r["timestamp"] + "Z"} for r in readings]
            # sensor faults: a flatline, a dead sensor (every reading null), a change of unit
            flat = [{**r, "temperature": 21.5} for r in readings]
            dead = [{**r, "current": None} for r in readings]
            half = len(readings) // 2
            unit = [
                {**r, "vibration": r["vibration"] * 1000} if i >= half and r["vibration"] else r
                for i, r in enumerate(readings)
            ]
            fraction = [{**r, "timestamp": r["timestamp"] + ".250"} for r in readings]
            variants += [shuffled, holes, whole, zulu, readings[-200:], readings[-40:]]
            variants += [flat, dead, unit, fraction]
        for sent in variants:
            instance = {"device_id": device, "readings": sent}
            if model._readings(instance) is None:
                continue
            fast += 1
            one = model.predict_one(instance)
            assert one == model._predict_via_table(instance), (device, len(sent))
            checked = model.predict_checked(instance)  # what the service answers unvalidated
            if checked is not None:
                assert checked == one
                schema.model_validate(instance)  # taken by the request schema too
                unvalidated += 1
            compared.add(one["compared_with"])
    assert "whole history" in compared
    assert fast == 60 + 8 * 10  # every variant took the numpy path
    assert unvalidated >= 60  # short histories (the table writes their note) excepted
    if model.window_scorer is not None:
        assert len(compared) == 2  # the window model answered short histories too


def test_what_the_schema_refuses_is_not_answered_unvalidated(split: dict[str, Any]) -> None:
    """``predict_checked`` answers only instances the request schema takes: a device id that
    is not text, a number beyond ±1e100, a missing metric, a time of another form, too few
    readings go to the schema (422) or to the table path."""
    model = split["result"].predictor()
    test = split["test"]
    device = test["device_id"][0]
    readings = json.loads(json.dumps(_instance(test, device)["readings"], default=str))
    for r in readings:
        r["timestamp"] = r["timestamp"].replace(" ", "T")
    schema = request_models("fleet-split", model).single
    good = {"device_id": device, "readings": readings}
    assert model.predict_checked(good) == model.predict_one(good)
    big = [{**r, "current": 1e101} if i == 3 else r for i, r in enumerate(readings)]
    lacking = [
        {k: v for k, v in r.items() if k != "current"} if i == 3 else r
        for i, r in enumerate(readings)
    ]
    spaced = [{**r, "timestamp": r["timestamp"].replace("T", " ")} for r in readings]
    flagged = [{**r, "current": True} if i == 3 else r for i, r in enumerate(readings)]
    for bad in (
        {"device_id": 7, "readings": readings},
        {"device_id": device, "readings": big},
        {"device_id": device, "readings": lacking},
        {"device_id": device, "readings": spaced},
        {"device_id": device, "readings": flagged},
        {"device_id": device, "readings": readings[:2]},
        [good],
    ):
        assert model.predict_checked(bad) is None
    with pytest.raises(ValidationError):
        schema.model_validate({"device_id": device, "readings": big})


def test_cli_streams_devices(
    split: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    split["test"].write_parquet(tmp_path / "train.parquet")
    (tmp_path / "project.yaml").write_text(
        """
tracking: {enabled: false}
analyses:
  - name: device-fleet
    recipe: fleet
    source: {kind: file, path: train.parquet}
    columns: {entity: device_id, time: timestamp, metrics: [temperature, vibration, current]}
    params: {rare: {methods: [ecod, isolation_forest]}, inspect_top: 0}
"""
    )
    assert run_cli(["run"], tmp_path, monkeypatch).code == 0
    test = split["test"]
    devices = test["device_id"].unique(maintain_order=True).head(2).to_list()
    lines = [json.dumps(_instance(test, d)) for d in devices]
    lines.append(json.dumps({"device_id": "short", "readings": []}))
    (tmp_path / "devices.jsonl").write_text("\n".join(lines) + "\n")
    result = run_cli(
        ["stream", "device-fleet", "--input", "devices.jsonl", "--no-plots"], tmp_path, monkeypatch
    )
    assert result.code == 0, result.err
    out = [json.loads(line) for line in result.out.splitlines()]
    assert [o.get("device_id") for o in out[:2]] == devices
    assert "error" in out[2] and "0 readings" in out[2]["error"]
    assert "2 instances scored, 1 instance rejected; no plots" in " ".join(result.err.split())
