"""`opslens stream` on a model that answers from live events: event lines go into the state,
score lines are answered from it, a bad line is named and nothing else is lost."""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opslens.api import load_project
from opslens.online import stream
from opslens.recipes.propensity.modelling import fit_xgboost
from opslens.recipes.propensity.params import ModelParams
from opslens.recipes.propensity.point_in_time import FEATURE_COLUMNS
from opslens.recipes.propensity.predictor import PropensityPredictor
from opslens.synthetic.clickstream import clickstream_frame
from opslens.tracking.models import LoadedPredictor

OPTIONS = {"num_users": 60, "num_items": 20, "num_days": 10}


@pytest.fixture(scope="module")
def model() -> PropensityPredictor:
    rng = np.random.default_rng(0)
    X = rng.random((400, len(FEATURE_COLUMNS) + 1)) * 10
    y = (X[:, FEATURE_COLUMNS.index("pair_views")] > 6).astype(int)
    clf = fit_xgboost(X, y, ModelParams(n_estimators=20), 0)
    return PropensityPredictor(clf, "xgboost", FEATURE_COLUMNS, ["books"], horizon_hours=168.0)


def test_event_and_score_lines_through_opslens_stream(
    model: PropensityPredictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "project.yaml").write_text(
        "tracking: {enabled: false}\nanalyses:\n  - name: shop\n    recipe: propensity\n"
        "    source: {kind: synthetic, generator: clickstream, seed: 3,"
        f" options: {json.dumps(OPTIONS)}}}\n"
    )
    loaded = LoadedPredictor(model, None, "run-1", {}, "memory")
    monkeypatch.setattr(stream, "load_model", lambda *a, **k: loaded)
    raw = clickstream_frame(seed=3, **OPTIONS)
    last = raw["timestamp"].max()
    user = str(raw["user_id"][-1])
    at = (last + timedelta(minutes=30)).isoformat()
    ask = {"user": user, "items": ["i00003", "i00004"], "at": at}
    lines = [
        ask,
        *(
            {
                "user_id": user,
                "item_id": "i00004",
                "event_type": "view",
                "timestamp": (last + timedelta(minutes=m)).isoformat(),
            }
            for m in range(1, 6)
        ),
        {"user_id": user, "item_id": "i00004", "event_type": "teleport", "timestamp": at},
        ask,
        {"user": user, "items": "i00004"},
    ]
    out = tmp_path / "out.jsonl"
    summary = stream.stream_instances(
        load_project(tmp_path / "project.yaml"),
        "shop",
        stdin=io.StringIO("\n".join(json.dumps(x) for x in lines) + "\n"),
        output=out,
        plots=False,
    )
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert summary.scored == 7 and summary.rejected == 2
    first, *events, teleport, again, bad = records
    assert [e["event"] for e in events] == ["accepted"] * 5
    assert events[-1]["events_in_state"] == raw.height + 5  # warm-started from the source
    assert "event_type 'teleport' is not one of" in teleport["error"]
    assert "items must be a non-empty list" in bad["error"]
    before = {r["item_id"]: r["probability"] for r in first["items"]}
    after = {r["item_id"]: r["probability"] for r in again["items"]}
    assert before["i00004"] != after["i00004"]  # its five new views count


def test_without_a_warm_start_the_state_starts_empty(model: PropensityPredictor) -> None:
    states: dict[str, dict[str, Any]] = {}
    answer = stream.answer_instance(
        model, {"user": "u", "items": ["x"], "at": "2024-01-01T00:00:00"}, states
    )
    assert answer["cold_start"] is True and stream.EVENTS in states


def test_mqtt_messages_take_events_and_score_lines_too(model: PropensityPredictor) -> None:
    from opslens.online.mqtt import MqttSettings, MqttStream

    mqtt = MqttStream(model, MqttSettings(topic="shop/events", analysis="shop"))
    mqtt.client.connect("127.0.0.1", 1883)  # the broker the test machine runs
    mqtt.client.loop_start()
    try:
        event = {
            "user_id": "u",
            "item_id": "x",
            "event_type": "view",
            "timestamp": "2024-01-01T10:00:00",
        }
        took = [mqtt.handle("shop/events", json.dumps(event).encode()) for _ in range(3)]
        bad = mqtt.handle("shop/events", json.dumps({**event, "event_type": "zap"}).encode())
        answer = mqtt.handle(
            "shop/events",
            json.dumps({"user": "u", "items": ["x"], "at": "2024-01-01T11:00:00"}).encode(),
        )
    finally:
        mqtt.client.disconnect()
        mqtt.client.loop_stop()
    assert [t["events_in_state"] for t in took if t] == [1, 2, 3]
    assert bad is not None and "event_type 'zap'" in bad["error"]
    assert (
        answer is not None
        and answer["cold_start"] is False
        and answer["items"][0]["item_id"] == "x"
    )
    assert mqtt.summary.scored == 4 and mqtt.summary.rejected == 1


def test_opslens_stream_over_mqtt_is_warm_started_from_the_analysis_events(
    model: PropensityPredictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the real Mosquitto: a user of the training events is not a cold start (the state
    holds every event of the source before the subscription), a user never seen is."""
    import socket
    import threading
    import uuid

    import paho.mqtt.client as paho
    from tests.conftest import _service_missing

    from opslens.online import mqtt

    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=2).close()
    except OSError as e:
        _service_missing("Mosquitto at 127.0.0.1:1883", e)
    (tmp_path / "project.yaml").write_text(
        "tracking: {enabled: false}\nanalyses:\n  - name: shop\n    recipe: propensity\n"
        "    source: {kind: synthetic, generator: clickstream, seed: 3,"
        f" options: {json.dumps(OPTIONS)}}}\n"
    )
    loaded = LoadedPredictor(model, None, "run-1", {}, "memory")
    monkeypatch.setattr(mqtt, "load_model", lambda *a, **k: loaded)
    raw = clickstream_frame(seed=3, **OPTIONS)
    at = (raw["timestamp"].max() + timedelta(minutes=30)).isoformat()
    user = str(raw["user_id"][-1])
    topic, results = f"t/{uuid.uuid4().hex}/events", f"t/{uuid.uuid4().hex}/scores"
    got: list[dict[str, Any]] = []
    subscribed = threading.Event()
    collector = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"c-{uuid.uuid4().hex}")
    collector.on_connect = lambda c, *_: c.subscribe(results, qos=1)
    collector.on_subscribe = lambda *_: subscribed.set()
    collector.on_message = lambda c, u, m: got.append(json.loads(m.payload))
    collector.connect("127.0.0.1", 1883)
    collector.loop_start()
    assert subscribed.wait(10)
    settings = mqtt.MqttSettings(
        topic=topic, analysis="shop", result_topic=results, client_id=f"s-{uuid.uuid4().hex}"
    )
    out: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: out.update(
            summary=mqtt.stream_mqtt(
                load_project(tmp_path / "project.yaml"), settings, max_messages=2, idle_timeout=30
            )
        )
    )
    thread.start()
    publisher = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"p-{uuid.uuid4().hex}")
    try:
        end = time.monotonic() + 60
        while not any(g.get("status") == "ready" for g in got) and time.monotonic() < end:
            time.sleep(0.05)
        publisher.connect("127.0.0.1", 1883)
        publisher.loop_start()
        for who in (user, "never-seen"):
            ask = {"user": who, "items": ["i00003", "i00004"], "at": at}
            publisher.publish(topic, json.dumps(ask), qos=1).wait_for_publish(10)
        thread.join(60)
        while len([g for g in got if "items" in g]) < 2 and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        publisher.loop_stop()
        collector.disconnect()
        collector.loop_stop()
    seen, unseen = [g for g in got if "items" in g]
    assert seen["user_id"] == user and seen["cold_start"] is False
    assert unseen["user_id"] == "never-seen" and unseen["cold_start"] is True
    assert out["summary"].scored == 2 and out["summary"].rejected == 0
