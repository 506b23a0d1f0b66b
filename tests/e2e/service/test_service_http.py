"""The service over real HTTP with in-memory models: answers, errors, auth, hot swap, stream state."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from opslens.online.service import ServiceSettings, create_app
from opslens.online.service.state import RedisState
from opslens.tracking.runs import RunWriter
from tests.e2e.service.helpers import LiveServer, MemorySource, RunLength, Scaled, wait_for
from tests.fakes.cli import run_cli


def _source() -> MemorySource:
    return MemorySource(
        {
            "scaled": {"1": Scaled(1.0), "2": Scaled(2.0)},
            "runs": {"1": RunLength(limit=1.0, sustain=3)},
            "pending": {"1": Scaled(5.0)},
        },
        current={"scaled": "1", "runs": "1"},
    )


def _app(source: MemorySource | None = None, **settings: Any) -> Any:
    return create_app(ServiceSettings(**settings), source=source or _source())


@pytest.fixture(scope="module")
def live() -> Any:
    with (
        LiveServer(_app(max_batch=5)) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        yield client


def test_single_and_batch_answers_name_the_version(live: httpx.Client) -> None:
    one = live.post("/predict/scaled", json={"x": 3, "label": "7"})
    assert one.status_code == 200
    assert one.json() == {
        "analysis": "scaled",
        "recipe": "scaled",
        "version": "1",
        "alias": "current",
        "run_id": "run-1",
        "answer": {"y": 3.0, "label": "7"},  # the raw instance reaches the predictor
    }
    # strict, as the schema says: a number where it says text is refused, not turned into text
    strict = live.post("/predict/scaled", json={"x": 3, "label": 7})
    assert strict.status_code == 422
    assert strict.json()["detail"][0]["loc"] == ["body", "label"]
    missing = live.post("/predict/scaled", json={"x": 3, "label": None})  # present, but null
    assert missing.json()["answer"] == {"y": 3.0, "label": None}
    many = live.post("/predict/scaled", json={"instances": [{"x": 1, "label": "a"}] * 5})
    assert many.status_code == 200
    assert many.json()["answers"] == [{"y": 1.0, "label": "a"}] * 5
    assert many.json()["version"] == "1"


def test_health_and_models(live: httpx.Client) -> None:
    assert live.get("/health").json() == {"status": "ok", "analyses": 3, "loaded": 2}
    models = {m["analysis"]: m for m in live.get("/models").json()["models"]}
    assert models["scaled"]["version"] == "1" and models["scaled"]["run_id"] == "run-1"
    assert models["scaled"]["inputs"] == {"x": "number", "label": "string"}
    assert models["runs"]["stateful"] is True
    assert models["pending"]["loaded"] is False
    assert "no model under 'current' yet" in models["pending"]["reason"]


def test_unknown_analysis_is_404_naming_the_known_ones(live: httpx.Client) -> None:
    r = live.post("/predict/nope", json={"x": 1})
    assert r.status_code == 404
    assert r.json()["known"] == ["scaled", "runs", "pending"]
    assert r.json()["detail"] == "no analysis named 'nope'; fix: use one of: scaled, runs, pending"


def test_analysis_without_a_model_is_409_and_the_others_serve(live: httpx.Client) -> None:
    r = live.post("/predict/pending", json={"x": 1, "label": "a"})
    assert r.status_code == 409
    assert live.post("/predict/scaled", json={"x": 1, "label": "a"}).status_code == 200
    assert r.json()["detail"].startswith("analysis 'pending' has no model under 'current' yet")


def test_oversized_batch_is_413(live: httpx.Client) -> None:
    r = live.post("/predict/scaled", json={"instances": [{"x": 1, "label": "a"}] * 6})
    assert r.status_code == 413
    assert r.json()["max_batch"] == 5
    assert r.json()["detail"].startswith("the batch holds 6 instances, more than the 5")


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ({"label": "a"}, ["body", "x"], "missing"),
        ({"x": "many", "label": "a"}, ["body", "x"], "float_type"),
        ({"x": "3", "label": "a"}, ["body", "x"], "float_type"),  # strict: text is not a number
        ({"x": True, "label": "a"}, ["body", "x"], "float_type"),
        ({"x": 1, "label": ["a"]}, ["body", "label"], "string_type"),
        (
            {"instances": [{"x": 1, "label": "a"}, {"x": 1}]},
            ["body", "instances", 1, "label"],
            "missing",
        ),
        ({"instances": []}, ["body", "instances"], "too_short"),
        ({"instances": [{"x": 1, "label": "a"}], "extra": 1}, ["body", "extra"], "extra_forbidden"),
        ([1, 2], ["body"], "model_type"),
    ],
)
def test_bad_payloads_are_422_naming_the_field(
    live: httpx.Client, body: Any, loc: list[Any], kind: str
) -> None:
    r = live.post("/predict/scaled", json=body)
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert (error["loc"], error["type"]) == (loc, kind)


def test_not_json_and_predictor_refusals_are_422(live: httpx.Client) -> None:
    r = live.post("/predict/scaled", content=b"{not json")
    assert r.status_code == 422
    assert r.json()["detail"][0]["msg"].startswith("the body is not JSON (Expecting property name")
    r = live.post("/predict/scaled", json={"x": -1, "label": "a"})
    assert r.status_code == 422
    assert r.json()["detail"] == [
        {"type": "instance", "loc": ["body"], "msg": "x is -1, below 0; fix: send x >= 0"}
    ]
    r = live.post(
        "/predict/scaled", json={"instances": [{"x": 1, "label": "a"}, {"x": -2, "label": "b"}]}
    )
    assert r.json()["detail"][0]["loc"] == ["body", "instances", 1]


def test_bearer_token_guards_all_but_health(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSLENS_TEST_TOKEN", "s3cret")
    app = _app(token_env="OPSLENS_TEST_TOKEN")
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.get("/health").status_code == 200
        body = {"x": 1, "label": "a"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            for r in (
                client.get("/models", headers=headers),
                client.post("/predict/scaled", json=body, headers=headers),
            ):
                assert r.status_code == 401
                assert r.headers["www-authenticate"] == "Bearer"
                assert "$OPSLENS_TEST_TOKEN" in r.json()["detail"]
        good = {"Authorization": "Bearer s3cret"}
        assert client.get("/models", headers=good).status_code == 200
        assert client.post("/predict/scaled", json=body, headers=good).json()["answer"]["y"] == 1.0
        assert client.post("/predict/nope", json=body).status_code == 401  # names stay private
        # the documentation and the metrics name the analyses: behind the token too
        for path in ("/openapi.json", "/docs", "/redoc", "/metrics"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers=good).status_code == 200, path
        doc = client.get("/openapi.json", headers=good).json()
        assert doc["paths"]["/predict/scaled"]["post"]["security"] == [{"HTTPBearer": []}]


def test_the_fast_path_answers_byte_for_byte_as_fastapis_route(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """POST /predict of a served model is answered in front of FastAPI (FastPredict); the
    same requests sent to a twin service past it, to FastAPI's own stack, get the same
    status and bytes (stream state included: each service keeps its own)."""
    import asyncio

    from fastapi import FastAPI

    from opslens.online.service.predict import FastPredict

    monkeypatch.setenv("OPSLENS_TEST_TOKEN", "s3cret")
    app = _app(max_batch=2, token_env="OPSLENS_TEST_TOKEN")
    twin = _app(max_batch=2, token_env="OPSLENS_TEST_TOKEN")
    fastapi_only = FastAPI.build_middleware_stack(twin)  # FastAPI's stack, no fast path
    good = {"Authorization": "Bearer s3cret", "Content-Type": "application/json"}
    sent: list[tuple[str, bytes, dict[str, str]]] = [
        ("/predict/scaled", b'{"x": 3, "label": "7"}', good),
        ("/predict/scaled", b'{"instances": [{"x": 1, "label": "a"}]}', good),
        ("/predict/scaled", b'{"x": "3", "label": "7"}', good),  # 422: text for a number
        ("/predict/scaled", b'{"x": NaN, "label": "7"}', good),  # 422: non-finite
        ("/predict/scaled", b'{"x": -1, "label": "7"}', good),  # 422: the predictor refuses
        ("/predict/scaled", b"[[[[" * 40, good),  # 422: too deep
        ("/predict/scaled", b"not json", good),
        ("/predict/scaled", b'{"instances": [{"x": 1, "label": "a"}, {"x": -2}]}', good),
        ("/predict/scaled", b'{"instances": [' + b'{"x": 1, "label": "a"},' * 2 + b"{}]}", good),
        ("/predict/runs", b'{"x": 2, "stream_id": "s1"}', good),  # a stream's state
        ("/predict/runs", b'{"stream_id": "s1", "instances": [{"x": 3}, {"x": 4}]}', good),
        ("/predict/runs", b'{"x": 2}', good),  # 422: no stream id
        ("/predict/scaled", b"{}", {"Authorization": "Bearer wrong"}),  # 401 (FastAPI's)
        ("/predict/nope", b"{}", good),  # 404 (FastAPI's)
        ("/predict/pending", b"{}", good),  # 409 (FastAPI's)
    ]

    async def answers(target: Any) -> list[tuple[int, bytes, str]]:
        transport = httpx.ASGITransport(app=target)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            out = []
            for path, body, headers in sent:
                r = await client.post(path, content=body, headers=headers)
                out.append((r.status_code, r.content, r.headers["content-type"]))
            return out

    fast = asyncio.run(answers(app))
    assert isinstance(app.middleware_stack, FastPredict)  # in front of FastAPI's own stack
    assert fast == asyncio.run(answers(fastapi_only))
    statuses = [status for status, _, _ in fast]
    assert statuses == [200, 200, 422, 422, 422, 422, 422, 422, 413, 200, 200, 422, 401, 404, 409]
    assert b'"n":3' in fast[10][1]  # the stream's third sample
    # each request counted in the metrics (the 401 not: it names no analysis it may see)
    text = app.state.metrics.render().decode()
    assert 'opslens_requests_total{analysis="scaled",status="200"} 2.0' in text
    assert 'opslens_requests_total{analysis="scaled",status="422"} 6.0' in text
    assert 'opslens_requests_total{analysis="runs",status="200"} 2.0' in text
    assert 'opslens_requests_total{analysis="unknown",status="404"} 1.0' in text
    assert 'opslens_requests_total{analysis="pending",status="409"} 1.0' in text


def test_openapi_has_typed_models_per_analysis(live: httpx.Client) -> None:
    doc = live.get("/openapi.json").json()
    assert {"/health", "/models", "/predict/scaled", "/predict/runs"} <= set(doc["paths"])
    assert "/predict/pending" not in doc["paths"]
    schemas = doc["components"]["schemas"]
    instance = schemas["ScaledInstance"]
    assert instance["properties"]["x"]["anyOf"] == [{"type": "number"}, {"type": "null"}]
    assert instance["properties"]["label"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert instance["required"] == ["x", "label"]
    assert "stream_id" in schemas["RunsSample"]["required"]
    assert schemas["RunsAnswer"]["required"][-1] == "answer"
    body = doc["paths"]["/predict/scaled"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["oneOf"] == [
        {"$ref": "#/components/schemas/ScaledInstance"},
        {"$ref": "#/components/schemas/ScaledBatch"},
    ]


def test_hot_swap_loses_no_request_and_each_answer_names_its_version() -> None:
    source = _source()
    app = _app(source, poll_seconds=0.05)
    seen: list[list[tuple[str, float, float]]] = [[] for _ in range(4)]
    swapped = threading.Event()
    failures: list[str] = []

    def client_loop(server_url: str, k: int) -> None:
        with httpx.Client(base_url=server_url, timeout=60) as client:
            i = 0
            while len(seen[k]) < 400 and not (swapped.is_set() and len(seen[k]) > 200):
                i += 1
                r = client.post("/predict/scaled", json={"x": i, "label": "a"})
                if r.status_code != 200:
                    failures.append(r.text)
                    continue
                body = r.json()
                seen[k].append((body["version"], float(i), body["answer"]["y"]))

    with LiveServer(app) as server:
        threads = [threading.Thread(target=client_loop, args=(server.url, k)) for k in range(4)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: sum(map(len, seen)) >= 200, "200 answers")
            source.promote("scaled", "2")
            wait_for(lambda: any(v == "2" for s in seen for v, _, _ in s), "version 2")
        finally:
            swapped.set()
        for t in threads:
            t.join()
    assert failures == []
    for answers in seen:
        versions = [v for v, _, _ in answers]
        assert versions[0] == "1" and versions[-1] == "2"
        first_new = versions.index("2")
        assert set(versions[first_new:]) == {"2"}  # once swapped, never back
        for version, x, y in answers:
            assert y == float(version) * x  # made by the version it names
    assert source.loads == 3  # scaled v1, runs v1, scaled v2: nothing loaded twice


def _library(predictor: RunLength, xs: list[float]) -> list[dict[str, Any]]:
    state: dict[str, Any] | None = None
    out = []
    for x in xs:
        answer, state = predictor.step({"x": x}, state)
        out.append(answer)
    return out


XS = [0.5, 2, 2, 2, 3, 0, 2, 2, 2, 2, 0.1]


def test_stateful_streams_keep_their_own_run_length(live: httpx.Client) -> None:
    a, b = f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"
    got_a, got_b = [], []
    for x in XS:  # two streams interleaved
        got_a.append(live.post("/predict/runs", json={"x": x, "stream_id": a}).json())
        got_b.append(live.post("/predict/runs", json={"x": 5 - x, "stream_id": b}).json())
    assert [g["answer"] for g in got_a] == _library(RunLength(), XS)
    assert [g["answer"] for g in got_b] == _library(RunLength(), [5 - x for x in XS])
    assert [g["answer"]["level"] for g in got_a] == ["ok"] * 3 + ["alert"] * 2 + ["ok"] * 3 + [
        "alert"
    ] * 2 + ["ok"]
    assert got_a[0]["stream_id"] == a
    batch = live.post(
        "/predict/runs",
        json={"stream_id": f"c-{uuid.uuid4().hex}", "instances": [{"x": x} for x in XS[:5]]},
    )
    assert batch.json()["answers"] == _library(RunLength(), XS[:5])
    r = live.post("/predict/runs", json={"x": 1})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "stream_id"]


def test_a_refused_sample_leaves_the_stream_state_untouched(live: httpx.Client) -> None:
    s = f"s-{uuid.uuid4().hex}"
    live.post("/predict/runs", json={"stream_id": s, "instances": [{"x": 2}, {"x": 2}]})
    r = live.post("/predict/runs", json={"stream_id": s, "instances": [{"x": 2}, {"y": 2}]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "instances", 1, "x"]
    r = live.post("/predict/runs", json={"stream_id": s, "instances": [{"x": 2}, {"x": -1}]})
    assert r.status_code == 422  # refused by the model after it stepped the first sample
    assert r.json()["detail"] == [
        {
            "type": "instance",
            "loc": ["body", "instances", 1],
            "msg": "x is -1.0, below 0; fix: send x >= 0",
        }
    ]
    nxt = live.post("/predict/runs", json={"stream_id": s, "x": 2}).json()["answer"]
    assert nxt == {"n": 3, "run": 3, "level": "alert"}


def test_redis_state_survives_a_restart_and_one_stream_never_interleaves(redis_url: str) -> None:
    stream = f"restart-{uuid.uuid4().hex}"
    answers = []
    for half in (XS[:4], XS[4:]):  # a new service (new app, new store) for each half
        app = _app(state=redis_url)
        assert isinstance(app.state.store, RedisState)
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
            for x in half:
                answers.append(
                    client.post("/predict/runs", json={"x": x, "stream_id": stream}).json()[
                        "answer"
                    ]
                )
    assert answers == _library(RunLength(), XS)

    crowd = f"crowd-{uuid.uuid4().hex}"
    with LiveServer(_app(state=redis_url)) as server:

        def one(_: int) -> dict[str, Any]:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                return dict(
                    client.post("/predict/runs", json={"x": 2, "stream_id": crowd}).json()["answer"]
                )

        with ThreadPoolExecutor(max_workers=8) as pool:
            got = list(pool.map(one, range(40)))
    assert sorted(a["n"] for a in got) == list(
        range(1, 41)
    )  # no lost update: each sample counted once
    assert sorted(a["run"] for a in got) == list(range(1, 41))
    import redis

    redis.Redis.from_url(redis_url).delete(
        *(RedisState.prefix + f"runs/{s}" for s in (stream, crowd))
    )


def test_serve_refuses_a_port_in_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project_file(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_cli(["serve", "--port", str(port)], tmp_path, monkeypatch)
    assert result.code == 2
    assert result.err.startswith(
        f"error: cannot listen on 127.0.0.1:{port} (Address already in use)"
    )


def _project_file(folder: Path) -> None:
    (folder / "project.yaml").write_text(
        "tracking: {enabled: false}\nanalyses:\n  - name: eta\n    recipe: distribution\n"
        "    source: {kind: file, path: t.parquet}\n    columns: {target: minutes, categorical: [route]}\n"
    )


def test_a_state_store_that_goes_away_is_503_and_the_rest_still_answers() -> None:
    gone = RedisState("redis://127.0.0.1:1/0")  # nothing listens there
    with LiveServer(create_app(ServiceSettings(), source=_source(), state=gone)) as server:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            r = client.post("/predict/runs", json={"x": 1, "stream_id": "s"})
            assert r.status_code == 503
            assert r.json()["detail"].startswith(
                "the state store redis://127.0.0.1:1/0 is not reachable (ConnectionError"
            )
            assert client.post("/predict/scaled", json={"x": 1, "label": "a"}).status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--state", "memcached://x"],
            "error: state store 'memcached://x' is not supported; fix: use --state memory or --state redis://127.0.0.1:6379/0",
        ),
        (
            ["--state", "redis://127.0.0.1:1/0"],
            "error: the state store redis://127.0.0.1:1/0 is not reachable",
        ),
        (
            ["--port", "70000"],
            "error: --port 70000 is not a port number; fix: use a port in 0..65535",
        ),
        (["-p", "missing.yaml"], "error: project file missing.yaml does not exist"),
    ],
)
def test_serve_refuses_bad_options_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    _project_file(tmp_path)
    result = run_cli(["serve", *args], tmp_path, monkeypatch)
    assert result.code == 2, result.err
    assert result.err.startswith(message), result.err
    assert len(result.err.strip().splitlines()) == 1


def test_opslens_serve_serves_the_latest_run_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    _project_file(tmp_path)
    run = RunWriter(tmp_path / "runs", "eta")
    run.write_model(Scaled(4.0), pl.DataFrame({"x": [1.0]}), {"recipe": "scaled"})
    run.write_json("manifest.json", {"status": "complete"})
    run.commit()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).parents[3]
    env = {**os.environ, "PYTHONPATH": str(root), "OPSLENS_SERVICE_TOKEN": "t0k"}
    cmd = [sys.executable, "-m", "opslens.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            assert proc.poll() is None, proc.communicate()[1].decode()
            try:
                if httpx.get(url + "/health", timeout=60).status_code == 200:
                    break
            except httpx.TransportError:
                threading.Event().wait(0.1)
        headers = {"Authorization": "Bearer t0k"}
        body = httpx.post(
            url + "/predict/eta", json={"x": 2, "label": "a"}, headers=headers, timeout=60
        ).json()
        assert (body["answer"]["y"], body["version"], body["alias"]) == (8.0, run.run_id, "latest")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert f"opslens serve at http://127.0.0.1:{port}" in out.decode()
    assert "auth on" in out.decode() and "interrupted" not in err.decode()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_answers_every_request_already_received_then_exits_143(
    tmp_path: Path, workers: int, request: pytest.FixtureRequest
) -> None:
    """One process, or ``--workers 2`` (state in the real Redis): the same on SIGTERM."""
    from tests.e2e.service.test_service_limits import Slow

    _project_file(tmp_path)
    run = RunWriter(tmp_path / "runs", "eta")
    run.write_model(Slow(1.0), pl.DataFrame({"x": [1.0]}), {"recipe": "scaled"})
    run.write_json("manifest.json", {"status": "complete"})
    run.commit()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).parents[3]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "src")])}
    cmd = [sys.executable, "-m", "opslens.cli", "serve", "--port", str(port)]
    if workers > 1:
        cmd += ["--workers", str(workers), "--state", request.getfixturevalue("redis_url")]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=60) as client:
        wait_for(lambda: _serving(client, proc), "the service to start")
        connected = threading.Barrier(21)
        answers: list[object] = []

        def batch(i: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as own:
                own.get("/health")  # connected (and kept alive) before the signal
                connected.wait()
                body = {"instances": [{"x": i, "label": "a"}] * 2}
                try:
                    answers.append(own.post("/predict/eta", json=body).json()["answers"][0]["y"])
                except httpx.HTTPError as e:
                    answers.append(type(e).__name__)

        with ThreadPoolExecutor(20) as pool:
            futures = [pool.submit(batch, i) for i in range(20)]
            connected.wait()
            threading.Event().wait(0.5)  # the 20 batches are in (each takes 2 s)
            proc.send_signal(signal.SIGTERM)
            for f in futures:
                f.result()
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert sorted(answers) == [float(i) for i in range(20)], answers
    with pytest.raises(httpx.TransportError):  # and nothing new is taken
        httpx.get(url + "/health", timeout=5)


def _serving(client: httpx.Client, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, proc.communicate()[1].decode()
    try:
        return client.get("/health").status_code == 200
    except httpx.TransportError:
        return False


class _Where(Scaled):
    """Scaled, noting the thread each single answer is made on."""

    def __init__(self) -> None:
        super().__init__(1.0)
        self.threads: list[str] = []

    def predict_one(self, instance: Any) -> dict[str, Any]:
        self.threads.append(threading.current_thread().name)
        return super().predict_one(instance)


def test_a_dearer_model_answers_a_lone_request_inline_and_a_crowd_in_the_pool() -> None:
    from opslens.online.service.served import ALONE_SECONDS, FAST_SECONDS, WARM_UP

    model = _Where()
    app = _app(MemorySource({"where": {"1": model}}, current={"where": "1"}))
    pace = app.state.book.get("where").pace
    main = threading.current_thread().name

    def dearer() -> None:  # answers of about 1.5 ms so far: inline only when alone
        pace.timed_answers, pace.average, pace.fast = WARM_UP, 1.5 * FAST_SECONDS, False
        assert pace.average < ALONE_SECONDS and not pace.inline()

    async def post(client: httpx.AsyncClient, k: int) -> int:
        r = await client.post("/predict/where", json={"x": k, "label": str(k)})
        return r.status_code

    async def run() -> tuple[list[str], list[str]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            dearer()
            for k in range(3):  # one at a time: each alone, answered on the event loop
                assert await post(client, k) == 200
                dearer()
            alone, model.threads[:] = list(model.threads), []
            # a crowd (12: the stub's cheap answers bring the average under 0.5 ms by the 18th)
            codes = await asyncio.gather(*(post(client, k) for k in range(12)))
            assert codes == [200] * 12
            return alone, list(model.threads)

    alone, crowd = asyncio.run(run())
    assert alone == [main] * 3
    assert len(crowd) == 12 and main not in crowd  # every one in the thread pool
