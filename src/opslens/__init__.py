"""opslens: patterns, anomalies, predictions, limits and reports from time-based operational data.

The curated API (``opslens.__all__``) loads lazily, so ``import opslens`` is quick; a type
checker sees every name with its real type (``opslens.run`` returns a ``RunResult``)::

    import opslens
    result = opslens.run("project.yaml", analysis="trip-eta")   # or opslens.run(frame, recipe=...)
    model = opslens.load_predictor("project.yaml", "trip-eta")
    model.predict_one({"route": "R01", "hour_band": "morning", "vehicle_type": "bus"})
    opslens.write_report("project.yaml", "trip-eta")

Example:
    >>> import opslens
    >>> opslens.recipe_names()[:2]
    ['distribution', 'fleet']
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

if TYPE_CHECKING:  # what a type checker sees: the real names, not __getattr__'s Any
    from opslens.api import (
        load_predictor,
        load_project,
        run,
        run_all,
        score,
        write_index,
        write_report,
    )
    from opslens.cluster.groups import find_groups
    from opslens.cluster.profiles import DistributionClusterer
    from opslens.core.engine import LocalEngine
    from opslens.core.predictor import Predictor
    from opslens.detect.autoencoder import AutoencoderDetector
    from opslens.detect.ecod import ECOD
    from opslens.detect.point import (
        IQRDetector,
        RobustZScoreDetector,
        ZScoreDetector,
        point_anomalies,
    )
    from opslens.detect.population import (
        RareDeviceDetector,
        rank_rare_devices,
    )
    from opslens.engines.spark import SparkEngine
    from opslens.errors import OpslensError
    from opslens.explain.contrasts import group_contrasts
    from opslens.features.decompose import decompose_series
    from opslens.features.fingerprints import fleet_fingerprints
    from opslens.features.profile import profile_series
    from opslens.features.table import (
        describe_table,
        filter_table,
    )
    from opslens.models.classifier import PatternClassifier
    from opslens.recipes import get_recipe, recipe_names
    from opslens.recipes.distribution import PatternPredictor
    from opslens.recipes.fleet import FleetPredictor
    from opslens.recipes.propensity import PropensityPredictor
    from opslens.recipes.residual import ResidualPredictor
    from opslens.recipes.segments import SegmentPredictor
    from opslens.runner import RunResult

_API = {
    # running, loading, reporting
    "run": "opslens.api",
    "run_all": "opslens.api",
    "load_project": "opslens.api",
    "load_predictor": "opslens.api",
    "score": "opslens.api",
    "write_report": "opslens.api",
    "write_index": "opslens.api",
    "RunResult": "opslens.runner",
    "recipe_names": "opslens.recipes",
    "get_recipe": "opslens.recipes",
    "Predictor": "opslens.core.predictor",
    "OpslensError": "opslens.errors",
    # engines: where the heavy per-entity stages run
    "LocalEngine": "opslens.core.engine",
    "SparkEngine": "opslens.engines.spark",
    # the five recipes' models
    "PatternPredictor": "opslens.recipes.distribution",
    "FleetPredictor": "opslens.recipes.fleet",
    "SegmentPredictor": "opslens.recipes.segments",
    "ResidualPredictor": "opslens.recipes.residual",
    "PropensityPredictor": "opslens.recipes.propensity",
    # estimators (scikit-learn contract)
    "PatternClassifier": "opslens.models.classifier",
    "DistributionClusterer": "opslens.cluster.profiles",
    "RareDeviceDetector": "opslens.detect.population",
    "ECOD": "opslens.detect.ecod",
    "AutoencoderDetector": "opslens.detect.autoencoder",
    "ZScoreDetector": "opslens.detect.point",
    "RobustZScoreDetector": "opslens.detect.point",
    "IQRDetector": "opslens.detect.point",
    # the fleet's library functions
    "fleet_fingerprints": "opslens.features.fingerprints",
    "profile_series": "opslens.features.profile",
    "decompose_series": "opslens.features.decompose",
    "point_anomalies": "opslens.detect.point",
    "rank_rare_devices": "opslens.detect.population",
    "find_groups": "opslens.cluster.groups",
    "group_contrasts": "opslens.explain.contrasts",
    "describe_table": "opslens.features.table",
    "filter_table": "opslens.features.table",
}

#: pinned in tests/contracts/test_public_api.py; every name but __version__ is in _API
__all__ = [
    "ECOD",
    "AutoencoderDetector",
    "DistributionClusterer",
    "FleetPredictor",
    "IQRDetector",
    "LocalEngine",
    "OpslensError",
    "PatternClassifier",
    "PatternPredictor",
    "Predictor",
    "PropensityPredictor",
    "RareDeviceDetector",
    "ResidualPredictor",
    "RobustZScoreDetector",
    "RunResult",
    "SegmentPredictor",
    "SparkEngine",
    "ZScoreDetector",
    "__version__",
    "decompose_series",
    "describe_table",
    "filter_table",
    "find_groups",
    "fleet_fingerprints",
    "get_recipe",
    "group_contrasts",
    "load_predictor",
    "load_project",
    "point_anomalies",
    "profile_series",
    "rank_rare_devices",
    "recipe_names",
    "run",
    "run_all",
    "score",
    "write_index",
    "write_report",
]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'opslens' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
