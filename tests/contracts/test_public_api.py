"""The public API is curated: ``opslens.__all__`` is pinned, every name resolves, import is light,
and a type checker sees each name's real type (not the lazy ``__getattr__``'s ``Any``)."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import opslens
from opslens.recipes import get_recipe, recipe_names

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


def test_all_is_pinned_and_resolves() -> None:
    assert sorted(opslens.__all__) == PINNED
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


def test_every_recipes_predictor_is_exported() -> None:
    exported = {getattr(opslens, n) for n in opslens.__all__ if n != "__version__"}
    for name in recipe_names():
        predictor = get_recipe(name).predictor
        assert predictor is not None and predictor in exported, name


def _type_checking_imports() -> dict[str, str]:
    """name -> module of every import under ``if TYPE_CHECKING:`` in opslens/__init__.py."""
    tree = ast.parse(Path(inspect.getfile(opslens)).read_text())
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    )
    return {
        alias.asname or alias.name: str(node.module)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_a_type_checker_sees_every_name_from_where_it_lives() -> None:
    seen = _type_checking_imports()
    assert sorted([*seen, "__version__"]) == PINNED
    for name, module in seen.items():
        assert opslens._API[name] == module, name
        assert getattr(opslens, name) is getattr(sys.modules[module], name), name


def test_run_returns_a_typed_result() -> None:
    from opslens.api import run, run_all

    assert inspect.signature(run).return_annotation == "RunResult"
    assert inspect.signature(run_all).return_annotation == "list[RunResult]"
