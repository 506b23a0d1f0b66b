"""Column names and row helpers shared by the distribution stages: the holdout and the histograms.

Example:
    >>> import polars as pl
    >>> mask, said = holdout_mask(pl.DataFrame({"t": [1, 2, 3, 4]}), "t", 0.25, seed=0)
    >>> mask.tolist(), said["holdout"]
    ([False, False, False, True], 'the last 25% of t')
    >>> holdout_mask(pl.DataFrame({"t": [1, 2, 3, 4]}), None, 0.5, seed=0)[1]["holdout"]
    'a seeded random 50% of the rows (no columns.time)'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from opslens.core.recipe import StageContext
from opslens.errors import DataError

__all__ = [
    "COMB",
    "HOLDOUT",
    "POSITION",
    "SEGMENT",
    "InnerSplit",
    "combination_index",
    "draws_at",
    "histogram_matrix",
    "holdout_cutoff",
    "holdout_mask",
    "holdout_rows",
    "inner_histograms",
    "inner_split",
    "segment_of",
    "training_split",
    "with_holdout",
]

COMB = "comb"
SEGMENT = "segment"
HOLDOUT = "holdout"
POSITION = "_position"
"""Each kept row's position among the kept rows (the engine's :meth:`positions`)."""


def draws_at(positions: np.ndarray, seed: int, *, span: int = 1 << 20) -> np.ndarray:
    """``np.random.default_rng(seed).random(n)[positions]`` without drawing the ``n``: the
    generator jumps over the gaps (``PCG64.advance``), so any slice of rows draws its own
    values, the same on every engine and in every batch.

    Example:
        >>> every = np.random.default_rng(5).random(10)
        >>> bool(np.array_equal(draws_at(np.array([7, 2, 3]), 5), every[[7, 2, 3]]))
        True
    """
    p = np.asarray(positions, dtype=np.int64)
    order = np.argsort(p, kind="stable")
    ordered = p[order]
    out = np.empty(p.size)
    bits = np.random.PCG64(seed)
    gen, at, i = np.random.Generator(bits), 0, 0
    while i < ordered.size:
        start = int(ordered[i])
        j = int(np.searchsorted(ordered, start + span, side="left"))
        bits.advance(start - at)
        drawn = gen.random(int(ordered[j - 1]) - start + 1)
        out[order[i:j]] = drawn[ordered[i:j] - start]
        at, i = int(ordered[j - 1]) + 1, j
    return out


def _times(col: pl.Series, time: str) -> np.ndarray:
    """The time column as float numbers (NaN for null); DataError for another type."""
    if not (col.dtype.is_temporal() or col.dtype.is_numeric()):
        raise DataError(
            f"time column '{time}' is {col.dtype}, not a date/time or number",
            fix="name a date/time column in columns.time (or parse it in the source)",
        )
    return col.to_physical().cast(pl.Float64).fill_null(np.nan).to_numpy()  # type: ignore[no-any-return]


def holdout_cutoff(times: pl.Series, share: float) -> tuple[float, dict[str, Any]]:
    """The time after which the last ``share`` of ``times`` lies, and the facts that state it.

    DataError when no row or every row lies after it (too few distinct times).

    Example:
        >>> holdout_cutoff(pl.Series("t", [1, 2, 3, 4]), 0.25)
        (3.25, {'holdout': 'the last 25% of t', 'holdout_from': '4'})
    """
    t = _times(times, str(times.name))
    cutoff = float(np.nanquantile(t, 1.0 - share)) if t.size else 0.0
    mask = t > cutoff
    if not mask.any() or mask.all():
        raise DataError(
            f"the last {share:.0%} of '{times.name}' holds no rows, or all of them (too few "
            "distinct times)",
            fix="give columns.time more distinct values or change params.test_size",
        )
    first = times.filter(pl.Series(mask)).min()
    return cutoff, {"holdout": f"the last {share:.0%} of {times.name}", "holdout_from": str(first)}


def with_holdout(
    frame: pl.DataFrame,
    *,
    time: str | None,
    cutoff: float,
    share: float,
    seed: int,
    position: str = POSITION,
) -> pl.DataFrame:
    """``frame`` with the :data:`HOLDOUT` flag, row by row: a time after ``cutoff``, or
    without ``time`` a seeded draw (at the row's ``position``) below ``share``.

    Example:
        >>> f = pl.DataFrame({"t": [1.0, 5.0], "_position": [0, 1]})
        >>> with_holdout(f, time="t", cutoff=3.0, share=0.5, seed=0)["holdout"].to_list()
        [False, True]
    """
    if time is None:
        flag = draws_at(frame[position].to_numpy(), seed) < share
    else:
        flag = _times(frame[time], time) > cutoff
    return frame.with_columns(pl.Series(HOLDOUT, flag, dtype=pl.Boolean))


def holdout_mask(
    frame: pl.DataFrame, time: str | None, share: float, seed: int, *, what: str = "the rows"
) -> tuple[np.ndarray, dict[str, Any]]:
    """Rows held out: the last ``share`` of ``time``, or a seeded random ``share`` without one.

    Returns the mask and the facts that state it (``holdout``, and ``holdout_from`` with a time).
    """
    if time is None:
        mask = np.random.default_rng(seed).random(frame.height) < share
        return mask, {"holdout": f"a seeded random {share:.0%} of {what} (no columns.time)"}
    cutoff, said = holdout_cutoff(frame[time], share)
    return _times(frame[time], time) > cutoff, said


def segment_of(frame: pl.DataFrame, group: str | None) -> np.ndarray:
    """The segment (``columns.group`` level, or ``"all"``) of each row."""
    if group is None:
        return np.full(frame.height, "all", dtype=object)
    return frame[group].cast(pl.String).to_numpy().astype(object)


def histogram_matrix(histograms: pl.DataFrame) -> np.ndarray:
    """The histograms table as a (combinations × bins) matrix."""
    return np.vstack(histograms["histogram"].to_list()) if histograms.height else np.empty((0, 0))


def combination_index(keys: pl.Series, histograms: pl.DataFrame) -> np.ndarray:
    """Row of ``histograms`` holding each key's combination (-1: no training rows)."""
    lookup = dict(zip(histograms[COMB].to_list(), range(histograms.height), strict=True))
    return keys.replace_strict(lookup, default=-1, return_dtype=pl.Int64).to_numpy()


def holdout_rows(quantized: pl.DataFrame, histograms: pl.DataFrame) -> pl.DataFrame:
    """The held-out rows with a bin, ``_h`` their combination's row of ``histograms``."""
    test = quantized.filter(pl.col(HOLDOUT) & pl.col("bin").is_not_null())
    return test.with_columns(pl.Series("_h", combination_index(test[COMB], histograms)))


@dataclass(frozen=True)
class InnerSplit:
    """The training rows split once more: earlier rows to fit on, later rows to choose with.

    ``h`` is each training row's combination (row of the histograms table), ``bins`` its
    bin, ``segment`` its segment, ``late`` whether it is one of the later rows; ``where``
    says in words which rows are the later ones.
    """

    h: np.ndarray
    bins: np.ndarray
    segment: np.ndarray
    late: np.ndarray
    where: str

    @property
    def usable(self) -> bool:
        """Whether both parts hold rows."""
        return bool(self.late.any() and not self.late.all())


def inner_split(
    quantized: pl.DataFrame,
    histograms: pl.DataFrame,
    *,
    time: str | None,
    share: float,
    seed: int,
    group: str | None,
) -> InnerSplit:
    """The last ``share`` of the training period (a seeded random share without ``time``).

    Choices made on it (the number of patterns, the shrinkage strength) never see the holdout.
    """
    train = quantized.filter(~pl.col(HOLDOUT) & pl.col("bin").is_not_null())
    try:
        late, said = holdout_mask(train, time, share, seed, what="the training rows")
    except DataError:  # too few distinct times inside the training period
        late, said = holdout_mask(train, None, share, seed, what="the training rows")
    where = (
        f"the last {share:.0%} of the training period ({time})"
        if "holdout_from" in said
        else str(said["holdout"])
    )
    return InnerSplit(
        h=combination_index(train[COMB], histograms),
        bins=train["bin"].to_numpy(),
        segment=segment_of(train, group),
        late=late,
        where=where,
    )


def training_split(
    ctx: StageContext, quantized: pl.DataFrame, histograms: pl.DataFrame
) -> InnerSplit:
    """:func:`inner_split` with the analysis' time column, ``params.test_size`` and seed."""
    cols = ctx.analysis.columns
    return inner_split(
        quantized,
        histograms,
        time=cols.time,
        share=ctx.params.test_size,
        seed=ctx.random_state + 1,
        group=cols.group,
    )


def inner_histograms(
    h: np.ndarray, b: np.ndarray, *, n_comb: int, n_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised histograms (and row counts) per combination of rows ``h`` in bins ``b``.

    Example:
        >>> own, n = inner_histograms(np.array([0, 0, 1]), np.array([1, 1, 0]), n_comb=2, n_bins=2)
        >>> own.tolist(), n.tolist()
        ([[0.0, 1.0], [1.0, 0.0]], [2.0, 1.0])
    """
    counts = np.bincount(h * n_bins + b, minlength=n_comb * n_bins).reshape(n_comb, n_bins)
    n = counts.sum(axis=1).astype(float)
    return counts / np.maximum(n, 1.0)[:, None], n
