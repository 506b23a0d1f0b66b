"""Risk weights learned from known failures are validated out of fold.

Each fold's weights are learned on the other folds only, so a device's own label never sets
the weights its risk is computed with; on pure noise the in-sample weights find a lucky
AUROC that the out-of-fold risk does not.
"""

from __future__ import annotations

import numpy as np
import pytest

from opslens.recipes.fleet.baselines import auroc
from opslens.recipes.fleet.health import _combined, learned_weights, out_of_fold_risk

COMPONENTS = ("rarity", "own_change", "peer_change")


def _parts(seed: int, n: int = 200) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    failed = np.zeros(n, dtype=bool)
    failed[rng.choice(n, 12, replace=False)] = True
    parts = {
        "rarity": rng.random(n),
        "own_change": rng.random(n),
        "peer_change": np.clip(np.where(failed, 0.75, 0.45) + rng.normal(0, 0.15, n), 0, 1),
    }
    return parts, failed


def test_each_fold_is_scored_with_weights_learned_without_it() -> None:
    parts, failed = _parts(0)
    oof = out_of_fold_risk(parts, failed, random_state=3)
    assert len(oof.fold_weights) == 5 and set(np.unique(oof.fold)) == set(range(5))
    for f, weights in enumerate(oof.fold_weights):
        out, inside = oof.fold != f, oof.fold == f
        assert failed[inside].sum() in (2, 3)  # stratified: 12 failures over 5 folds
        assert weights == learned_weights({c: v[out] for c, v in parts.items()}, failed[out])
        expected = _combined({c: v[inside] for c, v in parts.items()}, weights)
        np.testing.assert_array_equal(oof.risk[inside], expected)
    # the planted signal is found out of fold
    assert float(auroc(failed, oof.risk)) >= 0.85
    assert learned_weights(parts, failed)["peer_change"] >= 0.5


def test_noise_gains_nothing_out_of_fold() -> None:
    rng = np.random.default_rng(1)
    failed = np.zeros(150, dtype=bool)
    failed[:10] = True
    lucky, honest = [], []
    for _ in range(20):
        parts = {c: rng.random(failed.size) for c in COMPONENTS}
        lucky.append(float(auroc(failed, _combined(parts, learned_weights(parts, failed)))))
        honest.append(float(auroc(failed, out_of_fold_risk(parts, failed).risk)))
    assert np.mean(lucky) - np.mean(honest) >= 0.05, (np.mean(lucky), np.mean(honest))
    assert abs(np.mean(honest) - 0.5) < 0.08, np.mean(honest)


def test_chunked_paired_tests_are_the_compare_modules_figures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The warning comparison's interval and p, drawn in chunks, equal models.compare's."""
    import importlib

    from opslens.models.compare import paired_interval, paired_p_value

    health = importlib.import_module("opslens.recipes.fleet.health")

    rng = np.random.default_rng(4)
    n = 5000  # 5,000 devices: the chunks hold 400 of the 2,000 flips (and of 1,000 resamples)
    warned_a = (rng.random(n) < 0.05).astype(float)
    warned_b = (rng.random(n) < 0.08).astype(float)  # the baseline warns more healthy units
    lead_a = rng.integers(0, 20, size=n).astype(float)
    lead_b = np.maximum(lead_a - rng.integers(0, 4, size=n), 0).astype(float)
    monkeypatch.setattr(health, "_CHUNK", 2_000_000 // 5000)  # chunks on this small fleet too
    for a, b in ((warned_a, warned_b), (lead_a, lead_b)):
        assert health._paired_interval(a, b, random_state=0) == paired_interval(
            a, b, random_state=0
        )
        assert health._paired_p(a, b, random_state=0) == paired_p_value(a, b, random_state=0)
    mean, (lo, hi) = health._paired_interval(warned_a, warned_b, random_state=0)
    assert lo < mean < hi < 0  # the planted difference: fewer healthy units warned
    assert health._paired_p(lead_a, lead_b, random_state=0) < 0.01  # earlier, and surely so
