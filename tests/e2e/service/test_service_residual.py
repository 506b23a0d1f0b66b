"""The residual recipe through the service: a planted fault goes ok → alert → error → ok
at the same sample numbers over HTTP as through the library, and in Redis across a restart."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx
import pytest

from opslens.api import load_project
from opslens.cli.demo import demo_file_text
from opslens.online.service import ServiceSettings, create_app
from opslens.recipes import get_recipe
from opslens.runner import load_input, run_analysis
from opslens.tracking.models import load_registered
from tests.e2e.service.helpers import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def residual(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[dict[str, Any]], Any]:
    folder = tmp_path_factory.mktemp("residual")
    (folder / "project.yaml").write_text(demo_file_text("residual"))
    project = load_project(folder / "project.yaml")
    run_analysis(project, "machine-axes")
    analysis = project.analysis("machine-axes")
    demo = get_recipe("residual").demo
    assert demo is not None and demo.instances is not None
    samples = demo.instances(load_input(analysis).frame, analysis)
    library = load_registered(project.tracking_uri(), "machine-axes").predictor
    return project, samples, library


def _library(library: Any, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    state = None
    out = []
    for sample in samples:
        answer, state = library.step(sample, state)
        out.append(answer)
    return out


def _segments(levels: list[str]) -> list[tuple[str, int]]:
    """(level, first sample number) of each run of equal levels."""
    out, n = [], 1
    for level, group in itertools.groupby(levels):
        out.append((level, n))
        n += len(list(group))
    return out


def test_planted_fault_levels_match_the_library_sample_for_sample(residual: Any) -> None:
    project, samples, library = residual
    expected = _library(library, samples)
    # the sustain rules, from the residuals and the limits alone
    limits = library.thresholds["axis2"]
    run = run_error = 0
    by_rule = []
    for answer in expected:
        r = answer["axis2_residual"]
        run = run + 1 if r > limits["MinC"] else 0
        run_error = run_error + 1 if r > limits["MaxC"] else 0
        by_rule.append(
            "error"
            if run_error >= limits["T_short_steps"]
            else "alert"
            if run >= limits["T_long_steps"]
            else "ok"
        )
    assert [a["axis2_level"] for a in expected] == by_rule
    assert [lv for lv, _ in _segments(by_rule)] == ["ok", "alert", "error", "ok"]

    app = create_app(ServiceSettings(project=project.root / "project.yaml"))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        served = [client.post("/predict/machine-axes", json=s).json() for s in samples]
        assert [s["answer"] for s in served] == expected
        assert {s["stream"] for s in served} == {"demo"}
        assert _segments([s["answer"]["axis2_level"] for s in served]) == _segments(by_rule)
        other = f"batch-{uuid.uuid4().hex}"
        batch = client.post(
            "/predict/machine-axes",
            json={
                "stream": other,
                "instances": [{k: v for k, v in s.items() if k != "stream"} for s in samples],
            },
        ).json()
        assert [a["axis2_level"] for a in batch["answers"]] == by_rule
        r = client.post(
            "/predict/machine-axes", json={k: v for k, v in samples[0].items() if k != "axis2"}
        )
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["body", "axis2"]


def test_residual_run_lengths_survive_a_restart_in_redis(residual: Any, redis_url: str) -> None:
    project, samples, library = residual
    stream = f"restart-{uuid.uuid4().hex}"
    mine = [{**s, "stream": stream} for s in samples]
    expected = _library(library, mine)
    # restart just after the first alert: the run length must carry over
    half = next(i for i, a in enumerate(expected) if a["axis2_level"] == "alert") + 1
    answers = []
    for part in (mine[:half], mine[half:]):
        app = create_app(ServiceSettings(project=project.root / "project.yaml", state=redis_url))
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
            answers += [client.post("/predict/machine-axes", json=s).json()["answer"] for s in part]
    assert answers == expected
    assert answers[half]["axis2_run"] == expected[half - 1]["axis2_run"] + 1
    import redis

    redis.Redis.from_url(redis_url).delete(f"opslens:state:machine-axes/{stream}")
