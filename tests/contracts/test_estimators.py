"""One contract suite over every learned thing in opslens (the scikit-learn estimator contract).

clone works and __init__ only stores parameters; use before fit raises NotFittedError;
fit returns self; same seed gives the same output; the input is not mutated;
a pickle round trip predicts the same.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from opslens.cluster.profiles import DistributionClusterer
from opslens.detect.autoencoder import AutoencoderDetector
from opslens.detect.ecod import ECOD
from opslens.detect.point import IQRDetector, RobustZScoreDetector, ZScoreDetector
from opslens.detect.population import RareDeviceDetector
from opslens.models.classifier import PatternClassifier
from opslens.recipes.residual.conditional import AxisConditional
from opslens.recipes.residual.modes import ModeFinder
from opslens.recipes.residual.trend import AxisTrend
from opslens.recipes.segments.assign import SegmentAssigner
from opslens.recipes.segments.preprocess import Preprocessor
from opslens.recipes.segments.regress import SegmentRegressor
from opslens.synthetic.patients import FEATURES, make_patients

rng = np.random.default_rng(0)
X_FLEET = rng.normal(size=(80, 6))
X_FLEET[:4] += 6.0
X_HIST = np.abs(rng.normal(size=(40, 8)))
X_HIST /= X_HIST.sum(axis=1, keepdims=True)
SERIES = rng.normal(size=300)
SERIES[[10, 200]] = [9.0, -8.0]
CAT = pl.DataFrame(
    {"route": [f"R{i % 5}" for i in range(200)], "band": [f"b{i % 3}" for i in range(200)]}
)
Y_CAT = np.array([(i % 5 + i % 3) % 3 for i in range(200)])
PATIENTS = make_patients(n_rows=600, seed=3).frame
Z_PATIENTS = Preprocessor(list(FEATURES)).fit(PATIENTS).transform(PATIENTS)
T_AXIS = np.arange(200.0)
Y_AXIS = 0.5 * T_AXIS + np.where(T_AXIS > 120, 0.3 * (T_AXIS - 120), 0.0) + rng.normal(size=200)
PUMP = pl.DataFrame({"speed": T_AXIS, "mode": [("low", "high")[i % 2] for i in range(200)]})


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], Any]
    X: Any
    y: Any
    method: str


CASES = [
    Case(
        "DistributionClusterer",
        lambda: DistributionClusterer(n_clusters=3, random_state=1),
        X_HIST,
        None,
        "predict",
    ),
    Case(
        "PatternClassifier",
        lambda: PatternClassifier(["route", "band"], n_estimators=15, random_state=1),
        CAT,
        Y_CAT,
        "predict_proba",
    ),
    Case(
        "RareDeviceDetector",
        lambda: RareDeviceDetector(random_state=1),
        X_FLEET,
        None,
        "score_samples",
    ),
    Case("ECOD", ECOD, X_FLEET, None, "score_samples"),
    Case(
        "AutoencoderDetector",
        lambda: AutoencoderDetector(random_state=1, max_iter=50),
        X_FLEET,
        None,
        "score_samples",
    ),
    Case("ZScoreDetector", ZScoreDetector, SERIES, None, "score_samples"),
    Case("RobustZScoreDetector", RobustZScoreDetector, SERIES, None, "score_samples"),
    Case("IQRDetector", IQRDetector, SERIES, None, "score_samples"),
    Case(
        "SegmentAssigner", lambda: SegmentAssigner(min_cluster_size=20), Z_PATIENTS, None, "predict"
    ),
    Case(
        "SegmentRegressor",
        lambda: SegmentRegressor(n_estimators=20),
        Z_PATIENTS,
        Z_PATIENTS[:, 0] * 2,
        "predict",
    ),
    Case(
        "Preprocessor", lambda: Preprocessor(list(FEATURES), ["ward"]), PATIENTS, None, "transform"
    ),
    Case("AxisTrend", lambda: AxisTrend("piecewise"), T_AXIS, Y_AXIS, "predict"),
    Case(
        "AxisConditional",
        lambda: AxisConditional(("speed",), "mode", axis="flow"),
        PUMP,
        Y_AXIS,
        "predict_columns",
    ),
    Case("ModeFinder", lambda: ModeFinder(("speed",), 3), PUMP, None, "predict_columns"),
]


def _fit(est: Any, case: Case) -> Any:
    return est.fit(case.X, case.y) if case.y is not None else est.fit(case.X)


def _copy(x: Any) -> Any:
    return x.clone() if isinstance(x, pl.DataFrame) else np.array(x, copy=True)


def _equal(a: Any, b: Any) -> bool:
    return (
        a.equals(b) if isinstance(a, pl.DataFrame) else bool(np.array_equal(a, b, equal_nan=True))
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_estimator_contract(case: Case) -> None:
    est = case.make()
    params = est.get_params()
    twin = clone(est)
    assert twin.get_params() == params
    assert not [k for k in vars(est) if k.endswith("_") and not k.startswith("_")], (
        "learned state set in __init__"
    )
    with pytest.raises(NotFittedError):
        getattr(est, case.method)(case.X)

    before = _copy(case.X)
    fitted = _fit(est, case)
    assert fitted is est
    assert _equal(case.X, before), "fit mutated its input"
    out = getattr(est, case.method)(case.X)
    assert _equal(case.X, before), f"{case.method} mutated its input"

    again = getattr(_fit(clone(est), case), case.method)(case.X)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(again))

    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(
        np.asarray(getattr(restored, case.method)(case.X)), np.asarray(out)
    )
    assert est.get_params() == params, "fit changed the parameters"


def _estimator_classes() -> set[str]:
    """Every scikit-learn-style estimator class defined in opslens (auto-discovered)."""
    import importlib
    import inspect
    import pkgutil

    from sklearn.base import BaseEstimator

    import opslens

    found = set()
    for info in pkgutil.walk_packages(opslens.__path__, "opslens."):
        if ".cli" in info.name or ".ui." in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseEstimator)
                and obj.__module__ == module.__name__
                and not inspect.isabstract(obj)
                and not name.startswith("_")
            ):
                found.add(name)
    return found


def test_every_estimator_has_a_case() -> None:
    assert _estimator_classes() == {c.name for c in CASES}
