"""scikit-learn's own estimator checks over every opslens estimator that takes a plain X.

``parametrize_with_checks`` runs scikit-learn's whole suite (clone, fit returning self,
input validation, NaN and inf rejected, n_features_in_, pickling, invariance to batches
and row order, ...) beside our own contract in ``test_estimators.py``: over ECOD, the
autoencoder, the rare-device detector, the distribution recipe's histogram clusterer
the segments recipe's HDBSCAN assigner and its per-segment regressor (on scaled
feature arrays, as the recipe hands them over). The one check expected to fail is named below with its reason. The
array-API check runs with dispatch on NumPy only (these estimators declare no array-API
support), so it needs ``SCIPY_ARRAY_API=1``, set here.

``PatternClassifier`` takes a polars frame of named categorical columns (no plain X)
and is covered by ``test_estimators.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from opslens.cluster.profiles import DistributionClusterer
from opslens.detect.autoencoder import AutoencoderDetector
from opslens.detect.ecod import ECOD
from opslens.detect.population import RareDeviceDetector
from opslens.recipes.segments.assign import SegmentAssigner
from opslens.recipes.segments.regress import SegmentRegressor

ESTIMATORS = [
    ECOD(),
    AutoencoderDetector(max_iter=50, random_state=0),
    RareDeviceDetector(random_state=0),
    DistributionClusterer(k_max=4),
    # small segments, so that HDBSCAN finds some in scikit-learn's small random test sets
    SegmentAssigner(min_cluster_size=2, min_samples=1),
    SegmentRegressor(n_estimators=10, min_segment_rows=5),
]

EXPECTED_FAILURES = {
    "SegmentAssigner": {
        "check_fit2d_1sample": (
            "one row cannot form a segment: refused with opslens's DataError naming "
            "params.hdbscan.min_cluster_size, not a ValueError"
        ),
    },
}


def _expected(estimator: Any) -> dict[str, str]:
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected)  # type: ignore[untyped-decorator]
def test_sklearn_checks(estimator: Any, check: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)
