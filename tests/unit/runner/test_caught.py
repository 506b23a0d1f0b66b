"""Warnings caught per thread: two stages warning at once each get their own, nothing leaks."""

from __future__ import annotations

import threading
import warnings

from opslens.errors import OpslensWarning
from opslens.runner.caught import caught


def _stage(name: str, barrier: threading.Barrier, out: dict[str, list[str]]) -> None:
    with caught() as seen:
        barrier.wait()  # both threads inside at once
        for i in range(50):
            warnings.warn(f"{name} {i}", OpslensWarning, stacklevel=1)
        barrier.wait()
    out[name] = [str(w.message) for w in seen]


def test_two_threads_each_catch_only_their_own_warnings() -> None:
    handler = warnings.showwarning
    barrier = threading.Barrier(2)
    out: dict[str, list[str]] = {}
    threads = [threading.Thread(target=_stage, args=(n, barrier, out)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out["a"] == [f"a {i}" for i in range(50)]
    assert out["b"] == [f"b {i}" for i in range(50)]
    assert warnings.showwarning is handler  # restored once the last one left


def test_a_thread_outside_gets_the_usual_handler_and_nesting_keeps_each_block() -> None:
    barrier, done = threading.Event(), threading.Event()
    outside: list[str] = []

    def other() -> None:
        barrier.wait()
        with warnings.catch_warnings(record=True) as log:
            warnings.simplefilter("always")
            warnings.warn("outside", UserWarning, stacklevel=1)
        outside.extend(str(w.message) for w in log)
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with caught() as outer:
        warnings.warn("first", OpslensWarning, stacklevel=1)
        with caught() as inner:
            warnings.warn("inner", OpslensWarning, stacklevel=1)
        barrier.set()
        done.wait(5)
        warnings.warn("last", OpslensWarning, stacklevel=1)
    t.join()
    assert [str(w.message) for w in outer] == ["first", "last"]
    assert [str(w.message) for w in inner] == ["inner"]
    assert outside == ["outside"]
