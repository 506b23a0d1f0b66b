"""The examples are the bundled demos, and the bundled failure list is the generator's truth.

The layers themselves are held by import-linter (``lint-imports`` in ``make test``,
contracts in pyproject.toml); ``test_import_contracts_hold`` runs it here too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from opslens.recipes import get_recipe, recipe_names

ROOT = Path(__file__).parents[2]
SRC = ROOT / "src" / "opslens"


@pytest.mark.parametrize("recipe", recipe_names())
def test_examples_are_the_bundled_demo_projects(recipe: str) -> None:
    demo = get_recipe(recipe).demo
    assert demo is not None
    folder = SRC / "recipes" / recipe / "demo"
    for name in demo.files:
        assert (ROOT / "examples" / recipe / name).read_text() == (folder / name).read_text()


def test_bundled_failure_list_matches_the_generator() -> None:
    import polars as pl

    from opslens.synthetic.turbines import make_turbines

    truth = make_turbines(seed=0, n_turbines=300).truth.filter(pl.col("failed"))
    bundled = pl.read_csv(SRC / "recipes" / "fleet" / "demo" / "failures.csv", try_parse_dates=True)
    assert bundled["turbine_id"].to_list() == truth["turbine_id"].to_list()
    assert bundled["failure_time"].to_list() == truth["failure_time"].to_list()


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe is not None, "import-linter is part of the dev extras"
    done = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout
