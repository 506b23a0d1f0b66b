"""Chaos: SIGKILL a real tracked run at 10 seeded moments; `latest`, the alias and statuses hold.

The moments are named checkpoints of the runner (``OPSLENS_FAULT_AT``: the
process SIGKILLs itself exactly there), chosen with a seeded generator, so
every kill lands where it is meant to, with no sleeps.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest

from opslens.tracking.runs import list_runs, open_run
from tests.e2e.hardening.conftest import latest, mlflow_statuses, opslens, stage_names
from tests.fakes.cli import run_cli

pytestmark = pytest.mark.slow

MOMENTS = [
    *(f"stage:{name}" for name in stage_names()),
    "facts",
    "tracker:started",
    "tracker:metrics",
    "tracker:model",
    "tracker:artifacts",
    "tracker:ended",
    "commit:renamed",
    "committed",
]


def _alias_run(folder: Path) -> str:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    return str(client.get_model_version_by_alias("trip-eta", "current").tags["opslens_run_id"])


def _newest(folder: Path) -> str:
    return list_runs(folder / "runs", "trip-eta")[0].run_id


def _assert_whole(folder: Path) -> None:
    runs = folder / "runs" / "trip-eta"
    view = open_run(folder / "runs", "trip-eta")  # latest names a complete run
    assert view.manifest["status"] == "complete"
    visible = sorted(p.name for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert visible == sorted(r.run_id for r in list_runs(folder / "runs", "trip-eta"))
    assert _alias_run(folder) in visible  # the alias names a committed run


def test_sigkill_at_ten_seeded_moments(
    tracked: Path, monkeypatch: pytest.MonkeyPatch, isolated_mlflow: None
) -> None:
    assert run_cli(["run"], tracked, monkeypatch).code == 0
    moments = random.Random(7).sample(MOMENTS, 10)
    for moment in moments:
        before = _newest(tracked)
        proc = opslens(tracked, "-q", "run", env={"OPSLENS_FAULT_AT": moment})
        err = proc.communicate(timeout=300)[1]
        assert proc.returncode == -signal.SIGKILL, (moment, err)
        _assert_whole(tracked)
        if moment == "committed":  # killed after the commit: the new run is whole and latest
            assert latest(tracked) == _newest(tracked) != before
        elif moment == "commit:renamed":  # a complete run newer than latest, repaired later
            assert latest(tracked) == before != _newest(tracked)
        else:
            assert latest(tracked) == before == _newest(tracked), moment

    # `opslens runs` repairs a pointer left behind by a kill between rename and latest
    assert run_cli(["runs"], tracked, monkeypatch).code == 0
    assert latest(tracked) == _newest(tracked)

    # the next run ends every run the kills left RUNNING, and moves latest and the alias
    result = run_cli(["run"], tracked, monkeypatch)
    assert result.code == 0, result.err
    statuses = mlflow_statuses(tracked)
    assert "RUNNING" not in statuses.values(), statuses
    assert statuses[latest(tracked)] == "FINISHED"
    assert _alias_run(tracked) == latest(tracked)
    killed_in_tracker = [m for m in moments if m.startswith("tracker:") and m != "tracker:ended"]
    assert list(statuses.values()).count("KILLED") == len(killed_in_tracker)
    assert not list((tracked / "runs" / "trip-eta").glob(".tmp-*"))


def _champion(folder: Path) -> str:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    return str(client.get_model_version_by_alias("trip-eta", "champion").version)


@pytest.mark.parametrize("repair", ["runs", "run"])
def test_a_kill_between_the_commit_and_the_alias_move_is_repaired(
    tracked: Path, monkeypatch: pytest.MonkeyPatch, isolated_mlflow: None, repair: str
) -> None:
    """Issue 28: `champion`/`current` one version behind `latest` after a SIGKILL between
    the rename and the alias move; `opslens runs` and the next run move them."""
    assert run_cli(["run", "--force"], tracked, monkeypatch).code == 0
    assert _champion(tracked) == "1"
    for moment in ("commit:renamed", "committed"):
        proc = opslens(tracked, "-q", "run", "--force", env={"OPSLENS_FAULT_AT": moment})
        assert proc.communicate(timeout=300) and proc.returncode == -signal.SIGKILL
    assert _champion(tracked) == "1"  # left behind: versions 2 and 3 are registered
    result = run_cli(["runs"] if repair == "runs" else ["run", "--force"], tracked, monkeypatch)
    assert result.code == 0, result.err
    assert "serving alias was left behind by an interrupted run; moved it to version 3" in " ".join(
        result.err.split()
    )
    if repair == "runs":
        assert _champion(tracked) == "3" and _alias_run(tracked) == latest(tracked)
    else:  # repaired to 3 first, then this run's version 4 promoted
        assert _champion(tracked) == "4" and _alias_run(tracked) == latest(tracked)
    pending = list((tracked / "runs" / "trip-eta").glob("*/alias.pending.json"))
    assert pending == []
