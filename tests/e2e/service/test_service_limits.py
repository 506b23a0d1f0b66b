"""The service under hostile bodies, over real HTTP: 413 before parsing, 422 for non-finite
numbers and deep nesting with the field path, short echoes, slow models off the event loop,
and Prometheus metrics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from opslens.online.service import ServiceSettings, create_app
from tests.e2e.service.helpers import LiveServer, MemorySource, Scaled, wait_for


class Slow(Scaled):
    """Scaled, but each answer takes ``seconds`` of CPU-free waiting (a slow model)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(1.0)
        self.seconds = seconds

    def predict_one(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        time.sleep(self.seconds)
        return super().predict_one(instance)


_SERVER = """
import sys, uvicorn
from opslens.online.service import ServiceSettings, create_app
from tests.e2e.service.helpers import MemorySource, Scaled
source = MemorySource({"scaled": {"1": Scaled(1.0)}}, current={"scaled": "1"})
app = create_app(ServiceSettings(max_body_bytes=1_000_000), source=source)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def own_process() -> Iterator[tuple[httpx.Client, int]]:
    """The service in a process of its own, so that its memory can be read."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(__file__).parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(port)], cwd=root, env=env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            wait_for(lambda: _up(client), "the service to start")
            yield client, server.pid
    finally:
        server.terminate()
        server.wait(30)


def _up(client: httpx.Client) -> bool:
    try:
        return client.get("/health").status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def live() -> Iterator[httpx.Client]:
    source = MemorySource(
        {"scaled": {"1": Scaled(1.0)}, "slow": {"1": Slow(2.0)}},
        current={"scaled": "1", "slow": "1"},
    )
    app = create_app(ServiceSettings(max_batch=5, max_body_bytes=1_000_000), source=source)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def test_a_body_over_the_limit_is_413_before_it_is_read(
    own_process: tuple[httpx.Client, int],
) -> None:
    client, pid = own_process
    idle = _rss_mb(pid)
    big = b'{"x": 1, "label": "' + b"a" * 50_000_000 + b'"}'  # 50 MB, Content-Length sent
    r = client.post("/predict/scaled", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["detail"].startswith("the body is 50,000,021 bytes, more than the 1,000,000")
    assert "--max-body-mb" in r.json()["detail"] and len(r.content) < 1_000

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams in
        yield b'{"x": 1, "label": "'
        for _ in range(50):
            yield b"a" * 1_000_000

    r = client.post("/predict/scaled", content=chunks())
    assert r.status_code == 413 and "over 1,000,000 bytes" in r.json()["detail"]
    assert _rss_mb(pid) - idle < 50  # the bodies were never held whole
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        (b'{"x": NaN, "label": "a"}', ["body", "x"], "finite_number"),
        (b'{"x": Infinity, "label": "a"}', ["body", "x"], "finite_number"),
        (b'{"x": 1e400, "label": "a"}', ["body", "x"], "finite_number"),
        (
            b'{"instances": [{"x": 1, "label": "a"}, {"x": -Infinity, "label": "b"}]}',
            ["body", "instances", 1, "x"],
            "finite_number",
        ),
        (b"[" * 100_000 + b"]" * 100_000, ["body"], "json_depth"),
        (
            b'{"x": ' + b"[" * 40 + b"]" * 40 + b', "label": "a"}',
            ["body", "x"] + [0] * 31,
            "json_depth",
        ),
    ],
)
def test_non_finite_numbers_and_deep_nesting_are_422_with_the_path(
    live: httpx.Client, body: bytes, loc: list[Any], kind: str
) -> None:
    r = live.post("/predict/scaled", content=body)
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert (error["loc"], error["type"]) == (loc, kind)
    assert "fix: " in error["msg"]


def test_a_422_echoes_only_a_short_excerpt_of_the_input(live: httpx.Client) -> None:
    r = live.post("/predict/scaled", json={"x": "y" * 200_000, "label": "a"})
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "x"]
    assert error["input"].endswith("… (200000 characters)") and len(r.content) < 1_000


def test_a_slow_model_never_stalls_health(live: httpx.Client) -> None:
    answers: list[int] = []
    slow = threading.Thread(
        target=lambda: answers.append(
            live.post("/predict/slow", json={"x": 1, "label": "a"}).status_code
        )
    )
    slow.start()
    time.sleep(0.3)  # the slow prediction is running now
    assert live.get("/health").status_code == 200
    assert live.post("/predict/scaled", json={"x": 2, "label": "b"}).json()["answer"]["y"] == 2
    assert not answers  # both answered while the slow one was still working
    slow.join()
    assert answers == [200]


def test_metrics_count_requests_errors_and_name_each_version(live: httpx.Client) -> None:
    before = live.get("/metrics").text
    live.post("/predict/scaled", json={"x": 1, "label": "a"})
    live.post("/predict/scaled", json={"x": "bad", "label": "a"})
    live.post("/predict/nope", json={})
    r = live.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text

    def value(text: str, sample: str) -> float:
        found = [ln for ln in text.splitlines() if ln.startswith(sample + " ")]
        return float(found[0].split()[-1]) if found else 0.0

    for sample, more in (
        ('opslens_requests_total{analysis="scaled",status="200"}', 1),
        ('opslens_requests_total{analysis="scaled",status="422"}', 1),
        ('opslens_requests_total{analysis="unknown",status="404"}', 1),
        ('opslens_prediction_errors_total{analysis="scaled",kind="client"}', 1),
    ):
        assert value(text, sample) - value(before, sample) == more, sample
    assert (
        'opslens_model_info{alias="current",analysis="scaled",recipe="scaled",version="1"} 1.0'
        in text
    )
    assert "opslens_models_loaded 2.0" in text
    assert 'opslens_request_seconds_bucket{analysis="scaled",le="0.01"}' in text
