"""Issue 28, concurrency: retrainings and promotions of one analysis take turns (a PostgreSQL
advisory lock with a PostgreSQL history, else a file lock), and a retraining compares again
with the champion of the moment before ``champion`` moves."""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest
import yaml

from opslens.core.lifecycle import CHAMPION, Comparison
from opslens.lifecycle.history import HistoryStore
from opslens.tracking.folders import lock_file
from tests.unit.lifecycle.test_spine import MemoryRegistry, _deployment


def _comparison(champion: float, challenger: float) -> Comparison:
    return Comparison(
        metric="rmse", champion=champion, challenger=challenger, higher_is_better=False, rows=50
    )


def test_a_retraining_compares_again_when_the_champion_moved_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    life, history, _ = _deployment("distribution")
    registry = MemoryRegistry(["6", "7", "8"], {CHAMPION: "6"})
    registry.load = lambda version: f"model {version}"  # type: ignore[method-assign]
    life.registry = registry

    def retraining_run(*args: Any, **kwargs: Any) -> Any:
        registry.aliases[CHAMPION] = "7"  # another writer made 7 champion during the run
        view = SimpleNamespace(object=lambda name: _comparison(2.0, 1.5))  # beats 6
        return SimpleNamespace(model_version="8", view=view, baselines=None, run_id="r8")

    compared: list[tuple[str, str]] = []

    def compare(champion: str, challenger: str, window: Any, analysis: Any) -> Comparison:
        compared.append((champion, challenger))
        return _comparison(1.0, 1.5)  # loses to 7

    monkeypatch.setattr("opslens.runner.lifecycle.run_analysis", retraining_run)
    monkeypatch.setattr(life, "labelled", lambda: pl.DataFrame())
    monkeypatch.setattr(life, "window", lambda: pl.DataFrame())
    life.hooks = dataclasses.replace(life.hooks, compare=compare)
    done = life.retrain("manual: test")
    assert compared == [("model 7", "model 8")]
    assert not done.promoted and done.champion == "7"
    assert registry.aliases[CHAMPION] == "7"  # version 8 was not promoted over 7
    assert history.rows["trainings"][-1]["version"] == "8"


def _hold(path: str, seconds: float, queue: Any) -> None:
    with lock_file(Path(path)):
        queue.put(time.monotonic())
        time.sleep(seconds)
        queue.put(time.monotonic())


def test_the_file_lock_makes_a_second_process_wait(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    path = str(tmp_path / ".lifecycle.lock")
    first = ctx.Process(target=_hold, args=(path, 1.0, queue))
    first.start()
    got = queue.get(timeout=30)
    second = ctx.Process(target=_hold, args=(path, 0.0, queue))
    second.start()
    first_end, second_start = queue.get(timeout=30), queue.get(timeout=30)
    queue.get(timeout=30)
    first.join(10)
    second.join(10)
    assert got <= first_end <= second_start


def test_the_deployment_lock_is_reentrant_in_one_process(tmp_path: Path) -> None:
    life, _, _ = _deployment("distribution")
    with life.exclusive(), life.exclusive():  # batch -> retrain: no deadlock
        assert (life.project.runs_root() / "x" / ".lifecycle.lock").is_file()


def _advisory(url: str, seconds: float, queue: Any) -> None:
    store = HistoryStore(url)
    with store.exclusive("pat"):
        queue.put(time.monotonic())
        time.sleep(seconds)
        queue.put(time.monotonic())
    store.dispose()


@pytest.mark.services
def test_the_postgresql_advisory_lock_makes_a_second_process_wait(
    pg_url: str, pg_schema: str
) -> None:
    url = (
        pg_url.replace("postgresql://", "postgresql+psycopg://")
        + f"?options=-csearch_path%3D{pg_schema}"
    )
    assert HistoryStore(url).locks and not HistoryStore("sqlite://").locks
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    first = ctx.Process(target=_advisory, args=(url, 1.5, queue))
    first.start()
    queue.get(timeout=60)
    second = ctx.Process(target=_advisory, args=(url, 0.0, queue))
    second.start()
    first_end, second_start = queue.get(timeout=60), queue.get(timeout=60)
    queue.get(timeout=60)
    first.join(10)
    second.join(10)
    assert first_end <= second_start


@pytest.mark.slow
@pytest.mark.services
def test_two_retrains_at_once_on_postgresql_make_one_decision_against_the_real_champion(
    tmp_path: Path, pg_url: str, pg_schema: str
) -> None:
    from tests.e2e.segments.test_segments_e2e import NAME, make_project

    project = make_project(tmp_path, n_batches=1, noise_threshold=0.99)
    spec = yaml.safe_load(project.read_text())
    url = (
        pg_url.replace("postgresql://", "postgresql+psycopg://")
        + f"?options=-csearch_path%3D{pg_schema}"
    )
    spec["analyses"][0]["params"]["monitor"]["history_url"] = url
    project.write_text(yaml.safe_dump(spec))

    def cli(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "opslens.cli", "-q", *args],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    for args in (["run", "--force"], ["batch", NAME, "--input", "b0.parquet"]):
        proc = cli(*args)
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    procs = [cli("retrain", NAME, "--reason", f"at once {i}") for i in (0, 1)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    # one retrains; the other waits for it, then finds nothing new since that training
    assert codes == [0, 2], results
    refused = next(err for code, _, err in results if code == 2)
    assert refused.startswith("error: nothing new to retrain") and refused.count("\n") == 1
    store = HistoryStore(url)
    trainings = [t for t in store.trainings(NAME) if t["reason"].startswith("manual")]
    assert len(trainings) == 1 and trainings[0]["details"]["champion_version"] == "1"
    champions = [m for m in store.alias_moves(NAME) if m["alias"] == CHAMPION]
    for before, after in itertools.pairwise(champions):
        assert after["previous"] == before["version"]  # every move from the real champion
    store.dispose()
