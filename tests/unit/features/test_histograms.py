"""Histogram features: labels, the min-size filter, edges, quantization, histograms."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from opslens.errors import DataError
from opslens.features.histograms import (
    Histograms,
    bin_edges,
    combination_histograms,
    combination_labels,
    drop_small_combinations,
    quantize,
)


def test_combination_labels_joins_values_and_keeps_input() -> None:
    df = pl.DataFrame({"route": ["A", "B", None], "band": [1, 2, 3], "y": [0.0, 1.0, 2.0]})
    out = combination_labels(df, ["route", "band"], name="c")
    assert out["c"].to_list() == ["route=A|band=1", "route=B|band=2", "route=null|band=3"]
    assert df.columns == ["route", "band", "y"]  # input untouched
    with pytest.raises(DataError, match=r"\['hour'\]"):
        combination_labels(df, ["route", "hour"])
    with pytest.raises(DataError, match="no categorical"):
        combination_labels(df, [])


def test_drop_small_combinations_counts_what_it_costs() -> None:
    df = pl.DataFrame({"comb": ["a"] * 5 + ["b"] * 4 + ["c"] * 2 + ["d"]})
    kept, info = drop_small_combinations(df, min_size=4)
    assert kept["comb"].to_list() == ["a"] * 5 + ["b"] * 4  # order kept
    assert (info.n_rows_dropped, info.n_combinations_dropped) == (3, 2)
    assert (info.n_rows_kept, info.n_combinations_kept) == (9, 2)
    assert info.dropped == ("c", "d")
    assert info.share_rows_dropped == pytest.approx(0.25)


@pytest.mark.parametrize("min_size", [5, 6])
def test_drop_small_combinations_needs_two_left(min_size: int) -> None:
    df = pl.DataFrame({"comb": ["a"] * 5 + ["b"] * 4})
    with pytest.raises(DataError, match=f"min_size={min_size}"):
        drop_small_combinations(df, min_size=min_size)


def test_bin_edges_quantile_and_width() -> None:
    v = np.arange(1001.0)
    q = bin_edges(v, n_bins=4, clip=(0.1, 0.9))
    assert q == pytest.approx([100.0, 300.0, 500.0, 700.0, 900.0])
    w = bin_edges(np.r_[v, 1e9], n_bins=2, method="width", clip=(0.0, 0.5))
    assert w.tolist() == [0.0, 250.25, 500.5]  # the 1e9 outlier is clipped away
    skewed = np.r_[np.zeros(900), np.arange(100.0)]
    e = bin_edges(skewed, n_bins=10, clip=(0.0, 1.0))
    assert e.tolist() == [0.0, 99.0]  # the nine tied quantiles at 0 merged
    assert bin_edges(np.full(5, 7.0)).tolist() == [6.5, 7.5]
    assert bin_edges(np.array([np.nan, 1.0, 3.0]), n_bins=2, clip=(0, 1)).tolist() == [
        1.0,
        2.0,
        3.0,
    ]


@pytest.mark.parametrize(
    ("values", "kwargs", "message"),
    [
        (np.array([np.nan, np.inf]), {}, "no finite values"),
        (np.arange(5.0), {"n_bins": 0}, "n_bins=0"),
        (np.arange(5.0), {"clip": (0.9, 0.1)}, "clip"),
        (np.arange(5.0), {"method": "log"}, "unknown binning method"),
    ],
)
def test_bin_edges_rejects(values: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        bin_edges(values, **kwargs)


def test_quantize_outer_bins_open_and_nulls() -> None:
    df = pl.DataFrame({"y": [-100.0, 0.0, 0.99, 1.0, 2.5, 3.0, 1e6, None, float("nan")]})
    out = quantize(df, target="y", edges=np.array([0.0, 1.0, 2.0, 3.0]))
    assert out["bin"].dtype == pl.Int32
    assert out["bin"].to_list() == [0, 0, 0, 1, 2, 2, 2, None, None]


def test_quantize_per_segment_edges() -> None:
    df = pl.DataFrame({"g": ["a", "a", "b", "b"], "y": [1.0, 5.0, 1.0, 5.0]})
    edges = {"a": np.array([0.0, 2.0, 10.0]), "b": np.array([0.0, 0.5, 1.5, 10.0])}
    out = quantize(df, target="y", edges=edges, group="g")
    assert out["bin"].to_list() == [0, 1, 1, 2]
    with pytest.raises(DataError, match=r"\['b'\]"):
        quantize(df, target="y", edges={"a": edges["a"]}, group="g")
    with pytest.raises(DataError, match="edges per segment"):
        quantize(df, target="y", edges=edges["a"], group="g")
    with pytest.raises(DataError, match="not numeric"):
        quantize(df, target="g", edges=edges["a"])


def test_combination_histograms_exact() -> None:
    df = pl.DataFrame(
        {
            "comb": ["b", "a", "a", "a", "a", "b", "a"],
            "bin": [2, 0, 0, 1, None, 2, 2],
        }
    )
    h = combination_histograms(df, n_bins=3)
    assert h.combinations == ["a", "b"]
    assert h.matrix.tolist() == [[0.5, 0.25, 0.25], [0.0, 0.0, 1.0]]
    assert h.counts.tolist() == [4, 2]
    assert h.segment is None
    frame = h.to_frame()
    assert frame.columns == ["comb", "n_rows", "histogram"]
    assert frame["histogram"].to_list()[1] == [0.0, 0.0, 1.0]
    with pytest.raises(DataError, match=r"outside \[0, 2\)"):
        combination_histograms(df, n_bins=2)


def test_combination_histograms_grouped_rows_are_segment_and_combination() -> None:
    df = pl.DataFrame(
        {"g": ["x", "x", "y", "y", "y"], "comb": ["a", "a", "a", "b", "b"], "bin": [0, 1, 1, 0, 0]}
    )
    h = combination_histograms(df, n_bins=2, group="g")
    assert list(zip(h.segment or [], h.combinations, strict=True)) == [
        ("x", "a"),
        ("y", "a"),
        ("y", "b"),
    ]
    assert h.matrix.tolist() == [[0.5, 0.5], [0.0, 1.0], [1.0, 0.0]]
    assert h.to_frame(group="g").columns == ["comb", "g", "n_rows", "histogram"]


def test_histograms_rows_sum_to_one_at_scale() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    df = pl.DataFrame({"comb": rng.integers(0, 500, n).astype(str), "y": rng.gamma(2.0, 10.0, n)})
    edges = bin_edges(df["y"].to_numpy(), n_bins=20)
    h = combination_histograms(quantize(df, target="y", edges=edges), n_bins=edges.size - 1)
    assert isinstance(h, Histograms) and h.matrix.shape == (500, 20)
    assert np.allclose(h.matrix.sum(axis=1), 1.0)
    assert int(h.counts.sum()) == n
    # quantile bins: the pooled histogram is flat within the clipped range
    pooled = (h.matrix * h.counts[:, None]).sum(axis=0) / n
    assert np.allclose(pooled[1:-1], 0.05, atol=0.002)
