"""Recalibration of the limits through the life cycle, planted: a sensor recalibrated to a new
normal (+10 noise deviations on axis1) floods the old limits with alarms; the stream's drift
trigger recalibrates on its recent samples, the recalibrated version (registered with its
reason) wins on false alarms while still catching planted faults, and a sudden fault after it
is caught. A stream whose recent samples hold a fault that worsens (not a new normal) is
recalibrated too, but every recalibration is refused and the champion stays (a fault that
stays level for a whole window cannot be told from a new normal); a schedule (``every``) recalibrates
batches of normal data.

Every test starts from the same trained project (the ``trained`` fixture: 3,000 normal
samples, a sample a minute, two axes; ``Press`` streams, batches and reads the registry)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import polars as pl
import pytest

from tests.e2e.residual.fault import file_project
from tests.fakes.cli import Result, run_cli

pytestmark = pytest.mark.slow
NAME = "press"
DT = 60  # one sample a minute
SIGMA, SHIFT, FAULT = 0.1, 1.0, 3.0
TRAIN = 3000
PROJECT = file_project(
    NAME,
    """
      model: {type: median}
      thresholds: {alert_seconds_default: 300, error_seconds_default: 180}
      lifecycle: {stream_window: 200, alert_rate: 0.2, window_batches: 1}
      recalibrate: {window: 300, every: EVERY}""",
)


def _values(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return 10.0 + SIGMA * rng.standard_normal(n), 5.0 + SIGMA * rng.standard_normal(n)


def _project(folder: Path, every: str = "null") -> int:
    """The training data and project file in ``folder``; the time after the last sample."""
    a1, a2 = _values(np.random.default_rng(7), TRAIN)
    t0 = 1_700_000_000
    ts = pl.from_epoch(pl.Series(t0 + DT * np.arange(TRAIN)), time_unit="s")
    pl.DataFrame({"ts": ts, "axis1": a1, "axis2": a2}).write_parquet(folder / "train.parquet")
    (folder / "project.yaml").write_text(PROJECT.replace("EVERY", every))
    return t0 + DT * TRAIN


@dataclass
class Press:
    """A trained project: its folder, the CLI, and the time after its training samples."""

    folder: Path
    monkeypatch: pytest.MonkeyPatch
    start: int

    def cli(self, *args: str) -> Result:
        return run_cli(list(args), self.folder, self.monkeypatch)

    def stream(self, a1: np.ndarray, a2: np.ndarray) -> list[dict[str, Any]]:
        """The samples through `opslens stream --from registry`: the output lines."""
        with (self.folder / "in.jsonl").open("w") as f:
            for i, (x, y) in enumerate(zip(a1, a2, strict=True)):
                f.write(json.dumps({"ts": self.start + DT * i, "axis1": x, "axis2": y}) + "\n")
        r = self.cli(
            *f"stream {NAME} --input in.jsonl --output out.jsonl --from registry --no-plots".split()
        )
        assert r.code == 0, r.err
        return [json.loads(x) for x in (self.folder / "out.jsonl").read_text().splitlines()]

    def versions(self) -> tuple[str, list[str]]:
        """The champion's version and every registered version."""
        client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{self.folder / 'mlflow.db'}")
        champion = str(client.get_model_version_by_alias(NAME, "champion").version)
        found = client.search_model_versions(f"name = '{NAME}'")
        return champion, sorted((str(v.version) for v in found), key=int)


@pytest.fixture
def trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Press]:
    """``trained(every="null")``: the project trained (`opslens run`), with
    ``params.recalibrate.every`` as given."""

    def train(every: str = "null") -> Press:
        start = _project(tmp_path, every)
        r = run_cli(["run", "-p", "project.yaml"], tmp_path, monkeypatch)
        assert r.code == 0, r.err
        return Press(tmp_path, monkeypatch, start)

    return train


def test_a_new_normal_is_recalibrated_on_drift_and_a_later_fault_is_caught(
    trained: Callable[..., Press],
) -> None:
    press = trained()
    rng = np.random.default_rng(11)
    a1, a2 = _values(rng, 1500)
    a1 += SHIFT  # the sensor was recalibrated: a new normal from the first sample
    a1[1300:1330] += FAULT  # a sudden fault, well after the recalibration
    out = press.stream(a1, a2)
    assert len(out) == 1500 and not any("error" in o for o in out)
    events = [(i, o["recalibration"]) for i, o in enumerate(out) if "recalibration" in o]
    assert [i for i, _ in events] == [199], events  # the first fit-watch window of 200
    event = events[0][1]
    assert event["done"] and event["promoted"] and event["version"] == "2", event
    assert "limits recalibrated: false alarms" in event["summary"]
    assert "planted faults caught" in event["summary"] and "promoted" in event["summary"]
    # the old limits flood: every sample of the first window is beyond them
    before = [o["level"] for o in out[:199]]
    assert before.count("error") > 150
    # after the recalibration: under 1% of the normal samples at error, the fault caught at once
    after = [o["level"] for o in out[200:1300]]
    assert after.count("error") < 11, after.count("error")
    fault = out[1300:1330]
    assert any(o["alarm"] for o in fault[:5]) and all(o["level"] == "error" for o in fault[2:])
    assert all(o["run_id"] != out[0]["run_id"] for o in out[200:])  # version 2 answers
    champion, versions = press.versions()
    assert champion == "2" and versions == ["1", "2"]
    history = press.cli("models", "history", NAME).out.splitlines()
    assert history[1].startswith("challenger: version 2") and "automatic: axis1" in history[1]
    assert history[2].startswith("champion: version 2 (was 1)")
    assert "false alarms" in history[2] and "planted faults caught" in history[2]
    # the recalibration run's facts and report say it with the figures
    from opslens.recipes import get_recipe
    from opslens.recipes.residual.narrative import residual_narrative

    runs = sorted((press.folder / "runs" / NAME).glob("2*/facts.json"))
    facts = [json.loads(p.read_text()) for p in runs]
    retrain = [f for f in facts if f.get("retrain")]
    assert len(retrain) == 1 and retrain[0]["retrain"]["challenger_wins"]
    caught = retrain[0]["retrain"]["details"]["faults_caught"]
    assert caught["challenger"] == caught["champion"] == caught["planted"] > 0
    week = retrain[0]["retrain"]["details"]["false_alarms_per_week"]
    assert week["champion"] > 100 and week["challenger"] < 1, week
    read: Any = get_recipe("residual").read_facts(retrain[0])
    text = residual_narrative(read, []).summary
    assert text.startswith("Limits recalibrated on 133 recent samples") and "per week" in text


def test_a_recalibration_on_samples_holding_a_fault_is_refused(
    trained: Callable[..., Press],
) -> None:
    press = trained()
    rng = np.random.default_rng(12)
    a1, a2 = _values(rng, 400)
    a1[100:] += FAULT + 0.01 * np.arange(300)  # a fault that worsens: the trigger fires in it
    out = press.stream(a1, a2)
    events = [o["recalibration"] for o in out if "recalibration" in o]
    assert events and all(e["done"] and not e["promoted"] for e in events), events
    assert "champion kept" in events[0]["summary"]
    assert sum(o["level"] == "error" for o in out[100:]) > 290  # the fault is still alarmed
    champion, versions = press.versions()
    assert champion == "1" and len(versions) == 1 + len(events)


def test_a_schedule_recalibrates_batches_of_normal_data(trained: Callable[..., Press]) -> None:
    press = trained(every="1d")
    rng = np.random.default_rng(13)
    fired = []
    for i in range(3):  # 720 samples (half a day) per batch
        a1, a2 = _values(rng, 720)
        ts = pl.from_epoch(pl.Series(press.start + DT * (720 * i + np.arange(720))), "s")
        batch = pl.DataFrame({"ts": ts, "axis1": a1, "axis2": a2})
        batch.write_parquet(press.folder / f"b{i}.pq")
        r = press.cli("batch", NAME, "--input", f"b{i}.pq")
        assert r.code == 0, r.err
        if "retrained (scheduled:" in r.out:
            fired.append(i)
    assert fired == [1], fired  # a day of data after batch 2, not before


@pytest.mark.parametrize(
    ("every", "said"),
    [
        ("soon", "'soon' is neither a number of samples nor a duration; write it as 5000"),
        ("3", "every takes at least 10 samples (or a duration such as 7d)"),
    ],
)
def test_a_bad_schedule_is_one_line_with_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: str, said: str
) -> None:
    _project(tmp_path, every=every)
    r = run_cli(["run", "-p", "project.yaml"], tmp_path, monkeypatch)
    assert r.code == 2 and r.err.count("\n") == 1, r.err
    assert r.err.startswith("error: project.yaml: 'analyses[0].params.recalibrate.every': ")
    assert said in r.err and not (tmp_path / "runs").exists()
