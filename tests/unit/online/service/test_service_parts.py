"""The service's parts without HTTP: request models, the model book's swaps, state stores, settings."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError
from tests.e2e.service.helpers import MemorySource, RunLength, Scaled

from opslens.errors import ConfigError
from opslens.online.service import ServiceSettings
from opslens.online.service.schemas import model_prefix, request_models
from opslens.online.service.served import ModelBook, ProjectModels
from opslens.online.service.state import MemoryState, RedisState, dumps, open_state
from opslens.recipes import project_from_mapping
from opslens.tracking.runs import RunWriter


class Typed(Scaled):
    def input_schema(self) -> dict[str, str]:
        return {"when": "datetime", "readings": "list", "n": "integer", "odd kind": "blob"}


def test_request_models_follow_the_input_schema() -> None:
    m = request_models("axes 2", Typed(1.0))
    assert m.single.__name__ == "Axes2Instance" and not m.stateful
    ok = m.single.model_validate(
        {"when": "2026-01-02T03:04:05", "readings": [{"a": 1}], "n": 3, "odd kind": {"x": 1}}
    )
    dumped = ok.model_dump(by_alias=True)
    assert dumped["when"] == "2026-01-02T03:04:05" and dumped["odd kind"] == {"x": 1}
    with pytest.raises(ValidationError) as e:
        m.single.model_validate({"when": "soon", "readings": 3, "n": 1.5})
    assert {(err["loc"], err["type"]) for err in e.value.errors()} == {
        (("when",), "value_error"),
        (("readings",), "list_type"),
        (("n",), "value_error"),
        (("odd kind",), "missing"),
    }


def test_stateful_models_need_a_stream_id() -> None:
    m = request_models("runs", RunLength())
    assert m.stateful and m.single.__name__ == "RunsSample"
    assert m.single.model_validate({"x": 1, "stream_id": "s"}).model_dump(by_alias=True) == {
        "x": 1.0,
        "stream_id": "s",
    }
    with pytest.raises(ValidationError, match="stream_id"):
        m.single.model_validate({"x": 1})
    with pytest.raises(ValidationError, match="stream_id"):
        m.batch.model_validate({"instances": [{"x": 1}]})
    assert sorted(m.by_name()) == ["RunsAnswer", "RunsAnswers", "RunsBatch", "RunsSample"]


def test_model_prefix_makes_class_names() -> None:
    assert [model_prefix(n) for n in ("trip-eta", "x", "9lives", "--")] == [
        "TripEta",
        "X",
        "A9lives",
        "Analysis",
    ]


def test_the_book_swaps_only_when_the_pointer_moves() -> None:
    source = MemorySource({"s": {"1": Scaled(1.0), "2": Scaled(2.0)}}, current={"s": "1"})
    book = ModelBook(source)
    assert book.refresh() == ["s"]
    first = book.get("s")
    assert book.refresh() == [] and book.get("s") is first and source.loads == 1
    source.promote("s", "2")
    assert book.refresh() == ["s"]
    assert book.get("s").version == "2" and first.version == "1"  # the old entry is unchanged
    source.current.pop("s")  # alias removed: keep serving what was loaded
    assert book.refresh() == [] and book.get("s").version == "2"


def test_a_failed_load_keeps_the_old_version_and_says_why() -> None:
    class Flaky(MemorySource):
        def load(self, analysis: str, pointer: str) -> Any:
            if pointer == "2":
                raise ConfigError("version 2 is broken", fix="promote another")
            return super().load(analysis, pointer)

    source = Flaky({"s": {"1": Scaled(1.0)}}, current={"s": "1"})
    book = ModelBook(source)
    book.refresh()
    source.promote("s", "2")
    assert book.refresh() == []
    assert book.get("s").version == "1"
    assert book.problems == {"s": "version 2 is broken; fix: promote another"}


def test_memory_state_locks_one_stream_at_a_time() -> None:
    async def run() -> list[int]:
        store = MemoryState()
        order: list[int] = []

        async def bump(i: int) -> None:
            async with store.lock("a/s"):
                n = ((await store.get("a/s")) or {"n": 0})["n"]
                await asyncio.sleep(0)  # another request could run here without the lock
                await store.set("a/s", {"n": n + 1})
                order.append(n + 1)

        await asyncio.gather(*(bump(i) for i in range(20)))
        return order

    assert asyncio.run(run()) == list(range(1, 21))


def test_redis_state_round_trips_json(redis_url: str) -> None:
    key = f"unit/{uuid.uuid4().hex}"

    async def run() -> tuple[Any, Any]:
        store = RedisState(redis_url)
        try:
            before = await store.get(key)
            async with store.lock(key):
                await store.set(key, {"run": 3, "levels": ["ok", "alert"]})
            return before, await store.get(key)
        finally:
            await store._client.delete(store.prefix + key)
            await store.close()

    assert asyncio.run(run()) == (None, {"run": 3, "levels": ["ok", "alert"]})


def test_state_urls_and_settings_are_checked() -> None:
    assert isinstance(open_state("memory"), MemoryState)
    with pytest.raises(ConfigError, match="not supported"):
        open_state("redis:/x")
    with pytest.raises(ValidationError):
        ServiceSettings(max_batch=0)
    with pytest.raises(ValidationError):
        ServiceSettings(unknown=1)  # type: ignore[call-arg]
    assert dumps({"t": datetime(2026, 1, 1)}) == '{"t":"2026-01-01T00:00:00"}'


def test_without_tracking_the_latest_run_folder_is_served_and_followed(tmp_path: Path) -> None:
    project = project_from_mapping(
        {
            "runs_dir": str(tmp_path / "runs"),
            "tracking": {"enabled": False},
            "analyses": [
                {
                    "name": "eta",
                    "recipe": "distribution",
                    "source": {"kind": "memory"},
                    "columns": {"target": "minutes", "categorical": ["route"]},
                }
            ],
        },
        root=tmp_path,
    )
    source = ProjectModels(project, alias="current")
    assert source.alias == "latest" and source.pointer("eta") is None

    def commit(factor: float) -> str:
        run = RunWriter(project.runs_root(), "eta")
        run.write_model(Scaled(factor), pl.DataFrame({"x": [1.0]}), {"recipe": "scaled"})
        run.write_json("manifest.json", {"status": "complete"})
        run.commit()
        return run.run_id

    book = ModelBook(source)
    book.refresh()
    assert "no model under 'latest' yet" in book.problems["eta"]
    first = commit(1.0)
    assert book.refresh() == ["eta"] and book.get("eta").version == first
    second = commit(3.0)
    assert book.refresh() == ["eta"]
    served = book.get("eta")
    assert (served.version, served.release.run_id) == (second, second)
    assert served.predictor.predict_one({"x": 2, "label": "a"})["y"] == 6.0


def _device(k: int) -> dict[str, Any]:
    """A fleet instance as JSON sends it: a device and 239 hourly readings of three metrics."""
    readings = [
        {
            "timestamp": f"2024-01-{1 + h // 24:02d}T{h % 24:02d}:00:00",
            "t": 40.0 + k,
            "p": 1.5e3,
            "r": 16.0,
        }
        for h in range(239)
    ]
    return {"turbine_id": f"wt-{k:03d}", "readings": readings}


def test_the_live_ring_keeps_a_device_history_as_its_size_not_its_readings() -> None:
    import gc
    import tracemalloc

    from opslens.online.service.recent import RecentAnswers

    recent = RecentAnswers(size=1_000)
    flat = {"route": "A-B", "hour": 7}
    recent.add("trips", [flat], [{"p50": 12.5}], version="3")
    assert recent._rows["trips"][0][0] is flat  # a flat instance is kept as it came, no copy
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for k in range(1_500):  # each about 80 KB as parsed: 120 MB if the ring kept them
            recent.add(
                "fleet", [_device(k)], [{"score": 0.5, "methods": {"ecod": 0.4}}], version="1"
            )
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 2_000_000, f"the ring of 1,000 devices holds {kept:,} bytes"
    rows = recent.newest("fleet", 2)
    assert [r["turbine_id"] for r in rows] == ["wt-1498", "wt-1499"]
    assert rows[-1]["readings"] == "[239 items]" and rows[-1]["methods"] == {"ecod": 0.4}
    assert rows[-1]["version"] == "1" and rows[-1]["score"] == 0.5
    batch = [_device(1), {"turbine_id": "x", "readings": [], "tags": {"site": "s1"}}]
    recent.add("batch", batch, [{"score": 0.1}, {"score": 0.2}], version="1")
    assert [(r["readings"], r.get("tags")) for r in recent.newest("batch", 5)] == [
        ("[239 items]", None),
        ("[0 items]", "{1 fields}"),
    ]


def test_the_pace_keeps_a_model_between_its_thresholds_where_it_was() -> None:
    from opslens.online.service.served import (
        ALONE_SECONDS,
        FAST_SECONDS,
        INLINE_SECONDS,
        WARM_UP,
        Pace,
    )

    assert INLINE_SECONDS < FAST_SECONDS < ALONE_SECONDS
    between = (INLINE_SECONDS + FAST_SECONDS) / 2  # a fleet device's answer: about 0.75 ms
    pooled = Pace()
    for _ in range(200):
        pooled.record(between)
    assert not pooled.inline()  # never cheap enough to go inline under load
    assert pooled.inline(alone=True)  # but a request the service has alone is answered inline
    slow = Pace()
    for _ in range(200):
        slow.record(1.5 * ALONE_SECONDS)
    assert not slow.inline() and not slow.inline(alone=True)
    cheap = Pace()
    for _ in range(WARM_UP):
        assert not cheap.inline()  # the warm-up answers go to the pool
        cheap.record(0.00005)
    assert cheap.inline()
    for _ in range(200):  # its answers grow dearer, but stay under FAST_SECONDS: still inline
        cheap.record(between)
    assert cheap.inline() and INLINE_SECONDS < cheap.average < FAST_SECONDS
    cheap.record(0.02)  # one slow answer lifts the average over FAST_SECONDS: back to the pool
    assert not cheap.inline()
    answers = 0
    while not cheap.inline():  # cheap again: inline once the average is under INLINE_SECONDS
        cheap.record(0.0001)
        answers += 1
    # 1.95 ms after the slow one, 0.1 + 1.85 * (15/16)^n ms < 0.5 ms from the 24th answer on
    assert cheap.average < INLINE_SECONDS and answers == 24
