"""The residual recipe's life cycle through the CLI: batches of machine samples are checked by
the champion and monitored per axis; a level shift planted on axis2 at batch 4 fires the
recalibration at batch 4 exactly and the recalibrated version wins; a transient disturbance
fires a recalibration that loses, and the champion stays."""

from __future__ import annotations

from pathlib import Path

import mlflow
import polars as pl
import pytest

from opslens.synthetic.axes import make_axes
from tests.e2e.residual.fault import file_project
from tests.fakes.cli import run_cli

pytestmark = pytest.mark.slow
NAME = "machine-axes"
TRAIN, SIZE, N_BATCHES, DRIFT_AT, SHIFT = 3000, 200, 7, 4, 3.0  # shift: 6 noise deviations

PROJECT = file_project(NAME, '{train_end: "80%", model: {type: linear}}')


def _project(folder: Path, transient: bool = False) -> list[str]:
    data = make_axes(seed=3, n_samples=TRAIN + SIZE * N_BATCHES, fault_size=0.0, idle_share=0.0)
    frame = data.frame.drop("axis3")
    frame.head(TRAIN).write_parquet(folder / "train.parquet")
    (folder / "project.yaml").write_text(PROJECT)
    names = []
    for i in range(N_BATCHES):
        batch = frame.slice(TRAIN + i * SIZE, SIZE)
        if (not transient and i >= DRIFT_AT) or (transient and i == DRIFT_AT):
            cut = SIZE * 2 // 3 if transient else SIZE  # transient: the last third is normal again
            shift = pl.int_range(pl.len()) < cut
            batch = batch.with_columns(pl.col("axis2") + pl.when(shift).then(SHIFT).otherwise(0.0))
        batch.write_parquet(folder / f"b{i}.parquet")
        names.append(f"b{i}.parquet")
    return names


def _champion(folder: Path) -> str:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    return str(client.get_model_version_by_alias(NAME, "champion").version)


def test_a_level_shift_at_batch_4_recalibrates_there_and_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = _project(tmp_path)
    assert run_cli(["run", "-p", "project.yaml"], tmp_path, monkeypatch).code == 0
    fired = []
    for i, name in enumerate(names):
        r = run_cli(["batch", NAME, "--input", name], tmp_path, monkeypatch)
        assert r.code == 0, r.err
        assert f"batch {i + 1} scored" in r.out
        if "retrained (automatic: axis2 residual KS" in r.out:
            fired.append(i)
    assert fired[0] == DRIFT_AT, fired
    lines = run_cli(["models", "history", NAME], tmp_path, monkeypatch).out.splitlines()
    assert lines[0].startswith("champion: version 1 (was -)")
    assert lines[1].startswith("challenger: version 2") and "automatic: axis2" in lines[1]
    assert (
        lines[2].startswith("champion: version 2 (was 1)") and "promoted over version 1" in lines[2]
    )
    health = run_cli(["monitor", NAME], tmp_path, monkeypatch)
    assert health.code == 0 and f"{N_BATCHES} batches" in health.out
    predictions = pl.read_parquet(tmp_path / "b0.predictions.parquet")
    assert predictions.height == SIZE and "axis2_level" in predictions.columns
    # the old version loses on the shifted samples: promoting it back is refused, unless forced
    champion = _champion(tmp_path)
    r = run_cli(["promote", NAME, "--version", "1"], tmp_path, monkeypatch)
    assert r.code == 2 and r.err.startswith(
        f"error: version 1 does not beat champion version {champion} on held-out data"
    ), r.err
    assert _champion(tmp_path) == champion
    r = run_cli(["promote", NAME, "--version", "1", "--force"], tmp_path, monkeypatch)
    assert r.code == 0 and _champion(tmp_path) == "1", r.err
    last = run_cli(["models", "history", NAME], tmp_path, monkeypatch).out.splitlines()[-1]
    assert last.startswith(f"champion: version 1 (was {champion})") and last.endswith("(forced)")


def test_a_recalibration_on_a_transient_loses_and_the_champion_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = _project(tmp_path, transient=True)
    assert run_cli(["run", "-p", "project.yaml"], tmp_path, monkeypatch).code == 0
    for name in names[: DRIFT_AT + 1]:
        r = run_cli(["batch", NAME, "--input", name], tmp_path, monkeypatch)
        assert r.code == 0, r.err
    assert "retrained (automatic: axis2 residual KS" in r.out and "champion kept" in r.out, r.out
    assert _champion(tmp_path) == "1"
    history = run_cli(["models", "history", NAME], tmp_path, monkeypatch).out.splitlines()
    assert [h.split(" (was")[0] for h in history] == [
        "champion: version 1",
        "challenger: version 2",
    ]


def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(tmp_path)
    assert run_cli(["run", "-p", "project.yaml"], tmp_path, monkeypatch).code == 0
    r = run_cli(["promote", NAME, "--version", "7"], tmp_path, monkeypatch)
    assert (
        r.code == 2
        and r.err == "error: 'machine-axes' has no registered version 7; fix: choose one of: 1\n"
    )
    r = run_cli(["retrain", NAME, "--reason", "why not"], tmp_path, monkeypatch)
    assert (
        r.code == 2
        and r.err.startswith(
            "error: nothing new to retrain 'machine-axes' on: no labelled batch since the last training"
        )
        and r.err.count("\n") == 1
    )
    assert _champion(tmp_path) == "1"
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert [str(v.version) for v in client.search_model_versions(f"name = '{NAME}'")] == ["1"]
