"""Live feeds for a page that watches a stream: the newest rows of a file that grows, the
newest JSON messages of an MQTT topic, or the newest instances the opslens service answered
(``opslens serve``), as a frame (a page scores the first two; the service's rows carry its
answers already).

A file is read again at each refresh (CSV, Parquet or JSON lines; its last ``n`` rows).
An MQTT topic is subscribed to once per server (host, port, topic): a background client
keeps the newest ``MAX_MESSAGES`` messages, each a JSON object. The service is asked at each
refresh (``GET /recent/{analysis}``: each instance with its answer and the version that gave
it), with its token when it has one.

Example:
    >>> tail_rows(pl.DataFrame({"v": [1, 2, 3]}), 2)["v"].to_list()
    [2, 3]
"""

from __future__ import annotations

import json
import threading
from collections import deque
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

from opslens.errors import SourceError

__all__ = [
    "MAX_MESSAGES",
    "MqttBuffer",
    "mqtt_buffer",
    "read_feed_file",
    "service_rows",
    "tail_rows",
]

MAX_MESSAGES = 10_000


def tail_rows(frame: pl.DataFrame, n: int) -> pl.DataFrame:
    """The last ``n`` rows of ``frame``."""
    return frame.tail(n)


def read_feed_file(path: Path, n: int) -> pl.DataFrame:
    """The last ``n`` rows of a CSV, Parquet or JSON-lines file; SourceError naming the file."""
    if not path.is_file():
        raise SourceError(
            f"the stream file '{path}' does not exist",
            fix="type the path of the file the samples are appended to (relative to the project)",
        )
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
        elif suffix in (".jsonl", ".ndjson", ".json"):
            frame = pl.read_ndjson(path)
        else:
            frame = pl.read_csv(path, try_parse_dates=True)
    except Exception as e:  # polars raises many kinds for a half-written or broken file
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise SourceError(
            f"cannot read the stream file '{path}': {first}",
            fix="give a CSV with a header row, a Parquet file or JSON lines",
        ) from None
    return tail_rows(frame, n)


class MqttBuffer:
    """A subscribed MQTT client keeping the newest JSON messages of a topic."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.topic = topic
        self.where = f"{host}:{port}"
        self.messages: deque[dict[str, Any]] = deque(maxlen=MAX_MESSAGES)
        self.rejected = 0
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        try:
            self.client.connect(host, port, keepalive=30)
        except OSError as e:
            raise SourceError(
                f"cannot reach the MQTT broker at {host}:{port} ({e.strerror or e})",
                fix="check the Host and Port fields and that the broker is running",
            ) from None
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            client.subscribe(self.topic, qos=1)
            self.connected.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            value = json.loads(message.payload)
        except ValueError:
            value = None
        if isinstance(value, dict):
            self.messages.append(value)
        else:
            self.rejected += 1

    def frame(self, n: int) -> pl.DataFrame:
        """The newest ``n`` messages as a frame (empty when none has arrived)."""
        rows = list(self.messages)[-n:]
        return pl.DataFrame(rows) if rows else pl.DataFrame()


@st.cache_resource(show_spinner=False, max_entries=8)
def mqtt_buffer(host: str, port: int, topic: str) -> MqttBuffer:
    """The server's subscription to ``topic`` at ``host:port`` (one per server)."""
    return MqttBuffer(host, port, topic)


def service_rows(
    url: str, analysis: str, n: int, *, stream: str | None = None, token: str | None = None
) -> pl.DataFrame:
    """The newest ``n`` instances the opslens service at ``url`` answered for ``analysis`` (of
    one ``stream`` when given), each with its answer and version, oldest first; SourceError in
    the page's words (the URL and Token fields) when the service cannot be asked.

    Example:
        >>> service_rows("http://127.0.0.1:9", "rig", 5)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        opslens.errors.SourceError: cannot reach the opslens service at http://127.0.0.1:9 ...
    """
    import httpx

    base = url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise SourceError(
            f"'{url}' is not a service URL",
            fix="type the URL `opslens serve` listens on, e.g. http://127.0.0.1:8000",
        )
    params: dict[str, Any] = {"n": n}
    if stream:
        params["stream"] = stream
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        answer = httpx.get(f"{base}/recent/{analysis}", params=params, headers=headers, timeout=5)
    except httpx.HTTPError as e:
        raise SourceError(
            f"cannot reach the opslens service at {base} ({type(e).__name__})",
            fix="check the Service URL field and that `opslens serve -p project.yaml` is running",
        ) from None
    if answer.status_code == 401:
        raise SourceError(
            f"the service at {base} refused the token",
            fix="type the service's token (its OPSLENS_SERVICE_TOKEN) in the Token field",
        )
    if answer.status_code == 404:
        raise SourceError(
            f"the service at {base} does not serve '{analysis}' or has no live view "
            "(an opslens older than this app)",
            fix="start the service on this project: `opslens serve -p project.yaml`",
        )
    if answer.status_code != 200:
        raise SourceError(
            f"the service at {base} answered {answer.status_code}",
            fix="see the service's log",
        )
    rows = answer.json().get("rows") or []
    return pl.DataFrame(rows, infer_schema_length=None, strict=False) if rows else pl.DataFrame()
