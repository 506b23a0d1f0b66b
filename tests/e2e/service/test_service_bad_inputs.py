"""The issue's table of bad requests, each answered with its own status over real HTTP (the
service behind a token): a 50 MB body 413, a JSON NaN 422, 100,000 nested brackets 422, a
batch over the limit 413, an unknown analysis 404, a missing or a wrong token 401 — and
the service still answers /health and a good request after each."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from opslens.online.service import ServiceSettings, create_app
from tests.e2e.service.helpers import LiveServer, MemorySource, Scaled

TOKEN_ENV = "OPSLENS_BAD_INPUTS_TOKEN"
GOOD = {"x": 1.0, "label": "a"}
AUTH = {"Authorization": "Bearer right", "Content-Type": "application/json"}

CASES = {
    "50 MB body": ("/predict/scaled", b'{"x": "' + b"9" * 50_000_000 + b'"}', AUTH, 413),
    "JSON NaN": ("/predict/scaled", b'{"x": NaN, "label": "a"}', AUTH, 422),
    "100,000 nested brackets": ("/predict/scaled", b"[" * 100_000 + b"]" * 100_000, AUTH, 422),
    "batch over the limit": (
        "/predict/scaled",
        ('{"instances": [' + ",".join(['{"x": 1, "label": "a"}'] * 6) + "]}").encode(),
        AUTH,
        413,
    ),
    "unknown analysis": ("/predict/nope", b'{"x": 1, "label": "a"}', AUTH, 404),
    "missing token": ("/predict/scaled", b'{"x": 1, "label": "a"}', {}, 401),
    "wrong token": (
        "/predict/scaled",
        b'{"x": 1, "label": "a"}',
        {**AUTH, "Authorization": "Bearer wrong"},
        401,
    ),
}


@pytest.fixture(scope="module")
def secured() -> Iterator[httpx.Client]:
    os.environ[TOKEN_ENV] = "right"
    source = MemorySource({"scaled": {"1": Scaled(1.0)}}, current={"scaled": "1"})
    settings = ServiceSettings(max_batch=5, token_env=TOKEN_ENV)  # 16 MB bodies at most
    app = create_app(settings, source=source)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


@pytest.mark.parametrize("case", list(CASES))
def test_each_bad_request_has_its_status_and_the_service_stays_up(
    secured: httpx.Client, case: str
) -> None:
    path, body, headers, status = CASES[case]
    r = secured.post(path, content=body, headers=headers)
    assert r.status_code == status, (case, r.text[:300])
    assert len(r.content) < 2_000, "the answer echoes at most a short excerpt"
    if status == 422:
        assert r.json()["detail"][0]["loc"][0] == "body"
    assert secured.get("/health").status_code == 200
    good = secured.post("/predict/scaled", json=GOOD, headers=AUTH)
    assert good.status_code == 200 and good.json()["answer"]["y"] == 1.0
