"""opslens: patterns, anomalies, predictions, limits and reports from time-based operational data.

The curated API (``opslens.__all__``) loads lazily, so ``import opslens`` is quick::

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
from typing import Any

__version__ = "0.2.0"

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
    # the recipes' models
    "PatternPredictor": "opslens.recipes.distribution",
    "FleetPredictor": "opslens.recipes.fleet",
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

__all__ = sorted([*_API, "__version__"])


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'opslens' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
