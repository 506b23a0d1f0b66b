"""Group contrasts: the planted distinguishing feature comes first and survives the correction."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.stats import mannwhitneyu
from statsmodels.stats.multitest import multipletests

from opslens.errors import DataError
from opslens.explain.contrasts import contrasts_by_method, group_contrasts, top_group_features


def planted(seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """3 groups × 40 devices, 12 noise features; group 1 is +2 on 'vib_std', group 2 −1.5 on 'temp'."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1, 2], 40)
    cols = {f"noise_{j}": rng.normal(size=120) for j in range(12)}
    cols["vib_std"] = rng.normal(size=120) + 2.0 * (labels == 1)
    cols["temp"] = rng.normal(20.0, 1.0, size=120) - 1.5 * (labels == 2)
    fp = pl.DataFrame({"device": [f"d{i}" for i in range(120)], **cols})
    return fp, labels


@pytest.fixture(scope="module")
def contrasts() -> pl.DataFrame:
    fp, labels = planted()
    return group_contrasts(fp, labels, entity="device", top=None)


def test_planted_features_have_the_largest_smd_and_small_q(contrasts: pl.DataFrame) -> None:
    g1 = contrasts.filter(pl.col("group") == 1).row(0, named=True)
    assert g1["feature"] == "vib_std" and g1["direction"] == "higher"
    assert g1["smd"] > 1.5 and g1["q_value"] < 0.01 and g1["rank"] == 1
    g2 = contrasts.filter(pl.col("group") == 2).row(0, named=True)
    assert g2["feature"] == "temp" and g2["direction"] == "lower"
    assert g2["smd"] < -1.0 and g2["q_value"] < 0.01
    noise = contrasts.filter(pl.col("feature").str.starts_with("noise"))
    assert noise["significant"].sum() <= 1  # 36 null tests at FDR 5%


def test_numbers_match_a_direct_computation(contrasts: pl.DataFrame) -> None:
    fp, labels = planted()
    x = fp["vib_std"].to_numpy()
    a, b = x[labels == 1], x[labels != 1]
    pooled = np.sqrt(
        ((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)
    )
    row = contrasts.filter((pl.col("group") == 1) & (pl.col("feature") == "vib_std")).row(
        0, named=True
    )
    assert row["smd"] == pytest.approx((a.mean() - b.mean()) / pooled, rel=1e-12)
    assert row["p_value"] == pytest.approx(mannwhitneyu(a, b).pvalue, rel=1e-12)
    assert row["mean_group"] == pytest.approx(a.mean()) and row["n_group"] == 40
    # BH over the whole table (3 groups × 14 features = 42 tests)
    assert contrasts.height == 42
    q = multipletests(contrasts["p_value"].to_numpy(), method="fdr_bh")[1]
    np.testing.assert_allclose(contrasts["q_value"].to_numpy(), q)


def test_sorted_by_group_then_abs_smd_and_cut_to_top() -> None:
    fp, labels = planted()
    top = group_contrasts(fp, labels, entity="device", top=3)
    assert top.height == 9
    for g in (0, 1, 2):
        smd = top.filter(pl.col("group") == g)["smd"].abs().to_numpy()
        assert np.all(np.diff(smd) <= 0)
    full = group_contrasts(fp, labels, entity="device", top=None)
    # q-values are corrected before the cut, so they equal those of the full table
    merged = top.join(full, on=["group", "feature"], suffix="_full")
    np.testing.assert_allclose(merged["q_value"], merged["q_value_full"])


def test_top_group_features(contrasts: pl.DataFrame) -> None:
    tops = top_group_features(contrasts, 2)
    assert tops[1][0][0] == "vib_std"
    assert tops[2][0][0] == "temp"
    assert all(q < 0.05 for feats in tops.values() for _, _, q in feats)


def test_noise_label_is_not_a_group() -> None:
    fp, labels = planted()
    labels = labels.copy()
    labels[:5] = -1
    c = group_contrasts(fp, labels, entity="device", top=1)
    assert sorted(c["group"].to_list()) == [0, 1, 2]
    assert c.filter(pl.col("group") == 0)["n_group"].item() == 35


def test_bad_labels() -> None:
    fp, labels = planted()
    with pytest.raises(DataError, match="119 group labels for 120 devices"):
        group_contrasts(fp, labels[:-1], entity="device")
    with pytest.raises(DataError, match="only 1 behaviour group"):
        group_contrasts(fp, np.zeros(120, dtype=int), entity="device")


def test_every_group_of_every_method_is_contrasted_noise_included() -> None:
    rng = np.random.default_rng(2)
    n = 90
    X = rng.normal(size=(n, 4))
    X[80:, 2] += 6.0  # the ten devices DBSCAN leaves as noise run high in feature f2
    fp = pl.DataFrame({"id": [f"d{i}" for i in range(n)], **{f"f{j}": X[:, j] for j in range(4)}})
    labels = pl.DataFrame(
        {
            "id": fp["id"],
            "kmeans": [0] * 45 + [1] * 45,
            "dbscan": [0] * 80 + [-1] * 10,
            "single": [0] * n,  # one group, no noise: nothing to contrast
        }
    )
    c = contrasts_by_method(fp, labels, entity="id", top=None)
    assert set(c["method"].unique()) == {"kmeans", "dbscan"}
    assert c.height == 4 * 4  # 2 methods x 2 groups x 4 features
    noise = c.filter((pl.col("method") == "dbscan") & (pl.col("group") == -1)).row(0, named=True)
    assert noise["feature"] == "f2" and noise["smd"] > 3 and noise["significant"]
    raw = np.asarray(c["p_value"])
    expected = multipletests(raw, method="fdr_bh")[1]
    np.testing.assert_allclose(c["q_value"].to_numpy(), expected)  # one family over both methods
