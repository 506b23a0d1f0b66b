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

``keep=True`` on ``per_group``, ``map_batches`` and ``sessions`` returns an
**engine frame** instead of a polars one: on Spark a Spark DataFrame that stays
on the executors (no row reaches this process), here the polars frame itself.
Engine frames are handled through the engine: ``summarise`` (a few aggregations,
a small polars answer), ``collect``, ``head``, ``height``, ``concat``, ``numbered``
(a column of increasing numbers in the frame's row order), ``positions`` (the
rows' consecutive positions 0, 1, 2, ... in that order), ``store``
(written by the engine: a Parquet file here, a Parquet folder written by the
executors on Spark) and ``read`` (a Parquet path, or a SQL table: on Spark read
by the executors, over JDBC in ranges). ``distributed`` says whether frames live
elsewhere (Spark) or in this process (local).

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

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import polars as pl

__all__ = [
    "AGGREGATIONS",
    "BUCKET_SEED",
    "Engine",
    "FrameFunc",
    "LocalEngine",
    "Track",
    "buckets",
    "is_table",
    "polars_aggregation",
]

FrameFunc = Callable[[pl.DataFrame], pl.DataFrame]
# wraps the local parts to show progress (``lambda parts: tracked(ctx, parts, "...")``)
Track = Callable[[list[Any]], Iterable[Any]]

BUCKET_SEED = 20241201
#: what ``Engine.summarise`` computes: ``{name: (op, column)}`` with these ops
AGGREGATIONS = ("count", "sum", "min", "max", "mean", "median", "n_unique")


def is_table(value: Any) -> bool:
    """Whether ``value`` is a table an engine hands around: a polars frame, or an engine frame
    (a Spark DataFrame) that stays where the engine keeps it.

    Example:
        >>> is_table(pl.DataFrame({"a": [1]})), is_table([1])
        (True, False)
    """
    return isinstance(value, pl.DataFrame) or type(value).__module__.startswith("pyspark.sql")


def polars_aggregation(name: str, op: str, column: str) -> pl.Expr:
    """The polars expression of one ``summarise`` aggregation (``count`` counts rows).

    Example:
        >>> pl.DataFrame({"a": [1, 2, 2]}).select(polars_aggregation("n", "n_unique", "a")).item()
        2
    """
    if op not in AGGREGATIONS:
        raise ValueError(f"summarise knows {', '.join(AGGREGATIONS)}, not {op!r}")
    if op == "count":
        return pl.len().cast(pl.Int64).alias(name)
    col = pl.col(column)
    expr = {
        "sum": col.sum(),
        "min": col.min(),
        "max": col.max(),
        "mean": col.mean(),
        "median": col.median(),
        "n_unique": col.drop_nulls().n_unique().cast(pl.Int64),
    }[op]
    return expr.alias(name)


@runtime_checkable
class Engine(Protocol):
    """What a stage may ask of an engine (see the module docstring)."""

    @property
    def name(self) -> str:
        """``local`` or ``spark``."""

    @property
    def distributed(self) -> bool:
        """Whether engine frames live elsewhere (Spark's executors) rather than here."""

    def per_group(
        self,
        frame: Any,
        by: str,
        func: FrameFunc,
        *,
        track: Track | None = None,
        rows: int | None = None,
        keep: bool = False,
    ) -> Any:
        """``func`` on frames of whole ``by`` groups (about ``rows`` rows each at most, when
        given), results concatenated (an engine frame with ``keep``)."""

    def count_by(self, frame: Any, keys: Sequence[str]) -> pl.DataFrame:
        """``keys`` and ``count`` (UInt32) for each key combination present."""

    def map_batches(
        self, frame: Any, func: FrameFunc, *, key: str | None = None, keep: bool = False
    ) -> Any:
        """``func`` on slices of rows (whole ``key`` groups when given), concatenated (an
        engine frame with ``keep``, in no particular order)."""

    def sessions(
        self,
        events: Any,
        *,
        gap: timedelta,
        by: str | Sequence[str],
        time: str,
        keep: bool = False,
    ) -> Any:
        """The engine's own sessionization (Spark: window functions), or None: the caller's
        function (:func:`opslens.features.events.sessionize`) runs instead."""

    def summarise(
        self, frame: Any, aggs: Mapping[str, tuple[str, str]], by: Sequence[str] = ()
    ) -> pl.DataFrame:
        """``{name: (op, column)}`` aggregations (:data:`AGGREGATIONS`), per ``by`` group when
        given (sorted by it): a small polars answer."""

    def collect(self, frame: Any, *, rows: int | None = None) -> pl.DataFrame:
        """The frame as polars, here; ``rows``: about how many rows it has, given for a large
        frame (Spark brings it back in parts of at most 100,000 rows, so the driver's JVM
        holds a few parts at a time, never the whole frame)."""

    def head(self, frame: Any, n: int) -> pl.DataFrame:
        """At most ``n`` rows of the frame, as polars."""

    def height(self, frame: Any) -> int:
        """The frame's number of rows."""

    def concat(self, frames: Sequence[Any]) -> Any:
        """Frames of the same columns one after the other (columns matched by name)."""

    def numbered(self, frame: Any, name: str) -> Any:
        """The frame with a column ``name`` of Int64 numbers increasing in its row order (not
        consecutive on Spark), so a later step can restore the order within an entity."""

    def positions(self, frame: Any, name: str) -> Any:
        """The frame with a column ``name`` of its rows' positions: consecutive Int64 from 0 in
        its row order (a row-wise function of the position then gives the same answer on
        every engine)."""

    def store(self, frame: Any, path: Path) -> None:
        """Write the frame as Parquet at ``path`` (Spark: a folder of part files, written by
        the executors)."""

    def read(self, source: str | Path, *, table: str | None = None) -> Any:
        """A Parquet file or folder at ``source``, or the SQL ``table`` at the URL ``source``,
        as an engine frame (Spark: read by the executors)."""


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
    distributed: bool = False

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
        keep: bool = False,
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
        self,
        events: pl.DataFrame,
        *,
        gap: timedelta,
        by: str | Sequence[str],
        time: str,
        keep: bool = False,
    ) -> pl.DataFrame | None:
        """None: no sessionization of its own (the features' polars function is the local one)."""
        return None

    def summarise(
        self, frame: pl.DataFrame, aggs: Mapping[str, tuple[str, str]], by: Sequence[str] = ()
    ) -> pl.DataFrame:
        """The aggregations with polars (per ``by`` group, sorted by it).

        Example:
            >>> f = pl.DataFrame({"k": ["a", "b", "a"], "v": [1, 2, 3]})
            >>> LocalEngine().summarise(f, {"n": ("count", "*"), "top": ("max", "v")}, by=["k"]).rows()
            [('a', 2, 3), ('b', 1, 2)]
        """
        exprs = [polars_aggregation(n, op, c) for n, (op, c) in aggs.items()]
        if not by:
            return frame.select(exprs)
        return frame.group_by(list(by)).agg(exprs).sort(list(by), nulls_last=True)

    def collect(self, frame: pl.DataFrame, *, rows: int | None = None) -> pl.DataFrame:
        """The frame itself (it is here already)."""
        return frame

    def head(self, frame: pl.DataFrame, n: int) -> pl.DataFrame:
        """``frame.head(n)``."""
        return frame.head(n)

    def height(self, frame: pl.DataFrame) -> int:
        """``frame.height``."""
        return frame.height

    def concat(self, frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
        """``pl.concat`` (columns matched by name, types relaxed)."""
        first = list(frames[0].columns)
        return pl.concat([f.select(first) for f in frames], how="vertical_relaxed")

    def numbered(self, frame: pl.DataFrame, name: str) -> pl.DataFrame:
        """``frame`` with its row index as ``name`` (Int64).

        Example:
            >>> LocalEngine().numbered(pl.DataFrame({"a": ["x", "y"]}), "n")["n"].to_list()
            [0, 1]
        """
        return frame.with_row_index(name).with_columns(pl.col(name).cast(pl.Int64))

    def positions(self, frame: pl.DataFrame, name: str) -> pl.DataFrame:
        """``frame`` with its row index as ``name`` (Int64): :meth:`numbered` is consecutive here.

        Example:
            >>> LocalEngine().positions(pl.DataFrame({"a": ["x", "y"]}), "p")["p"].to_list()
            [0, 1]
        """
        return self.numbered(frame, name)

    def store(self, frame: pl.DataFrame, path: Path) -> None:
        """``frame.write_parquet(path)``."""
        frame.write_parquet(path)

    def read(self, source: str | Path, *, table: str | None = None) -> pl.DataFrame:
        """``pl.read_parquet`` (a folder: its part files); a SQL table is the source loader's
        to read here (:mod:`opslens.io`), so ``table`` is refused."""
        if table is not None:
            from opslens.errors import ConfigError

            raise ConfigError(
                f"the local engine reads no SQL table itself ({table!r})",
                fix="give the table as the analysis's source (source.kind: sql)",
            )
        path = Path(source)
        return pl.read_parquet(path / "*.parquet" if path.is_dir() else path)

    def map_batches(
        self, frame: pl.DataFrame, func: FrameFunc, *, key: str | None = None, keep: bool = False
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
