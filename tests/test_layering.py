"""The layering is a tested contract: analysis code never imports the I/O and service layers.

cli | online | ui  →  recipes | tracking | report | data  →  features | detect | cluster | models | explain | plots  →  config | errors
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "opslens"
ANALYSIS = ("features", "detect", "cluster", "models", "explain", "plots")
MIDDLE = ("recipes", "tracking", "report", "data")
TOP = ("cli", "online", "ui", "demo")
FORBIDDEN_THIRD_PARTY = (
    "mlflow",
    "fastapi",
    "streamlit",
    "typer",
    "sqlalchemy",
    "elasticsearch",
    "rich",
)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _modules(layer: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for name in layer:
        target = SRC / name
        out += sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
    return [p for p in out if p.exists()]


@pytest.mark.parametrize("path", _modules(ANALYSIS), ids=lambda p: str(p.relative_to(SRC)))
def test_analysis_layer_imports_only_downwards(path: Path) -> None:
    for name in _imports(path):
        parts = name.split(".")
        assert parts[0] not in FORBIDDEN_THIRD_PARTY, f"{path.name} imports {name}"
        if parts[0] == "opslens" and len(parts) > 1:
            assert parts[1] not in MIDDLE + TOP, f"{path.name} imports {name}"


@pytest.mark.parametrize("path", _modules(MIDDLE), ids=lambda p: str(p.relative_to(SRC)))
def test_middle_layer_does_not_import_the_top(path: Path) -> None:
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "opslens" and len(parts) > 1:
            assert parts[1] not in TOP, f"{path.name} imports {name}"


def test_examples_are_the_bundled_demo_projects() -> None:
    root = SRC.parents[1]
    for recipe in ("distribution", "fleet"):
        assert (root / "examples" / recipe / "project.yaml").read_text() == (
            SRC / "demo_projects" / f"{recipe}.yaml"
        ).read_text()
    assert (root / "examples" / "fleet" / "failures.csv").read_text() == (
        SRC / "demo_projects" / "fleet_failures.csv"
    ).read_text()


def test_bundled_failure_list_matches_the_generator() -> None:
    import polars as pl

    from opslens.data.synthetic.fleet import make_fleet

    truth = make_fleet(seed=0, n_devices=300, n_points=1000).truth.filter(pl.col("failed"))
    bundled = pl.read_csv(SRC / "demo_projects" / "fleet_failures.csv", try_parse_dates=True)
    assert bundled["device_id"].to_list() == truth["device_id"].to_list()
    assert bundled["failure_time"].to_list() == truth["failure_time"].to_list()
