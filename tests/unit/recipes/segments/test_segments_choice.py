"""Per segment and target, the global model unless the segment's own model (or global + a
correction) beats it out of fold: planted better in 3 segments and worse in 2, the choice is
right in all 5 and the combined held-out RMSE is at most that of either extreme."""

from __future__ import annotations

import numpy as np
import pytest

from opslens.recipes.segments.regress import SegmentRegressor

BETTER, WORSE = (0, 1, 2), (3, 4)
SIZES = {0: 1500, 1: 1500, 2: 1500, 3: 200, 4: 200}


def _planted(seed: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Five segments on a map (cx, cy) with two model features (u1, u2) and a weekday code.

    Every segment shares a non-linear weekly shape and a curve in u1 (learnt best from all
    rows); segments 0–2 add their own interaction of u1 and u2 (learnt best on their own
    rows), segments 3–4 are small, have no second sensor (u2 = 0) and add nothing (their own
    models see only 200 rows of what the global model learns from all).
    """
    rng = np.random.default_rng(seed)
    parts = []
    for s, n in SIZES.items():
        n = int(n * scale)
        centre = np.array([np.cos(1.3 * s), np.sin(1.3 * s)]) * 6
        xy = centre + rng.normal(0, 0.7, (n, 2))
        u = rng.normal(0, 1, (n, 2))
        if s in WORSE:
            u[:, 1] = 0.0  # no second sensor there: nothing of their own to learn
        day = rng.integers(0, 7, n).astype(float)
        y = 4 * np.sin(3 * u[:, 0]) + np.array([0, 1, 1.5, 1, 0.5, -2, -3])[day.astype(int)]
        if s in BETTER:
            a = (3.0, -3.0, 2.0)[s]
            y = y + a * u[:, 0] * u[:, 1] + (s - 1) * 2 * np.abs(u[:, 1])
        y = y + rng.normal(0, 0.5, n)
        parts.append((np.column_stack([xy, u, day]), y, np.full(n, s)))
    X, y, seg = (np.concatenate(p) for p in zip(*parts, strict=True))
    return X, y, seg.astype(np.int64)


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - p) ** 2)))


@pytest.fixture(scope="module")
def fitted() -> dict[str, SegmentRegressor]:
    X, y, seg = _planted(0)
    return {
        mode: SegmentRegressor(mode=mode, min_segment_rows=50).fit(X, y, seg)
        for mode in ("auto", "segment", "blend")
    }


def test_choice_is_right_in_all_five_segments(fitted) -> None:
    """Right: where the segment's own model is planted better, not the global model and better
    than it on new rows; where planted worse, not the segment's own model and at least as good
    as the better of the two on new rows (the blend may be chosen in either case)."""
    choices = {s: e["choice"] for s, e in fitted["auto"].choices_.items()}
    X, y, seg = _planted(1, scale=3.0)
    for s in SIZES:
        rows = seg == s
        held = {
            "global": _rmse(y[rows], fitted["auto"].predict_global(X[rows])),
            "segment": _rmse(y[rows], fitted["segment"].predict(X[rows], seg[rows])),
            "blend": _rmse(y[rows], fitted["blend"].predict(X[rows], seg[rows])),
        }
        chosen = held[choices[s]]
        if s in BETTER:
            assert held["segment"] < 0.9 * held["global"], (s, held)  # as planted
            assert choices[s] != "global" and chosen < 0.9 * held["global"], (s, choices[s], held)
        else:
            assert held["segment"] > 1.05 * held["global"], (s, held)  # as planted
            assert choices[s] != "segment", (s, choices[s], held)
            assert chosen <= 1.02 * min(held["global"], held["segment"]), (s, choices[s], held)
        e = fitted["auto"].choices_[s]  # the figures behind each choice are kept
        assert e["rmse_global"] > 0 and e["rmse_segment"] > 0 and e["rows"] >= 200


def test_combined_rmse_at_most_global_and_all_per_segment(fitted) -> None:
    X, y, seg = _planted(1, scale=3.0)
    auto = _rmse(y, fitted["auto"].predict(X, seg))
    own = _rmse(y, fitted["segment"].predict(X, seg))
    glob = _rmse(y, fitted["auto"].predict_global(X))
    assert auto <= min(glob, own), (auto, glob, own)
    for s in WORSE:  # where the segment's own model is worse, the choice gains on it
        rows = seg == s
        assert _rmse(y[rows], fitted["auto"].predict(X[rows], seg[rows])) < _rmse(
            y[rows], fitted["segment"].predict(X[rows], seg[rows])
        )


def test_noise_rows_get_the_global_answer_unless_the_segment_model_is_better() -> None:
    X, y, seg = _planted(2, scale=0.5)
    noise = np.zeros(len(y), dtype=bool)
    noise[::25] = True  # a few rows HDBSCAN called noise, placed in their segment
    m = SegmentRegressor(min_segment_rows=50).fit(X, y, seg, noise)
    pooled = m.noise_choice_  # decided on the noise rows of all segments together
    assert pooled["rows"] == int(noise.sum())
    if pooled["choice"] != "global":  # only where it beats the global model out of fold
        assert pooled[f"rmse_{pooled['choice']}"] < pooled["rmse_global"]
    assert {e["noise_choice"] for e in m.choices_.values()} == {pooled["choice"]}
    used = m.predict_with_models(X, seg, noise)[1]
    for s, e in m.choices_.items():
        assert set(used[(seg == s) & noise]) == {e["noise_choice"]}
        assert set(used[(seg == s) & ~noise]) == {e["choice"]}
    # a segment never seen in training gets the global answer, or none without graceful
    unseen = np.full(3, 99)
    assert m.predict_with_models(X[:3], unseen)[1].tolist() == ["global"] * 3
    assert m.predict_with_models(X[:3], unseen, graceful=False)[1].tolist() == ["none"] * 3


def test_forced_modes_skip_the_comparison() -> None:
    X, y, seg = _planted(3, scale=0.3)
    glob = SegmentRegressor(mode="global", n_estimators=20).fit(X, y, seg)
    assert {e["choice"] for e in glob.choices_.values()} == {"global"}
    assert np.allclose(glob.predict(X, seg), glob.predict_global(X))
    with pytest.raises(ValueError, match="mode must be"):
        SegmentRegressor(mode="best").fit(X, y, seg)


def test_a_regressor_fitted_before_the_choice_still_answers_by_its_own_models() -> None:
    X, y, seg = _planted(4, scale=0.2)
    old = SegmentRegressor(mode="segment", n_estimators=10, min_segment_rows=50).fit(X, y, seg)
    del old.choices_, old.corrections_  # what a pickle of the previous version holds
    pred, used = old.predict_with_models(X, seg)
    assert set(used[seg <= 2]) == {"segment"} and np.isfinite(pred).all()
