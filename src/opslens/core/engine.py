"""Where the heavy per-entity work runs: the contract, and the local engine (polars, this process).

A recipe's heavy stages never loop over entities themselves; they hand a
**per-entity function** to ``ctx.engine``, which decides where it runs:

``per_group(frame, by, func)``
    ``func`` gets frames holding *whole* groups of ``by`` (every row of a
    device) and returns one frame; the results are concatenated. ``func`` must
    give the same rows for a group whatever other groups share its call —
    true of every function the recipes pass (fingerprints, user features).
``count_by(frame, keys)``
    row counts per key combination (the distribution recipe's histograms).
``sessions(events, gap, by, time)``
    the engine's own sessionization (Spark: window functions), or None, and the
    caller runs :func:`opslens.features.events.sessionize`.
``map_batches(frame, func, key=None)``
    batch scoring: ``func`` on slices of rows (on whole groups of ``key`` when
    rows of one entity must be scored together, as the fleet model's are);
    answers in input order, and a ``row`` column (the input position an answer
    reports, as the segments model's do) counts in the whole frame.

:class:`LocalEngine` runs all of it here with polars, in bounded slices.
``opslens.engines.spark.SparkEngine`` runs the *same* functions on PySpark
(``groupBy().applyInArrow``, ``mapInArrow``, a Spark aggregation);
``engine: spark`` in project.yaml selects it.

Example:
    >>> eng = LocalEngine(rows_per_slice=2)
    >>> frame = pl.DataFrame({"dev": ["a", "a", "b", "c"], "v": [1, 2, 3, 4]})
    >>> eng.per_group(frame, "dev", lambda f: f.group_by("dev").agg(pl.col("v").sum())).sort("dev").rows()
    [('a', 3), ('b', 3), ('c', 4)]
    >>> eng.count_by(frame, ["dev"]).sort("dev")["count"].to_list()
    [2, 1, 1]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from itertools import pairwise
from typing import Any, Protocol, runtime_checkable

import polars as pl

__all__ = [
    "BUCKET_SEED",
    "Engine",
    "FrameFunc",
    "LocalEngine",
    "Track",
    "buckets",
]

FrameFunc = Callable[[pl.DataFrame], pl.DataFrame]
# wraps the local parts to show progress (``lambda parts: tracked(ctx, parts, "...")``)
Track = Callable[[list[Any]], Iterable[Any]]

BUCKET_SEED = 20241201


@runtime_checkable
class Engine(Protocol):
    """What a stage may ask of an engine (see the module docstring)."""

    @property
    def name(self) -> str:
        """``local`` or ``spark``."""

    def per_group(
        self,
        frame: pl.DataFrame,
        by: str,
        func: FrameFunc,
        *,
        track: Track | None = None,
        rows: int | None = None,
    ) -> pl.DataFrame:
        """``func`` on frames of whole ``by`` groups (about ``rows`` rows each at most, when
        given), results concatenated."""

    def count_by(self, frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
        """``keys`` and ``count`` (UInt32) for each key combination present."""

    def map_batches(
        self, frame: pl.DataFrame, func: FrameFunc, *, key: str | None = None
    ) -> pl.DataFrame:
        """``func`` on slices of rows (whole ``key`` groups when given), concatenated."""

    def sessions(
        self, events: pl.DataFrame, *, gap: timedelta, by: str, time: str
    ) -> pl.DataFrame | None:
        """The engine's own sessionization (Spark: window functions), or None: the caller's
        function (:func:`opslens.features.events.sessionize`) runs instead."""


def buckets(keys: pl.Series, n: int) -> pl.Series:
    """A bucket number in ``[0, n)`` per key, from a seeded hash: deterministic across runs.

    Example:
        >>> b = buckets(pl.Series(["a", "b", "a"]), 4)
        >>> b[0] == b[2], b.max() < 4
        (True, True)
    """
    return (keys.hash(BUCKET_SEED) % max(n, 1)).cast(pl.Int64).alias("_bucket")


@dataclass(frozen=True)
class LocalEngine:
    """Run in this process with polars, ``rows_per_slice`` rows (of whole groups) at a time.

    Slicing bounds memory (a function's intermediate tables scale with its
    slice, not with the whole table) and changes no answer.
    """

    rows_per_slice: int = 5_000_000
    name: str = "local"

    def _n_slices(self, height: int, rows: int | None = None) -> int:
        size = min(self.rows_per_slice, rows) if rows else self.rows_per_slice
        return max(1, -(-height // max(size, 1)))

    def per_group(
        self,
        frame: pl.DataFrame,
        by: str,
        func: FrameFunc,
        *,
        track: Track | None = None,
        rows: int | None = None,
    ) -> pl.DataFrame:
        """Contiguous slices when each group's rows are adjacent (no copy), else hash buckets
        (each filtered out when its turn comes, so no second copy of the frame is held)."""
        n = self._n_slices(frame.height, rows)
        if n == 1:
            return func(frame)
        parts = _group_slices(frame, by, n)
        return pl.concat([func(part()) for part in (track or list)(parts)], how="vertical")

    def count_by(self, frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
        """``group_by(keys).len()`` as ``count``."""
        return frame.group_by(list(keys)).agg(pl.len().alias("count"))

    def sessions(
        self, events: pl.DataFrame, *, gap: timedelta, by: str, time: str
    ) -> pl.DataFrame | None:
        """None: no sessionization of its own (the features' polars function is the local one)."""
        return None

    def map_batches(
        self, frame: pl.DataFrame, func: FrameFunc, *, key: str | None = None
    ) -> pl.DataFrame:
        """Slices of ``rows_per_slice`` rows (whole ``key`` groups when given)."""
        if key is not None:
            return self.per_group(frame, key, func)
        n = self._n_slices(frame.height)
        if n == 1:
            return func(frame)
        size = -(-frame.height // n)
        parts = []
        for start in range(0, frame.height, size):
            answers = func(frame.slice(start, size))
            if "row" in answers.columns:  # an answer's input position: in the whole frame
                answers = answers.with_columns(pl.col("row") + start)
            parts.append(answers)
        return pl.concat(parts)


def _group_slices(frame: pl.DataFrame, by: str, n: int) -> list[Callable[[], pl.DataFrame]]:
    """About ``n`` parts of whole groups, each made when called: zero-copy slices when groups
    are contiguous runs, else a filter on a hash bucket."""
    runs = frame.get_column(by).rle()
    if runs.len() == frame.get_column(by).n_unique():  # every group one contiguous run
        lengths = runs.struct.field("len").cum_sum()
        size = -(-frame.height // n)
        cuts = [0]
        for i in range(1, n):
            at = lengths.search_sorted(i * size, side="left")
            end = int(lengths[min(int(at), lengths.len() - 1)])
            if cuts[-1] < end < frame.height:
                cuts.append(end)
        cuts.append(frame.height)
        return [partial(frame.slice, lo, hi - lo) for lo, hi in pairwise(cuts)]
    bucket = buckets(frame[by], n)
    return [partial(frame.filter, bucket == b) for b in range(n)]
