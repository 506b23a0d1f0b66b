"""The public API is curated: ``opslens.__all__`` is pinned, every name resolves, import is light."""

from __future__ import annotations

import subprocess
import sys

import opslens

PINNED = [
    "AutoencoderDetector",
    "DistributionClusterer",
    "ECOD",
    "FleetPredictor",
    "IQRDetector",
    "LocalEngine",
    "OpslensError",
    "PatternClassifier",
    "PatternPredictor",
    "Predictor",
    "RareDeviceDetector",
    "RobustZScoreDetector",
    "RunResult",
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


def test_all_is_pinned_and_resolves() -> None:
    assert opslens.__all__ == PINNED
    for name in opslens.__all__:
        assert getattr(opslens, name) is not None, name


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        opslens.nope  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as e:
        assert "nope" in str(e)
    else:
        raise AssertionError("opslens.nope resolved")


def test_import_is_light() -> None:
    code = "import sys, opslens; print(sorted(m for m in ('mlflow','xgboost','sklearn','polars','pyspark') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
