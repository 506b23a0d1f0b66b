"""Score samples arriving on an MQTT topic; publish each answer to a result topic.

``opslens stream NAME --mqtt-topic T`` subscribes to ``T`` (wildcards allowed)
with QoS 1 and answers every message (one JSON sample) as the file stream
does: stateful predictors (the residual recipe) keep one state per stream id,
the sample's ``stream`` field or, when it has none, the topic it came on. Each
answer goes to the result topic (default ``opslens/<analysis>/levels``) as JSON
with QoS 1; a ``{"status": "ready"}`` message is published there each time the
subscription is (re)made, so a publisher can wait for it.

A model that answers from live events (propensity) starts from the analysis's own
events, as ``opslens stream`` from a file does (:func:`opslens.online.warm.warm_scorer`):
the state is built before the subscription, so a user seen in training is not a cold start
and ``ready`` is published only once the state is warm.

When the broker goes away the client reconnects by itself with exponential
backoff (``min_delay`` doubling up to ``max_delay`` seconds) and subscribes
again. The session is persistent (a fixed client id, ``clean_session=False``),
so QoS 1 messages queued while the client was away are delivered; a message
delivered twice (QoS 1 is at-least-once) carries a ``seq`` or a time the
stream has seen, is answered by nobody and counted as a duplicate: no sample
is scored twice.

Example:
    >>> settings = MqttSettings(topic="machines/+/samples", analysis="axes")
    >>> settings.results, settings.client_id == f"opslens-axes-{os.getpid()}"
    ('opslens/axes/levels', True)
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from opslens.config import ProjectConfig
from opslens.errors import ConfigError, InstanceError, OpslensError, SourceError
from opslens.online.stream import EVENTS, Follower, answer_instance, parse_instance
from opslens.tracking.models import ModelSource, load_model

__all__ = [
    "MqttSettings",
    "MqttStream",
    "MqttSummary",
    "check_broker_address",
    "dumps",
    "filter_problem",
    "stream_mqtt",
]

log = logging.getLogger("opslens.stream.mqtt")


@dataclass(frozen=True)
class MqttSettings:
    """Where to listen and answer, and how to come back after the broker goes away.

    ``client_id`` defaults to ``opslens-<analysis>-<process id>``: fixed for the process,
    so the broker keeps the session (and the QoS 1 messages queued for it) while the
    client is away, and two streams of one analysis do not take over each other's.
    """

    topic: str
    analysis: str
    result_topic: str | None = None
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str | None = None
    qos: int = 1
    keepalive: int = 30
    min_delay: int = 1
    max_delay: int = 30
    refresh_seconds: float = 5.0
    """With ``--from registry``: how often the serving alias is asked for a promoted version."""

    @property
    def results(self) -> str:
        """The topic answers go to."""
        return self.result_topic or f"opslens/{self.analysis}/levels"

    def __post_init__(self) -> None:
        if not self.topic:
            raise ConfigError("--mqtt-topic is empty", fix="name the topic samples arrive on")
        problem = filter_problem(self.topic)
        if problem is not None:
            raise ConfigError(
                f"--mqtt-topic {self.topic!r} is not a valid MQTT topic filter ({problem})",
                fix="use '+' for a whole level and '#' only as the last level, "
                "e.g. machines/+/samples or machines/#",
            )
        if isinstance(self.port, bool) or not 1 <= self.port <= 65535:
            raise ConfigError(
                f"--mqtt-port {self.port} is not a TCP port",
                fix="give --mqtt-port a number from 1 to 65535 (the broker's, usually 1883)",
            )
        if not self.host or not self.host.strip():
            raise ConfigError("--mqtt-host is empty", fix="name the broker's host, e.g. 127.0.0.1")
        if any(c in self.results for c in "+#"):
            raise ConfigError(
                f"the result topic {self.results!r} has a wildcard",
                fix="give --result-topic a plain topic such as opslens/axes/levels",
            )
        if self.client_id is None:
            object.__setattr__(self, "client_id", f"opslens-{self.analysis}-{os.getpid()}")


def filter_problem(topic: str) -> str | None:
    """What makes ``topic`` an invalid MQTT topic filter (MQTT 3.1.1, 4.7), or None.

    Example:
        >>> filter_problem("machines/+/samples"), filter_problem("machines/#")
        (None, None)
        >>> filter_problem("a/#/b")
        "'#' must be the last level"
        >>> filter_problem("a/b+")
        "'+' must be a whole level"
    """
    if "\x00" in topic:
        return "it holds a NUL character"
    if len(topic.encode("utf-8")) > 65535:
        return "it is longer than 65,535 bytes"
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return "'#' must be the last level" if level == "#" else "'#' must be a whole level"
        if "+" in level and level != "+":
            return "'+' must be a whole level"
    return None


def check_broker_address(host: str, port: int) -> None:
    """SourceError at once when ``host`` does not resolve (before any connection is tried).

    Example:
        >>> check_broker_address("127.0.0.1", 1883)
    """
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise SourceError(
            f"the MQTT broker host {host!r} does not resolve ({reason})",
            fix="check --mqtt-host (a name this machine resolves, or an IP address)",
        ) from None


def dumps(record: Any) -> str:
    """JSON text of an answer; NaN and infinities (not JSON) become null.

    Example:
        >>> dumps({"a": float("nan"), "b": [1.0, float("inf")]})
        '{"a": null, "b": [1.0, null]}'
    """
    try:
        return json.dumps(record, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(record), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@dataclass
class MqttSummary:
    """What a stream saw: messages, answers, duplicates dropped, reconnections."""

    received: int = 0
    scored: int = 0
    rejected: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    connects: int = 0
    disconnects: int = 0
    origin: str = ""
    levels: dict[str, int] = field(default_factory=dict)


class MqttStream:
    """A subscribed client: messages go onto a queue; :meth:`run` scores them in order."""

    def __init__(self, predictor: Any, settings: MqttSettings, *, run_id: str = "") -> None:
        try:
            import paho.mqtt.client as mqtt
            from paho.mqtt.enums import CallbackAPIVersion
        except ImportError:
            raise ConfigError(
                "streaming from MQTT needs paho-mqtt, which is not installed",
                fix="pip install 'opslens[mqtt]'",
            ) from None

        self.predictor = predictor
        self.settings = settings
        self.run_id = run_id
        #: set with ``--from registry``: swaps in a promoted version between messages
        self.follow: Follower | None = None
        self.summary = MqttSummary()
        self.states: dict[str, dict[str, Any]] = {}
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.ready = threading.Event()
        self.pending: list[Any] = []  # answers published, not yet acknowledged by the broker
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=str(settings.client_id),
            clean_session=False,
        )
        self.client.reconnect_delay_set(min_delay=settings.min_delay, max_delay=settings.max_delay)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("the broker refused the connection: %s", reason)
            return
        self.summary.connects += 1
        log.info(
            "connected to %s:%d; subscribing to %s",
            self.settings.host,
            self.settings.port,
            self.settings.topic,
        )
        client.subscribe(self.settings.topic, qos=self.settings.qos)

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, codes: Any, props: Any) -> None:
        if any(c.is_failure for c in codes):
            log.warning("the broker refused the subscription to %s", self.settings.topic)
            return
        self.ready.set()
        client.publish(
            self.settings.results,
            json.dumps({"status": "ready", "topic": self.settings.topic, "run_id": self.run_id}),
            qos=self.settings.qos,
        )

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.ready.clear()
        self.summary.disconnects += 1
        log.warning("lost the broker (%s); reconnecting with backoff", reason)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self.messages.put((str(message.topic), bytes(message.payload)))

    def start(self) -> None:
        """Connect in the background (retried with backoff until the broker answers)."""
        self.client.connect_async(
            self.settings.host, self.settings.port, keepalive=self.settings.keepalive
        )
        self.client.loop_start()

    def stop(self, flush_timeout: float = 5.0) -> None:
        """Wait (up to ``flush_timeout`` s) for the broker to take the answers; disconnect."""
        end = time.monotonic() + flush_timeout
        for info in self.pending:
            left = end - time.monotonic()
            if left <= 0 or not self.client.is_connected():
                break
            try:
                info.wait_for_publish(timeout=left)
            except (RuntimeError, ValueError):  # the connection dropped meanwhile
                break
        self.client.disconnect()
        self.client.loop_stop()

    def handle(self, topic: str, payload: bytes) -> dict[str, Any] | None:
        """Score one message and publish the answer; None for a duplicate (not published)."""
        self.summary.received += 1
        item: Any = parse_instance(self.summary.received, payload)
        if item is None:  # an empty message: answered like every other malformed one
            item = InstanceError(
                f"message {self.summary.received} on {topic} is empty",
                fix="send one JSON object per message",
            )
        record: dict[str, Any] = {"topic": topic, "run_id": self.run_id}
        if isinstance(item, OpslensError):
            record["error"] = str(item)
            self.summary.rejected += 1
        else:
            item.setdefault(getattr(self.predictor, "stream_field", "stream"), topic)
            try:
                answer = answer_instance(self.predictor, item, self.states)
            except OpslensError as e:
                record["error"] = str(e)
                self.summary.rejected += 1
            else:
                if answer.get("duplicate"):
                    self.summary.duplicates += 1
                    log.info("duplicate sample on %s (already scored); not answered", topic)
                    return None
                record.update(answer)
                if answer.get("out_of_order"):
                    self.summary.out_of_order += 1
                    log.info("late sample on %s (not above the last seen); not scored", topic)
                else:
                    self.summary.scored += 1
                    level = str(answer.get("level"))
                    self.summary.levels[level] = self.summary.levels.get(level, 0) + 1
        info = self.client.publish(self.settings.results, dumps(record), qos=self.settings.qos)
        self.pending = [i for i in self.pending if not i.is_published()] + [info]
        return record

    def run(
        self,
        *,
        max_messages: int | None = None,
        idle_timeout: float | None = None,
        stop: threading.Event | None = None,
    ) -> MqttSummary:
        """Score messages until ``max_messages`` were received, ``idle_timeout`` s pass without
        one, ``stop`` is set, or Ctrl-C."""
        last = time.monotonic()
        try:
            while stop is None or not stop.is_set():
                if max_messages is not None and self.summary.received >= max_messages:
                    break
                try:
                    topic, payload = self.messages.get(timeout=0.2)
                except queue.Empty:
                    if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                        break
                    continue
                last = time.monotonic()
                fresh = self.follow.poll() if self.follow is not None else None
                if fresh is not None:  # a promoted version answers from this message on
                    self.predictor, self.run_id = fresh.predictor, fresh.run_id
                self.handle(topic, payload)
        except KeyboardInterrupt:
            log.info("interrupted")
        return self.summary


def stream_mqtt(
    project: ProjectConfig,
    settings: MqttSettings,
    *,
    model_source: ModelSource = "latest",
    max_messages: int | None = None,
    idle_timeout: float | None = None,
    connect_timeout: float = 30.0,
    stop: threading.Event | None = None,
) -> MqttSummary:
    """Load the analysis's model, subscribe, score until told to stop; SourceError if no broker.

    The broker's host is resolved first: a name that does not resolve fails at once. A model
    that answers from live events gets its state warm-started from the analysis's events
    before the subscription.
    """
    check_broker_address(settings.host, settings.port)
    loaded = load_model(project, settings.analysis, model_source)
    log.info("scoring with the model from %s", loaded.origin)
    stream = MqttStream(loaded.predictor, settings, run_id=loaded.run_id)
    stream.summary.origin = loaded.origin
    if loaded.predictor.supports("online_scorer"):  # live events: the analysis's events first
        from opslens.online.warm import warm_scorer

        scorer = warm_scorer(project, settings.analysis, loaded.predictor)
        stream.states[EVENTS] = {"scorer": scorer}
    if model_source == "registry":  # follow promotions
        stream.follow = Follower(project, settings.analysis, loaded, settings.refresh_seconds)
    stream.start()
    try:
        if not stream.ready.wait(connect_timeout):
            raise SourceError(
                f"no MQTT broker answered at {settings.host}:{settings.port} "
                f"within {connect_timeout:g} s",
                fix="start the broker (mosquitto) or pass --mqtt-host / --mqtt-port",
            )
        log.info("listening on %s; answers go to %s", settings.topic, settings.results)
        return stream.run(max_messages=max_messages, idle_timeout=idle_timeout, stop=stop)
    finally:
        stream.stop()
