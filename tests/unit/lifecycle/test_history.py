"""The monitoring history store: append-only tables, the alias audit's terms, concurrent writers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opslens.errors import SourceError
from opslens.lifecycle.history import HistoryStore

ROOT = Path(__file__).resolve().parents[3]


def test_records_errors_trainings_and_alias_terms(tmp_path: Path) -> None:
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    assert [store.add_batch("a", {"rows_in": n, "model_version": 1}) for n in (5, 6)] == [1, 2]
    store.add_batch("b", {"rows_in": 7})
    assert [r["batch"] for r in store.batches("a")] == [1, 2]
    store.add_error("a", "batch", "the batch has no rows")
    assert store.errors("a")[0]["kind"] == "batch" and store.errors("b") == []
    store.add_training("a", "1", "initial training", {"ratio": 0.5})
    assert store.trainings("a")[0]["details"] == {"ratio": 0.5}
    store.add_alias_move("a", "champion", "1", None, "initial training")
    store.add_alias_move("a", "challenger", "2", None, "retrained")
    store.add_alias_move("a", "champion", "2", "1", "promoted")
    moves = store.alias_moves("a")
    assert [m["until"] is None for m in moves] == [False, True, True]
    assert moves[0]["until"] == moves[2]["at"] and moves[2]["previous"] == "1"
    again = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")  # another process's view
    assert len(again.batches("a")) == 2


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(
        SourceError, match=r"cannot be opened .*; fix: set params\.monitor\.history_url"
    ):
        HistoryStore(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'h.db'}")


WRITER = """
import sys
from opslens.lifecycle.history import HistoryStore
store = HistoryStore(sys.argv[1])
for i in range(25):
    store.add_batch("pat", {"writer": sys.argv[2], "i": i, "model_version": 1})
"""


@pytest.mark.services
def test_concurrent_writers_lose_nothing_on_postgres(pg_url: str, pg_schema: str) -> None:
    url = (
        pg_url.replace("postgresql://", "postgresql+psycopg://")
        + f"?options=-csearch_path%3D{pg_schema}"
    )
    env = {"PYTHONPATH": str(ROOT / "src")}
    import os

    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, w], env={**os.environ, **env})
        for w in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    batches = HistoryStore(url).batches("pat")
    assert len(batches) == 50 and len({b["batch"] for b in batches}) == 50
    assert sorted((b["writer"], b["i"]) for b in batches) == sorted(
        (w, i) for w in ("a", "b") for i in range(25)
    )
