"""``opslens --help`` and ``opslens runs`` import no recipe and no ML library.

Measured in a fresh interpreter (``sys.modules`` after the command), so the assertion
holds for a user's first call, not for a warm test process. ``runs`` reads each run's
verdict against the baselines from its facts with the contract's model; it needs no
recipe, so it imports none.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from opslens.core.baselines import BaselineScore, summarise

HEAVY = (
    "polars",
    "numpy",
    "sklearn",
    "lightgbm",
    "xgboost",
    "mlflow",
    "joblib",
    "pyarrow",
    "sqlalchemy",
)
PROBE = """
import json, sys
from opslens.cli.app import main
try:
    main(sys.argv[2:])
except SystemExit as e:
    code = e.code
else:
    code = 0
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[1])))
recipes = sorted(m for m in sys.modules if m.startswith("opslens.recipes."))
print(json.dumps({"code": code, "heavy": heavy, "recipes": recipes}), file=sys.stderr)
"""


def _probe(*args: str, cwd: Path | None = None) -> tuple[dict[str, object], str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report, done.stdout


def test_help_imports_no_recipe_or_ml_library() -> None:
    report, out = _probe("--help")
    assert report["code"] == 0
    assert "runs" in out and "run" in out  # the help is the real one
    assert report["recipes"] == []
    assert report["heavy"] == []


def test_importing_the_cli_loads_no_data_or_ml_library() -> None:
    """`import opslens.cli.app` (what every command pays first) in a fresh interpreter."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; import opslens.cli.app; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    loaded = set(json.loads(done.stdout))
    assert loaded & {"polars", "numpy", "sklearn", "mlflow", "pandas", "sqlalchemy"} == set()
    assert "opslens" in loaded


def test_runs_on_a_tracked_project_does_not_start_mlflow(tmp_path: Path) -> None:
    """With MLflow tracking on (the demo projects' setting), listing runs reads the run
    folders; MLflow (seconds of CPU to import) is made only to move an alias a killed run
    left behind (tests/e2e/hardening/test_chaos.py)."""
    _project(tmp_path, tracking='{uri: "sqlite:///mlflow.db"}')
    run_id = _write_run(tmp_path, LOSS.model_dump(mode="json"))
    report, out = _probe("runs", "-p", "project.yaml", cwd=tmp_path)
    assert report["code"] == 0 and run_id in " ".join(out.split())
    assert report["heavy"] == [] and report["recipes"] == []
    assert not (tmp_path / "mlflow.db").exists()


def test_command_modules_keep_their_annotations_evaluated() -> None:
    """Typer reads every command's signature each time the CLI starts: with postponed
    annotations (``from __future__ import annotations``) each one is a string it evaluates
    then, about 6% of a cold ``opslens runs`` and 16% of ``opslens --help`` (instructions
    counted with callgrind)."""
    import opslens.cli as cli

    folder = Path(cli.__file__).parent
    postponed = sorted(
        p.name for p in folder.glob("*.py") if "from __future__ import annotations" in p.read_text()
    )
    assert postponed == ["console.py"]  # no commands there


def _project(folder: Path, tracking: str = "{enabled: false}") -> Path:
    project = folder / "project.yaml"
    project.write_text(
        f"tracking: {tracking}\nanalyses:\n"
        "  - {name: eta, recipe: distribution, source: {kind: file, path: t.csv},\n"
        "     columns: {target: minutes, categorical: [route]}}\n"
    )
    return project


def _write_run(folder: Path, baselines: dict[str, object]) -> str:
    from opslens.tracking.runs import RunWriter

    writer = RunWriter(folder / "runs", "eta", "20260101T000000Z-aaaa")
    writer.write_json(
        "manifest.json",
        {"status": "complete", "recipe": "distribution", "metrics": {"log_score": -2.5}},
    )
    writer.write_json(
        "facts.json",
        {
            "analysis": {"name": "eta", "recipe": "distribution", "run_id": writer.run_id},
            "baselines": baselines,
        },
    )
    writer.commit()
    return writer.run_id


LOSS = summarise(
    [
        BaselineScore(
            baseline="global",
            label="one global LightGBM",
            metric="rmse_duration_min",
            metric_label="RMSE of duration_min",
            model=13.5,
            value=12.2,
            higher_is_better=False,
            n=400,
        )
    ]
)


def test_runs_says_which_won_and_imports_no_recipe(tmp_path: Path) -> None:
    _project(tmp_path)
    run_id = _write_run(tmp_path, LOSS.model_dump(mode="json"))
    report, out = _probe("runs", "-p", "project.yaml", cwd=tmp_path)
    assert report["code"] == 0
    flat = " ".join(out.split())
    assert run_id in flat
    # the table wraps long cells: compare the words of the verdict in order
    words = "loses to one global LightGBM on RMSE of duration_min (12.2 against 13.5)".split()
    cells = [w.strip("│") for w in flat.split() if w.strip("│")]
    start = cells.index("loses")
    assert cells[start : start + len(words)] == words
    assert report["recipes"] == []
    # polars (with numpy) and joblib come only with opslens.tracking.runs, which imports them
    # at module level for its table and object readers; no ML library, no recipe
    assert [m for m in report["heavy"] if m not in ("polars", "numpy", "joblib")] == []


def test_runs_fails_in_one_line_on_facts_that_do_not_match(tmp_path: Path) -> None:
    _project(tmp_path)
    _write_run(tmp_path, {**LOSS.model_dump(mode="json"), "model_wins": "perhaps"})
    done = subprocess.run(
        [sys.executable, "-m", "opslens", "runs", "-p", "project.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "facts.json does not match the facts contract at 'baselines.model_wins'" in lines[0]
    assert "fix: rerun the analysis" in lines[0]


@pytest.mark.parametrize("args", [["--help"], ["runs", "--help"]])
def test_python_m_opslens_is_the_command(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "opslens", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0
    assert "Usage: opslens" in " ".join(done.stdout.split())
