"""scikit-learn's own estimator checks over every opslens estimator that takes a plain X.

``parametrize_with_checks`` runs scikit-learn's whole suite (clone, fit returning self,
input validation, NaN and inf rejected, n_features_in_, pickling, invariance to batches
and row order, ...) beside our own contract in ``test_estimators.py``. No check is
marked as expected to fail. The array-API check runs with dispatch on NumPy only (these
estimators declare no array-API support), so it needs ``SCIPY_ARRAY_API=1``, set here.

The frame-input estimators (``PatternClassifier``, ``SegmentAssigner``, ...) take
polars frames with named columns and are covered by ``test_estimators.py`` only.
"""

from __future__ import annotations

from typing import Any

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from opslens.detect.autoencoder import AutoencoderDetector
from opslens.detect.ecod import ECOD
from opslens.detect.population import RareDeviceDetector

ESTIMATORS = [
    ECOD(),
    AutoencoderDetector(max_iter=50, random_state=0),
    RareDeviceDetector(random_state=0),
]


@parametrize_with_checks(ESTIMATORS)  # type: ignore[untyped-decorator]
def test_sklearn_checks(estimator: Any, check: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)
