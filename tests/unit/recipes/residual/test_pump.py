"""The bundled pump (modes by shift, a slow and a sudden fault, a sensor dropout, a logging
gap): the demo's per-mode model catches both faults with next to no false alarm; the line
against time alarms at every shift change; the streaming mode catches both with a handful."""

from __future__ import annotations

import logging
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from opslens.api import load_project
from opslens.runner import run_analysis
from opslens.synthetic.pump import make_pump

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "residual" / "pump.yaml"
AXES = ["flow", "pressure", "temperature", "vibration"]


@pytest.fixture(scope="module")
def levels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, np.ndarray]]:
    folder = tmp_path_factory.mktemp("pump")
    text = EXAMPLE.read_text().replace("tracking: {enabled: false}", "")
    (folder / "project.yaml").write_text(
        f"tracking: {{enabled: false}}\nruns_dir: {folder / 'runs'}\n{text}"
    )
    project = load_project(folder / "project.yaml")
    frame = make_pump(seed=0).frame
    out = {}
    logging.disable(logging.INFO)
    try:
        for name in ("pump-modes", "pump-streaming", "pump-trend"):
            answers = run_analysis(project, name).predictor().predict_frame(frame)
            out[name] = {a: answers[f"{a}_level"].to_numpy() for a in AXES}
    finally:
        logging.disable(logging.NOTSET)
    return out


def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    data = make_pump(seed=0)
    ts = data.frame["ts"].to_numpy()
    slow, sudden = data.faults["slow"], data.faults["sudden"]
    held = ts >= ts[int(ts.size * 0.5)]
    normal = held & (ts < slow["start"])
    in_slow = ts >= slow["start"]
    in_sudden = (ts >= sudden["start"]) & (ts <= sudden["end"])
    return ts, normal, in_slow, in_sudden


def _first(ts: np.ndarray, alarm: np.ndarray, where: np.ndarray) -> float:
    hit = np.flatnonzero(alarm & where)
    return float((ts[hit[0]] - ts[where][0]) / np.timedelta64(1, "m")) if hit.size else np.inf


def test_per_mode_models_catch_both_faults_with_next_to_no_false_alarm(
    levels: dict[str, dict[str, np.ndarray]],
) -> None:
    ts, normal, in_slow, in_sudden = _split()
    lv = levels["pump-modes"]
    false = sum(int((lv[a][normal] == "error").sum()) for a in AXES)
    assert false <= 10  # of 4 × ~2,700 fault-free held-out samples
    assert _first(ts, lv["vibration"] == "error", in_slow) < 12 * 60  # worn bearing: < 12 h
    assert _first(ts, lv["flow"] == "error", in_sudden) <= 10  # blocked impeller: minutes
    assert _first(ts, lv["pressure"] == "error", in_sudden) <= 10


def test_the_line_against_time_alarms_at_every_shift_change(
    levels: dict[str, dict[str, np.ndarray]],
) -> None:
    _, normal, _, _ = _split()
    false = sum(int((levels["pump-trend"][a][normal] == "error").sum()) for a in AXES)
    assert false > 1000


def test_the_streaming_mode_catches_both_faults_with_a_handful_of_false_alarms(
    levels: dict[str, dict[str, np.ndarray]],
) -> None:
    ts, normal, in_slow, in_sudden = _split()
    lv = levels["pump-streaming"]
    false = sum(int((lv[a][normal] == "error").sum()) for a in AXES)
    assert false <= 8
    assert _first(ts, lv["vibration"] == "error", in_slow) < 24 * 60
    assert _first(ts, lv["flow"] == "error", in_sudden) <= 10


def test_the_demo_project_is_the_per_mode_pump() -> None:
    text = (files("opslens.recipes.residual") / "demo" / "project.yaml").read_text()
    assert "generator: pump" in text and "mode_column: mode" in text
