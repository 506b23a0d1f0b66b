"""Quantize a target and build one normalized histogram per combination.

The distribution recipe describes each combination of categorical attributes
by the histogram of its target. The steps, each a pure function:

1. :func:`combination_labels` adds a label such as ``route=R01|hour_band=night``;
2. :func:`drop_small_combinations` removes combinations with too few rows;
3. :func:`bin_edges` learns bin edges (quantile or fixed width);
4. :func:`quantize` assigns every row a bin (the outer bins are open, so every
   finite value lands in one; a null/NaN target gets a null bin);
5. :func:`combination_histograms` counts bins per combination and normalizes.

Example:
    >>> import polars as pl
    >>> df = pl.DataFrame({"route": ["A", "A", "B", "B"], "y": [1.0, 2.0, 3.0, 4.0]})
    >>> df = combination_labels(df, ["route"])
    >>> df = quantize(df, target="y", edges=np.array([0.0, 2.5, 5.0]))
    >>> h = combination_histograms(df, n_bins=2)
    >>> h.combinations, h.matrix.tolist()
    (['route=A', 'route=B'], [[1.0, 0.0], [0.0, 1.0]])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from opslens.errors import DataError

__all__ = [
    "Histograms",
    "SmallCombinations",
    "bin_edges",
    "combination_histograms",
    "combination_labels",
    "drop_small_combinations",
    "histogram_keys",
    "histograms_from_counts",
    "quantize",
    "small_combinations",
]


def _require(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{what} column(s) {missing} missing from the data (columns: {frame.columns})",
            fix="name existing columns in the analysis' columns section",
        )


def combination_labels(
    frame: pl.DataFrame, categorical: Sequence[str], *, name: str = "comb"
) -> pl.DataFrame:
    """Add a string column joining the categorical values, ``col=value|col=value``.

    A null value is written as ``null`` (its own level).

    Example:
        >>> df = pl.DataFrame({"route": ["A", None], "hour": [7, 8]})
        >>> combination_labels(df, ["route", "hour"])["comb"].to_list()
        ['route=A|hour=7', 'route=null|hour=8']
    """
    if not categorical:
        raise DataError(
            "no categorical columns given to build combinations from",
            fix="list at least one column in columns.categorical",
        )
    _require(frame, categorical, "categorical")
    parts: list[pl.Expr] = []
    for i, col in enumerate(categorical):
        parts.append(pl.lit(("|" if i else "") + f"{col}="))
        parts.append(pl.col(col).cast(pl.String).fill_null("null"))
    return frame.with_columns(pl.concat_str(parts).alias(name))


@dataclass(frozen=True)
class SmallCombinations:
    """What :func:`drop_small_combinations` removed and kept."""

    min_size: int
    n_rows_dropped: int
    n_combinations_dropped: int
    n_rows_kept: int
    n_combinations_kept: int
    dropped: tuple[str, ...]

    @property
    def share_rows_dropped(self) -> float:
        """Fraction of the input rows removed by the filter.

        Example:
            >>> SmallCombinations(10, 5, 1, 95, 4, ("a",)).share_rows_dropped
            0.05
        """
        total = self.n_rows_dropped + self.n_rows_kept
        return self.n_rows_dropped / total if total else 0.0


def small_combinations(
    counts: pl.DataFrame, *, comb: str = "comb", min_size: int, setting: str = "min_size"
) -> tuple[list[str], SmallCombinations]:
    """The combinations with at least ``min_size`` rows, from their row counts (``comb`` and
    ``count``, e.g. an engine's ``count_by``), and what the filter costs.

    ``setting`` names ``min_size`` in the caller's configuration, for the error's fix.
    Raises :class:`DataError` when no combination, or only one, remains.

    Example:
        >>> counts = pl.DataFrame({"comb": ["a", "b", "c"], "count": [3, 3, 1]})
        >>> big, info = small_combinations(counts, min_size=2)
        >>> big, info.n_rows_dropped, info.dropped
        (['a', 'b'], 1, ('c',))
    """
    n = counts["count"].cast(pl.Int64)
    small, big = counts.filter(n < min_size), counts.filter(n >= min_size)
    if big.height < 2:
        largest = int(n.max() or 0)  # type: ignore[arg-type]
        raise DataError(
            f"{big.height} combination(s) have at least min_size={min_size} rows "
            f"({counts.height} combinations in total, the largest has {largest} rows); "
            "at least two are needed to find patterns",
            fix=f"lower {setting}, use fewer categorical columns, or provide more rows",
        )
    info = SmallCombinations(
        min_size=min_size,
        n_rows_dropped=int(small["count"].cast(pl.Int64).sum()),
        n_combinations_dropped=small.height,
        n_rows_kept=int(big["count"].cast(pl.Int64).sum()),
        n_combinations_kept=big.height,
        dropped=tuple(sorted(str(c) for c in small[comb].to_list())),
    )
    return sorted(str(c) for c in big[comb].to_list()), info


def drop_small_combinations(
    frame: pl.DataFrame, *, comb: str = "comb", min_size: int, setting: str = "min_size"
) -> tuple[pl.DataFrame, SmallCombinations]:
    """Keep rows of combinations with at least ``min_size`` rows; report the cost
    (:func:`small_combinations` on the frame's own counts).

    Example:
        >>> df = pl.DataFrame({"comb": ["a"] * 3 + ["b"] * 3 + ["c"]})
        >>> kept, info = drop_small_combinations(df, min_size=2)
        >>> kept.height, info.n_rows_dropped, info.dropped
        (6, 1, ('c',))
    """
    _require(frame, [comb], "combination")
    big, info = small_combinations(
        frame.group_by(comb).len("count"), comb=comb, min_size=min_size, setting=setting
    )
    return frame.filter(pl.col(comb).is_in(big)), info


def bin_edges(
    values: np.ndarray,
    *,
    n_bins: int = 20,
    method: Literal["quantile", "width"] = "quantile",
    clip: tuple[float, float] = (0.005, 0.995),
) -> np.ndarray:
    """Learn strictly increasing bin edges over the ``clip`` quantile range.

    ``quantile`` puts equal counts in each bin (tied quantiles are merged, so
    fewer bins may come back); ``width`` splits the range evenly. Values beyond
    the first/last edge fall into the outer bins when quantized.

    Example:
        >>> bin_edges(np.arange(101.0), n_bins=4, clip=(0.0, 1.0)).tolist()
        [0.0, 25.0, 50.0, 75.0, 100.0]
        >>> bin_edges(np.array([1.0, 1.0, 1.0, 1.0, 2.0]), n_bins=4, clip=(0.0, 1.0)).tolist()
        [1.0, 2.0]
    """
    if n_bins < 1:
        raise DataError(f"n_bins={n_bins} is below 1", fix="set params.n_bins to 2 or more")
    lo_q, hi_q = clip
    if not 0.0 <= lo_q < hi_q <= 1.0:
        raise DataError(
            f"clip={clip} is not two increasing quantiles in [0, 1]", fix="use e.g. (0.005, 0.995)"
        )
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise DataError(
            "the target has no finite values to bin",
            fix="check that the target column is numeric and not all null/NaN",
        )
    if method == "quantile":
        edges = np.unique(np.quantile(v, np.linspace(lo_q, hi_q, n_bins + 1)))
    elif method == "width":
        lo, hi = np.quantile(v, [lo_q, hi_q])
        edges = np.unique(np.linspace(lo, hi, n_bins + 1))
    else:
        raise DataError(f"unknown binning method {method!r}", fix="use 'quantile' or 'width'")
    if edges.size < 2:
        c = float(edges[0])
        edges = np.array([c - 0.5, c + 0.5])
    return edges


def _assign(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index per value (outer bins open); -1 for NaN."""
    idx = np.searchsorted(edges[1:-1], values, side="right").astype(np.int32)
    idx[~np.isfinite(values)] = -1
    return idx


def quantize(
    frame: pl.DataFrame,
    *,
    target: str,
    edges: np.ndarray | Mapping[str, np.ndarray],
    group: str | None = None,
    name: str = "bin",
) -> pl.DataFrame:
    """Add an Int32 bin column for ``target`` (bin ``i`` is ``[edges[i], edges[i+1])``).

    With ``group`` set, ``edges`` maps each segment value to its own edges.

    Example:
        >>> df = pl.DataFrame({"y": [-5.0, 1.0, 2.0, 99.0, None]})
        >>> quantize(df, target="y", edges=np.array([0.0, 2.0, 4.0]))["bin"].to_list()
        [0, 0, 1, 1, None]
    """
    _require(frame, [target], "target")
    if not frame.schema[target].is_numeric():
        raise DataError(
            f"target column {target!r} is {frame.schema[target]}, not numeric",
            fix="name a numeric column in columns.target",
        )
    values = frame[target].cast(pl.Float64).fill_null(np.nan).to_numpy()
    if group is None:
        if isinstance(edges, Mapping):
            raise DataError("per-segment edges were given without a group column", fix="set group")
        bins = _assign(values, np.asarray(edges, dtype=float))
    else:
        _require(frame, [group], "group")
        if not isinstance(edges, Mapping):
            raise DataError(
                f"group={group!r} needs edges per segment, got one array",
                fix="pass a mapping segment -> edges",
            )
        seg = frame[group].cast(pl.String).fill_null("null")
        levels = seg.unique().sort().to_list()
        codes = seg.replace_strict(
            levels, list(range(len(levels))), return_dtype=pl.Int64
        ).to_numpy()
        unknown = sorted(set(levels) - {str(k) for k in edges})
        if unknown:
            raise DataError(
                f"no bin edges for segment(s) {unknown} of group column {group!r}",
                fix="learn edges for every segment of the group column",
            )
        bins = np.full(values.shape[0], -1, dtype=np.int32)
        str_edges = {str(k): np.asarray(e, dtype=float) for k, e in edges.items()}
        for code, level in enumerate(levels):  # one pass per segment, not per row
            mask = codes == code
            bins[mask] = _assign(values[mask], str_edges[level])
    out = pl.Series(name, bins, dtype=pl.Int32)
    return frame.with_columns(pl.when(out >= 0).then(out).otherwise(None).alias(name))


@dataclass(frozen=True)
class Histograms:
    """One normalized histogram per combination (rows of ``matrix`` sum to 1)."""

    combinations: list[str]
    matrix: np.ndarray
    counts: np.ndarray
    segment: list[str] | None = None

    def to_frame(self, *, comb: str = "comb", group: str = "segment") -> pl.DataFrame:
        """The histograms as a frame: label, (segment), n_rows and a list column.

        Example:
            >>> h = Histograms(["a"], np.array([[0.25, 0.75]]), np.array([4]))
            >>> h.to_frame().row(0)
            ('a', 4, [0.25, 0.75])
        """
        data: dict[str, object] = {comb: self.combinations}
        if self.segment is not None:
            data[group] = self.segment
        data["n_rows"] = self.counts.astype(np.int64)
        data["histogram"] = pl.Series(
            "histogram", self.matrix, dtype=pl.Array(pl.Float64, self.matrix.shape[1])
        ).cast(pl.List(pl.Float64))
        return pl.DataFrame(data)


def combination_histograms(
    frame: pl.DataFrame,
    *,
    comb: str = "comb",
    bin: str = "bin",
    n_bins: int,
    group: str | None = None,
    count_by: Callable[[pl.DataFrame, list[str]], pl.DataFrame] | None = None,
) -> Histograms:
    """Count bins per combination (per segment and combination with ``group``) and normalize.

    Rows with a null bin are ignored. Combinations come back sorted. ``count_by``
    counts rows per key combination (a frame of the keys and ``count``); by default
    polars here, or an engine's (``ctx.engine.count_by``: a Spark aggregation).

    Example:
        >>> df = pl.DataFrame({"comb": ["a", "a", "a", "b"], "bin": [0, 1, 1, 2]})
        >>> h = combination_histograms(df, n_bins=3)
        >>> h.matrix.round(3).tolist(), h.counts.tolist()
        ([[0.333, 0.667, 0.0], [0.0, 0.0, 1.0]], [3, 1])
    """
    _require(frame, [comb, bin] + ([group] if group else []), "histogram")
    data = frame.filter(pl.col(bin).is_not_null())
    if data.height == 0:
        raise DataError(
            "no rows with a bin to build histograms from", fix="check the target column"
        )
    lo, hi = data[bin].min(), data[bin].max()
    if lo < 0 or hi >= n_bins:  # type: ignore[operator]
        raise DataError(
            f"bin column {bin!r} has values outside [0, {n_bins})",
            fix="pass n_bins = len(edges) - 1 of the edges used to quantize",
        )
    keys = [group, comb] if group else [comb]
    counter = count_by or _count_rows
    counts = counter(histogram_keys(data, comb=comb, bin=bin, group=group), [*keys, bin])
    return histograms_from_counts(counts, comb=comb, bin=bin, n_bins=n_bins, group=group)


def histogram_keys(
    frame: pl.DataFrame, *, comb: str = "comb", bin: str = "bin", group: str | None = None
) -> pl.DataFrame:
    """The columns a histogram counts: the keys as text (null as ``"null"``) and the bin.

    Example:
        >>> histogram_keys(pl.DataFrame({"comb": ["a"], "bin": [1], "y": [2.0]})).columns
        ['comb', 'bin']
    """
    keys = [group, comb] if group else [comb]
    return frame.select(
        *(pl.col(k).cast(pl.String).fill_null("null") for k in keys), pl.col(bin).cast(pl.Int64)
    )


def histograms_from_counts(
    counts: pl.DataFrame,
    *,
    comb: str = "comb",
    bin: str = "bin",
    n_bins: int,
    group: str | None = None,
) -> Histograms:
    """The normalised histograms of row ``count`` per key and ``bin`` (combinations sorted).

    Example:
        >>> counts = pl.DataFrame({"comb": ["b", "a", "a"], "bin": [0, 1, 0], "count": [2, 1, 3]})
        >>> h = histograms_from_counts(counts, n_bins=2)
        >>> h.combinations, h.matrix.tolist(), h.counts.tolist()
        (['a', 'b'], [[0.75, 0.25], [1.0, 0.0]], [4, 2])
    """
    keys = [group, comb] if group else [comb]
    uniq = counts.select(keys).unique().sort(keys)
    coded = counts.join(uniq.with_row_index("_k"), on=keys, how="left")
    cells = coded["_k"].cast(pl.Int64).to_numpy() * n_bins + coded[bin].to_numpy()
    n_comb = uniq.height
    counts2d = np.bincount(
        cells, weights=coded["count"].cast(pl.Float64).to_numpy(), minlength=n_comb * n_bins
    ).reshape(n_comb, n_bins)
    totals = counts2d.sum(axis=1)
    matrix = counts2d / totals[:, None]
    return Histograms(
        combinations=uniq[comb].to_list(),
        matrix=matrix,
        counts=totals.astype(np.int64),
        segment=uniq[group].to_list() if group else None,
    )


def _count_rows(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return frame.group_by(keys).agg(pl.len().alias("count"))
