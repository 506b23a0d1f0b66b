"""POST /events and /score: live events into the propensity state, user × items scored now."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import numpy as np
import polars as pl
import pytest

from opslens.config import AnalysisConfig
from opslens.core.predictor import BasePredictor
from opslens.online.service import ServiceSettings
from opslens.online.service.app import create_app
from opslens.online.service.events import EventStates
from opslens.online.service.served import Release
from opslens.recipes.propensity.modelling import fit_xgboost
from opslens.recipes.propensity.online_scoring import OnlineScorer
from opslens.recipes.propensity.params import ModelParams
from opslens.recipes.propensity.point_in_time import FEATURE_COLUMNS
from opslens.recipes.propensity.predictor import PropensityPredictor
from opslens.synthetic.clickstream import clickstream_frame


class Echo(BasePredictor):
    recipe = "echo"

    def input_schema(self) -> dict[str, str]:
        return {"x": "number"}

    def predict_frame(self, frame: Any) -> Any:
        return frame

    def predict_one(self, instance: Any) -> dict[str, Any]:
        return {"y": instance["x"]}


@pytest.fixture(scope="module")
def model() -> PropensityPredictor:
    rng = np.random.default_rng(0)
    X = rng.random((400, len(FEATURE_COLUMNS) + 1)) * 10
    y = (X[:, FEATURE_COLUMNS.index("pair_views")] > 6).astype(int)
    clf = fit_xgboost(X, y, ModelParams(n_estimators=20), 0)
    return PropensityPredictor(clf, "xgboost", FEATURE_COLUMNS, ["books"], horizon_hours=168.0)


@pytest.fixture(scope="module")
def raw() -> pl.DataFrame:
    return clickstream_frame(seed=3, num_users=60, num_items=20, num_days=10)


def _app(model: PropensityPredictor, raw: pl.DataFrame) -> Any:
    analysis = AnalysisConfig.model_validate(
        {"name": "shop", "recipe": "propensity", "source": {"kind": "memory"}}
    )

    class Source:
        alias = "champion"

        def analyses(self) -> dict[str, str]:
            return {"shop": "propensity", "echo": "echo"}

        def pointer(self, analysis: str) -> str:
            return "1"

        def load(self, analysis: str, pointer: str) -> Release:
            return Release(model if analysis == "shop" else Echo(), "1", "r1", "memory")

    def make(name: str, predictor: Any) -> OnlineScorer:
        return predictor.online_scorer(analysis, raw)  # type: ignore[no-any-return]

    return create_app(ServiceSettings(), source=Source(), events=EventStates(make))


def _post(app: Any, calls: list[tuple[str, Any]]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [await client.post(path, json=body) for path, body in calls]

    return asyncio.run(go())


def test_events_then_score_ranks_the_items_and_names_the_drivers(
    model: PropensityPredictor, raw: pl.DataFrame
) -> None:
    app = _app(model, raw)
    last = raw["timestamp"].max()
    at = last.isoformat()
    later = (last + timedelta(minutes=30)).isoformat()
    user = str(raw["user_id"][-1])
    views = [{"user_id": user, "item_id": "i00003", "event_type": "view", "timestamp": at}] * 8
    ev, one, score, cold = _post(
        app,
        [
            ("/events/shop", {"events": views}),
            (
                "/events/shop",
                {
                    "user_id": user,
                    "item_id": "i00004",
                    "event_type": "add_to_cart",
                    "timestamp": at,
                },
            ),
            ("/score/shop", {"user": user, "items": ["i00004", "i00003", "i00005"], "at": later}),
            ("/score/shop", {"user": "never-seen", "items": ["i00003"]}),
        ],
    )
    assert ev.status_code == 200 and ev.json()["accepted"] == 8 and ev.json()["refused"] == []
    assert ev.json()["version"] == "1"
    assert one.status_code == 200 and one.json()["accepted"] == 1
    body = score.json()
    assert score.status_code == 200, body
    probs = [r["probability"] for r in body["items"]]
    assert probs == sorted(probs, reverse=True) and body["items"][0]["item_id"] == "i00003"
    assert body["cold_start"] is False and len(body["items"][0]["drivers"]) == 3
    assert cold.json()["cold_start"] is True and "cold start" in cold.json()["note"]


def test_a_batch_keeps_every_good_event_and_names_each_bad_one(
    model: PropensityPredictor, raw: pl.DataFrame
) -> None:
    app = _app(model, raw)
    at = raw["timestamp"].max()
    user = str(raw["user_id"][-1])
    good = {"user_id": user, "item_id": "i00001", "event_type": "view", "timestamp": at.isoformat()}
    old = (at - timedelta(hours=2)).isoformat()
    batch = [
        good,
        {**good, "event_type": "wishlist"},
        {**good, "timestamp": old},
        {**good, "timestamp": "soon"},
        {"item_id": "i00001"},
        good,
    ]
    (answer,) = _post(app, [("/events/shop", {"events": batch})])
    got = answer.json()
    assert answer.status_code == 200 and got["accepted"] == 2
    reasons = {r["index"]: r["reason"] for r in got["refused"]}
    assert set(reasons) == {1, 2, 3, 4}
    assert "event_type 'wishlist' is not one of" in reasons[1]
    assert "more than the lateness" in reasons[2]
    assert "is not a time" in reasons[3] and "has no user_id" in reasons[4]


@pytest.mark.parametrize(
    ("path", "body", "status", "loc"),
    [
        (
            "/events/shop",
            {"user_id": "u", "item_id": "i", "event_type": "zap", "timestamp": "2024-01-01"},
            422,
            ["body", "event_type"],
        ),
        ("/events/shop", "just text", 422, ["body"]),
        ("/score/shop", {"user": "u"}, 422, ["body", "items"]),
        ("/score/shop", {"items": ["i"]}, 422, ["body", "user"]),
        ("/score/shop", {"user": "u", "items": "i1"}, 422, ["body", "items"]),
        ("/score/shop", {"user": "u", "items": ["i"], "at": "not a time"}, 422, ["body", "at"]),
        (
            "/score/shop",
            {"user": "u", "items": ["i"], "at": "2000-01-01T00:00:00"},
            409,  # older than the state allows: a conflict with the state, not a bad field
            None,
        ),
        ("/score/echo", {"user": "u", "items": ["i"]}, 422, ["body"]),
        ("/score/nope", {"user": "u", "items": ["i"]}, 404, None),
    ],
)
def test_bad_requests_are_4xx_with_the_field(
    model: PropensityPredictor, raw: pl.DataFrame, path: str, body: Any, status: int, loc: Any
) -> None:
    (answer,) = _post(_app(model, raw), [(path, body)])
    assert answer.status_code == status, answer.text
    if loc is not None:
        detail = answer.json()["detail"][0]
        assert detail["loc"] == loc and "fix:" in detail["msg"], detail


def test_a_project_analysis_is_warm_started_from_its_own_events(
    model: PropensityPredictor, tmp_path: Any
) -> None:
    from opslens.api import load_project
    from opslens.online.service.events import project_states

    (tmp_path / "project.yaml").write_text(
        "analyses:\n  - name: shop\n    recipe: propensity\n"
        "    source: {kind: synthetic, generator: clickstream, seed: 3,"
        " options: {num_users: 60, num_items: 20, num_days: 10}}\n"
    )
    scorer = project_states(load_project(tmp_path / "project.yaml")).get("shop", model)
    raw = clickstream_frame(seed=3, num_users=60, num_items=20, num_days=10)
    assert scorer.state.events == raw.height > 100
    assert len(scorer.state.catalog) == raw["item_id"].n_unique()


REDIS = "redis://127.0.0.1:6379/0"


def test_redis_shares_live_events_between_workers_and_across_a_restart(
    model: PropensityPredictor, raw: pl.DataFrame
) -> None:
    import uuid

    from opslens.online.service.event_log import RedisEventLog

    name = f"shop-{uuid.uuid4().hex[:8]}"
    analysis = AnalysisConfig.model_validate(
        {"name": name, "recipe": "propensity", "source": {"kind": "memory"}}
    )

    class Source:
        alias = "champion"

        def analyses(self) -> dict[str, str]:
            return {name: "propensity"}

        def pointer(self, a: str) -> str:
            return "1"

        def load(self, a: str, pointer: str) -> Release:
            return Release(model, "1", "r1", "memory")

    def worker() -> Any:
        return create_app(
            ServiceSettings(state=REDIS),
            source=Source(),
            events=EventStates(lambda a, p: p.online_scorer(analysis, raw)),
        )

    log = RedisEventLog(REDIS)
    try:
        one, two = worker(), worker()
        last = raw["timestamp"].max()
        user = str(raw["user_id"][0])
        ask = {
            "user": user,
            "items": ["i00001", "i00002"],
            "at": (last + timedelta(hours=1)).isoformat(),
        }
        (before,) = _post(two, [(f"/score/{name}", ask)])
        views = [
            {
                "user_id": user,
                "item_id": "i00001",
                "event_type": "view",
                "timestamp": (last + timedelta(minutes=m)).isoformat(),
            }
            for m in range(1, 9)
        ]
        (sent,) = _post(one, [(f"/events/{name}", {"events": [*views, {"user_id": user}]})])
        assert sent.json()["accepted"] == 8 and len(sent.json()["refused"]) == 1
        (after_two,) = _post(two, [(f"/score/{name}", ask)])  # the other worker sees them
        (after_one,) = _post(one, [(f"/score/{name}", ask)])
        assert after_two.json()["items"] == after_one.json()["items"]
        assert after_two.json()["items"] != before.json()["items"]
        restarted = worker()  # a restart: warm start from the source, then the stream
        (again,) = _post(restarted, [(f"/score/{name}", ask)])
        assert again.json()["items"] == after_one.json()["items"]
        events, _ = log.read(name, "0")
        assert len(events) == 8
    finally:
        log.drop(name)
        log.close()


def test_an_unreachable_event_store_is_503_not_500(
    model: PropensityPredictor, raw: pl.DataFrame
) -> None:
    from opslens.online.service.event_log import RedisEventLog

    app = _app(model, raw)
    states = app.state.events
    states.log = RedisEventLog("redis://127.0.0.1:1/0")
    (answer,) = _post(app, [("/score/shop", {"user": "u", "items": ["i00001"]})])
    assert answer.status_code == 503 and "not reachable" in answer.json()["detail"]
