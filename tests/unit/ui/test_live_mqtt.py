"""The Live page's MQTT feed against the real Mosquitto (127.0.0.1:1883; with CI=true a
missing broker fails): the newest JSON messages of a topic, a bad message counted apart."""

from __future__ import annotations

import json
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from opslens.errors import SourceError
from opslens.ui.live import MqttBuffer
from tests.unit.online.test_mqtt import HOST, broker  # noqa: F401 (the broker fixture)


def test_the_buffer_keeps_the_newest_json_messages(broker: int) -> None:  # noqa: F811
    topic = f"t/{uuid.uuid4().hex}/samples"
    buffer = MqttBuffer(HOST, broker, topic)
    assert buffer.connected.wait(10)
    time.sleep(0.3)  # the subscription is acknowledged after the connection
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    publisher.connect(HOST, broker)
    publisher.loop_start()
    for i in range(7):
        publisher.publish(topic, json.dumps({"ts": i, "axis1": float(i)}), qos=1).wait_for_publish(
            10
        )
    publisher.publish(topic, b"not json", qos=1).wait_for_publish(10)
    end = time.monotonic() + 10
    while (len(buffer.messages) < 7 or buffer.rejected < 1) and time.monotonic() < end:
        time.sleep(0.05)
    publisher.loop_stop()
    frame = buffer.frame(5)
    assert frame["ts"].to_list() == [2, 3, 4, 5, 6]
    assert buffer.rejected == 1


def test_an_unreachable_broker_names_the_fields() -> None:
    with pytest.raises(SourceError, match=r"127\.0\.0\.1:1 .*Host and Port"):
        MqttBuffer("127.0.0.1", 1, "t/x")
