"""Group contrasts: which fingerprint features set each behaviour group apart.

For every group and feature the group is compared with all other devices:

* ``smd``: standardised mean difference, ``(mean_group - mean_rest) / pooled_sd``
  with ``pooled_sd² = ((n₁-1)s₁² + (n₂-1)s₂²) / (n₁+n₂-2)`` (0 when both sides
  are constant);
* ``p_value``: two-sided Mann-Whitney U test (a rank test, so skewed features
  and outliers do not drive it);
* ``q_value``: Benjamini-Hochberg correction over *every* group × feature test
  in the table (one family), computed before the table is cut to ``top`` rows.

Values are cleaned as for rare devices (inf → missing → column median, constant
columns dropped) but not scaled, so means stay in the feature's own units.
DBSCAN noise (label -1) is a group of its own only with ``include_noise=True``
(otherwise those devices count in "the rest" only). :func:`contrasts_by_method`
contrasts every group of every method, noise included, with one BH correction
over all of those tests.

Example:
    >>> import numpy as np
    >>> import polars as pl
    >>> rng = np.random.default_rng(0)
    >>> fp = pl.DataFrame({"id": [str(i) for i in range(40)], "temp": rng.normal(size=40),
    ...                    "vib": np.r_[rng.normal(5, 1, 20), rng.normal(0, 1, 20)]})
    >>> c = group_contrasts(fp, [0] * 20 + [1] * 20, entity="id", top=1)
    >>> c.select("group", "feature", "direction").rows()
    [(0, 'vib', 'higher'), (1, 'vib', 'lower')]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from scipy.stats import mannwhitneyu
from statsmodels.stats.multitest import multipletests

from opslens.core.frames import as_polars
from opslens.detect.population import fingerprint_matrix
from opslens.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["contrasts_by_method", "group_contrasts", "top_group_features"]

_SCHEMA = {
    "group": pl.Int64,
    "feature": pl.String,
    "n_group": pl.Int64,
    "mean_group": pl.Float64,
    "mean_rest": pl.Float64,
    "smd": pl.Float64,
    "p_value": pl.Float64,
    "q_value": pl.Float64,
    "direction": pl.String,
    "significant": pl.Boolean,
    "rank": pl.Int64,
}


def group_contrasts(
    fingerprints: pl.DataFrame | pd.DataFrame,
    labels: Sequence[int] | np.ndarray,
    *,
    entity: str,
    top: int | None = 5,
    alpha: float = 0.05,
    include_noise: bool = False,
) -> pl.DataFrame:
    """Per group × feature: SMD vs the rest, Mann-Whitney p, BH q; the ``top`` by |SMD| per group.

    Rows are sorted by group, then by |SMD| (largest first); ``rank`` is that
    order within the group and ``significant`` is ``q_value < alpha``.
    ``top=None`` keeps every feature.

    Example:
        >>> import polars as pl
        >>> fp = pl.DataFrame({"id": list("abcdef"), "x": [1.0, 1.1, 0.9, 5.0, 5.2, 4.9]})
        >>> c = group_contrasts(fp, [0, 0, 0, 1, 1, 1], entity="id")
        >>> c.select("group", "direction", "n_group").rows()
        [(0, 'lower', 3), (1, 'higher', 3)]
    """
    fingerprints = as_polars(fingerprints, what="fingerprints")
    m = fingerprint_matrix(fingerprints, entity=entity)
    lab = np.asarray(labels).astype(np.int64)
    if lab.shape != (m.X.shape[0],):
        raise DataError(
            f"{lab.size} group labels for {m.X.shape[0]} devices",
            fix="pass one group label per fingerprint row, in the same order",
        )
    groups = np.unique(lab if include_noise else lab[lab >= 0])
    if groups.size < 2:
        raise DataError(
            f"only {groups.size} behaviour group(s) to contrast",
            fix="contrast a grouping with at least two groups",
        )
    X = m.X
    d = X.shape[1]
    parts: list[dict[str, np.ndarray]] = []
    for g in groups:  # one vectorised pass over all features per group
        inside = lab == g
        a, b = X[inside], X[~inside]
        n1, n2 = a.shape[0], b.shape[0]
        mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
        var_a = a.var(axis=0, ddof=1) if n1 > 1 else np.zeros(d)
        var_b = b.var(axis=0, ddof=1) if n2 > 1 else np.zeros(d)
        pooled = np.sqrt(((n1 - 1) * var_a + (n2 - 1) * var_b) / max(n1 + n2 - 2, 1))
        diff = mean_a - mean_b
        smd = np.divide(diff, pooled, out=np.zeros(d), where=pooled > 0)
        p = np.asarray(mannwhitneyu(a, b, alternative="two-sided", axis=0).pvalue, dtype=float)
        parts.append(
            {
                "group": np.full(d, g, dtype=np.int64),
                "feature": np.asarray(m.feature_names, dtype=object),
                "n_group": np.full(d, n1, dtype=np.int64),
                "mean_group": mean_a,
                "mean_rest": mean_b,
                "smd": smd,
                "p_value": np.nan_to_num(p, nan=1.0),
            }
        )
    cols = {k: np.concatenate([p_[k] for p_ in parts]) for k in parts[0]}
    q = multipletests(cols["p_value"], method="fdr_bh")[1]
    frame = pl.DataFrame(
        {
            **{k: v for k, v in cols.items() if k != "feature"},
            "feature": cols["feature"].tolist(),
            "q_value": q,
        }
    )
    frame = (
        frame.with_columns(
            pl.when(pl.col("smd") >= 0)
            .then(pl.lit("higher"))
            .otherwise(pl.lit("lower"))
            .alias("direction"),
            (pl.col("q_value") < alpha).alias("significant"),
        )
        .sort(["group", pl.col("smd").abs(), "feature"], descending=[False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over("group").cast(pl.Int64).alias("rank"))
    )
    if top is not None:
        frame = frame.filter(pl.col("rank") <= top)
    return frame.select(list(_SCHEMA)).cast(_SCHEMA)  # type: ignore[arg-type]


def contrasts_by_method(
    fingerprints: pl.DataFrame,
    labels: pl.DataFrame,
    *,
    entity: str,
    top: int | None = 5,
    alpha: float = 0.05,
    track: Callable[[list[str]], Iterable[str]] | None = None,
) -> pl.DataFrame:
    """:func:`group_contrasts` of every method column of ``labels`` (noise as a group), one BH family.

    ``track`` wraps the list of methods to show progress (one step per method).

    ``labels`` holds the device column and one integer column per method; a
    method with a single group and no noise has nothing to contrast and is left
    out. The result gains a ``method`` column; ``q_value`` corrects over every
    method × group × feature test before the table is cut to ``top`` per group.

    Example:
        >>> fp = pl.DataFrame({"id": list("abcdef"), "x": [1.0, 1.1, 0.9, 5.0, 5.2, 4.9]})
        >>> lab = pl.DataFrame({"id": list("abcdef"), "km": [0, 0, 0, 1, 1, 1],
        ...                     "db": [0, 0, 0, -1, -1, -1]})
        >>> c = contrasts_by_method(fp, lab, entity="id")
        >>> c.select("method", "group", "direction").rows()
        [('km', 0, 'lower'), ('km', 1, 'higher'), ('db', -1, 'higher'), ('db', 0, 'lower')]
    """
    aligned = fingerprints.join(labels, on=entity, how="inner")
    methods = [m for m in labels.columns if m != entity]
    features = aligned.drop(methods)
    parts = [
        group_contrasts(
            features, aligned[m].to_numpy(), entity=entity, top=None, include_noise=True
        ).select(pl.lit(m).alias("method"), pl.all())
        for m in (track or list)(methods)
        if aligned[m].n_unique() >= 2
    ]
    if not parts:
        return pl.DataFrame(schema={"method": pl.String, **_SCHEMA})
    frame = pl.concat(parts)
    q = multipletests(frame["p_value"].to_numpy(), method="fdr_bh")[1]
    frame = frame.with_columns(
        pl.Series("q_value", q, dtype=pl.Float64),
        (pl.Series(q) < alpha).alias("significant"),
    )
    return frame.filter(pl.col("rank") <= top) if top is not None else frame


def top_group_features(
    contrasts: pl.DataFrame, n: int = 3, *, significant_only: bool = True
) -> dict[int, list[tuple[str, float, float]]]:
    """Each group's ``n`` most distinctive features as ``(feature, smd, q_value)``.

    Example:
        >>> import polars as pl
        >>> fp = pl.DataFrame({"id": list("abcdefgh"),
        ...                    "x": [1.0, 1.1, 0.9, 1.2, 5.0, 5.2, 4.9, 5.1]})
        >>> c = group_contrasts(fp, [0, 0, 0, 0, 1, 1, 1, 1], entity="id")
        >>> top_group_features(c, 1, significant_only=False)[1][0][:2]
        ('x', 30.98)
    """
    frame = contrasts.filter(pl.col("significant")) if significant_only else contrasts
    frame = frame.sort(["group", "rank"]).filter(pl.int_range(pl.len()).over("group") < n)
    out: dict[int, list[tuple[str, float, float]]] = {}
    for g, feat, smd, q in frame.select("group", "feature", "smd", "q_value").iter_rows():
        out.setdefault(int(g), []).append((str(feat), round(float(smd), 2), float(q)))
    return out
