"""Propensity online: ingest into the in-memory state, and "one user x 20 items now" over
HTTP, each against the path a user has without the online state, interleaved in three
rounds (medians of 3 with min-max, ratios printed).

The bundled demo's clickstream (2,000 users, 300 items, 60 days) and a model fitted on
its training features.

* ingest:  every demo event into a fresh in-memory state, one at a time: from a table
           (``ingest_frame``, the warm start) and as JSON-like events each checked
           (``ingest_many``, the service's path) (events/s; target >= 50,000/s) — against the offline features recomputed for one row from the
           whole event log (``point_in_time_features``, what serving "now" costs without
           a state), per row
* score:   ``POST /score/{analysis}`` one user x 20 items on a real server (uvicorn,
           one client, p50; target <= 5 ms) — against the same 20 rows through the
           offline path in process (features recomputed from the event log, then
           ``predict_frame``)

* Redis:   the demo's first 50,000 events appended to the analysis's Redis stream in
           pipelined batches of 1,000 and replayed into a fresh state (what a worker
           does; target >= 10,000/s) — against a plain redis-py loop, one XADD per
           round trip (on a tenth of the events)

Run: ``.venv/bin/python benchmarks/propensity_online.py [--requests 300]``
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import uvicorn
import yaml

from opslens.config import AnalysisConfig
from opslens.core.recipe import StageContext
from opslens.online.service import ServiceSettings
from opslens.online.service.app import create_app
from opslens.online.service.events import EventStates
from opslens.online.service.served import Release
from opslens.recipes import propensity
from opslens.recipes.propensity import featurize, stages
from opslens.recipes.propensity.modelling import design_matrix, fit_xgboost
from opslens.recipes.propensity.online_state import _KIND_INDEX, OnlineState
from opslens.recipes.propensity.params import PropensityParams
from opslens.recipes.propensity.point_in_time import feature_columns, point_in_time_features
from opslens.recipes.propensity.predictor import PropensityPredictor
from opslens.synthetic.clickstream import clickstream_frame

DEMO = Path(propensity.__file__).parent / "demo" / "project.yaml"


def _demo() -> tuple[AnalysisConfig, PropensityParams, pl.DataFrame, dict[str, Any]]:
    config = yaml.safe_load(DEMO.read_text())["analyses"][0]
    analysis = AnalysisConfig.model_validate(config)
    params = PropensityParams.model_validate(config["params"])
    ctx = StageContext(analysis=analysis, params=params, random_state=42)
    raw = clickstream_frame(seed=config["source"]["seed"], **config["source"]["options"])
    made = stages.data_gen(ctx, raw, None, None).values
    sessions = stages.sessionize_stage(ctx, made["events"]).values["sessionized_events"]
    split = stages.split(ctx, sessions).values
    feats = featurize.features(ctx, items=made["items"], **split).values
    return analysis, params, raw, {**made, "sessions": sessions, **feats}


def _stats(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):,.1f} (min {min(values):,.1f}, max {max(values):,.1f})"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--rows", type=int, default=20, help="offline rows per round (ingest peer)")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--redis-events", type=int, default=50_000)
    args = ap.parse_args()
    analysis, params, raw, d = _demo()
    events: pl.DataFrame = d["events"]
    items: pl.DataFrame = d["items"]
    f = params.features
    cols = feature_columns(f.windows)
    train = d["train_features"]
    cats = sorted(train["category"].unique().to_list())
    model = fit_xgboost(
        design_matrix(train, cols, cats), train["label"].to_numpy(), params.models, 42
    )
    predictor = PropensityPredictor(model, "xgboost", cols, cats, horizon_hours=168.0)
    ev = events.select(
        pl.col("user_id"),
        pl.col("item_id"),
        pl.col("event_type").replace_strict(_KIND_INDEX),
        pl.col("timestamp").cast(pl.Datetime("us")).to_physical(),
    ).sort("timestamp", maintain_order=True)
    lists = [ev[c].to_list() for c in ev.columns]
    test = d["test_features"]
    last_t = test["prediction_time"].max()
    rows_at = test.filter(pl.col("prediction_time") == last_t)
    busiest = rows_at.group_by("user_id").len().sort("len", "user_id", descending=[True, False])
    user = str(busiest["user_id"][0])
    user_items = rows_at.filter(pl.col("user_id") == user)["item_id"].to_list()
    others = [i for i in items["item_id"].to_list() if i not in user_items]
    twenty = (user_items + others)[:20]
    query = pl.DataFrame(
        {"user_id": [user] * 20, "item_id": twenty, "prediction_time": [last_t] * 20}
    ).with_columns(pl.col("prediction_time").cast(pl.Datetime("us")))
    history = d["sessions"]  # the offline path's input: sessionized events

    def offline_rows(rows: pl.DataFrame) -> pl.DataFrame:
        return point_in_time_features(
            rows, history, items, windows=f.windows, recency_cap_hours=f.recency_cap_hours
        )

    # the server: the demo's state warm-started from every event before the last test time
    before = raw.filter(pl.col("timestamp") < last_t)

    class Source:
        alias = "champion"

        def analyses(self) -> dict[str, str]:
            return {"shop": "propensity"}

        def pointer(self, name: str) -> str:
            return "1"

        def load(self, name: str, pointer: str) -> Release:
            return Release(predictor, "1", "bench", "memory")

    app = create_app(
        ServiceSettings(),
        source=Source(),
        events=EventStates(lambda name, p: p.online_scorer(analysis, before)),
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    body = {"user": user, "items": twenty, "at": (last_t + timedelta(seconds=1)).isoformat()}
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    first = client.post("/score/shop", json=body)  # warm start happens here
    assert first.status_code == 200, first.text

    dicts = events.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.f")).to_dicts()
    import redis

    from opslens.online.service.event_log import RedisEventLog

    redis_log = RedisEventLog(args.redis)
    plain = redis.Redis.from_url(args.redis)
    tuples = list(zip(*lists, strict=True))
    n_redis = min(len(tuples), args.redis_events)
    ingest, ingest_one, peer_row, score_p50, peer_score = [], [], [], [], []
    into_redis, redis_plain = [], []
    for _ in range(3):
        redis_log.drop("bench")
        t0 = time.perf_counter()  # checked events appended pipelined, then applied from the log
        state = OnlineState(items, windows=f.windows, gap=params.sessions.gap)
        for start in range(0, n_redis, 1000):
            redis_log.append("bench", tuples[start : start + 1000])
        replayed, _ = redis_log.read("bench", "0")
        for event in replayed:
            state.add(*event)
        into_redis.append(n_redis / (time.perf_counter() - t0))
        redis_log.drop("bench")
        t0 = time.perf_counter()  # the peer: a plain redis-py loop, one XADD per round trip
        for u, i, k, t in tuples[: n_redis // 10]:
            plain.xadd("opslens:events:bench", {"u": u, "i": i, "k": k, "t": t})
        redis_plain.append((n_redis // 10) / (time.perf_counter() - t0))
        redis_log.drop("bench")

        state = OnlineState(items, windows=f.windows, gap=params.sessions.gap)
        t0 = time.perf_counter()
        state.ingest_frame(events)
        ingest.append(len(lists[0]) / (time.perf_counter() - t0))

        state = OnlineState(items, windows=f.windows, gap=params.sessions.gap)
        t0 = time.perf_counter()
        refused = state.ingest_many(dicts)
        ingest_one.append(len(dicts) / (time.perf_counter() - t0))
        assert not refused

        sample = test.sample(args.rows, seed=len(peer_row)).select(
            "user_id", "item_id", "prediction_time"
        )
        t0 = time.perf_counter()
        for r in range(sample.height):
            offline_rows(sample.slice(r, 1))
        peer_row.append(sample.height / (time.perf_counter() - t0))

        lat = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            answer = client.post("/score/shop", json=body)
            lat.append((time.perf_counter() - t0) * 1000)
            assert answer.status_code == 200
        score_p50.append(statistics.median(lat))

        lat = []
        for _ in range(max(10, args.requests // 10)):
            t0 = time.perf_counter()
            predictor.predict_frame(offline_rows(query))
            lat.append((time.perf_counter() - t0) * 1000)
        peer_score.append(statistics.median(lat))
    server.should_exit = True
    redis_log.close()
    plain.close()

    print(f"demo: {len(lists[0]):,} events, user {user} x 20 items at {last_t}")
    print(
        f"ingest, in-memory state (a table, warm start): {_stats(ingest)} events/s (target >= 50,000)"
    )
    print(
        f"ingest, in-memory state (JSON events, checked one by one): {_stats(ingest_one)} events/s"
    )
    print(f"peer, offline features per row: {_stats(peer_row)} rows/s")
    print(
        f"  ratio (events ingested per offline row computed): "
        f"{statistics.median(ingest) / statistics.median(peer_row):,.0f}x"
    )
    print(
        f"ingest into Redis (pipelined appends of 1,000, replayed into the state), "
        f"{n_redis:,} events: {_stats(into_redis)} events/s (target >= 10,000)"
    )
    print(f"peer, plain redis-py XADD loop (no pipeline): {_stats(redis_plain)} events/s")
    print(
        f"  ratio (pipelined + applied / plain loop): "
        f"{statistics.median(into_redis) / statistics.median(redis_plain):,.1f}x"
    )
    print(f"POST /score 1 user x 20 items, p50: {_stats(score_p50)} ms (target <= 5 ms)")
    print(f"peer, offline features + predict_frame in process: {_stats(peer_score)} ms")
    print(
        f"  ratio (offline / online): "
        f"{statistics.median(peer_score) / statistics.median(score_p50):,.1f}x"
    )


if __name__ == "__main__":
    main()
