"""The NAB scorer (opslens.detect.nab) reproduces NAB's own published per-file standard-profile
scores and confusion counts on the 7 realKnownCause files for three detectors, from their
per-timestamp anomaly scores and NAB's labelled windows; and its limits: the never-alarm
detector scores 0 normalised, the earliest detection of every window 100."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from opslens.detect.nab import nab_score, sweep_weights, windows_from_labels, windows_from_times

NAB = Path(__file__).resolve().parents[4] / ".." / "shared" / "datasets" / "nab"
DETECTORS = ("numenta", "windowedGaussian", "ARTime")


@pytest.fixture(scope="module")
def nab() -> Path:
    if not (NAB / "results" / "standard_scores").is_dir():
        message = f"NAB's results are not at {NAB.resolve()} (../shared/datasets/nab)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return NAB


def _published(nab: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for detector in DETECTORS:
        scores = pl.read_csv(
            nab / "results" / "standard_scores" / f"{detector}_standard_scores.csv"
        )
        rows += scores.filter(pl.col("File").str.starts_with("realKnownCause/")).to_dicts()
    return rows


def test_the_scorer_reproduces_nabs_published_per_file_scores(nab: Path) -> None:
    windows = json.loads((nab / "labels" / "combined_windows.json").read_text())
    published = _published(nab)
    assert len(published) == 21
    worst = 0.0
    for row in published:
        detector, file = str(row["Detector"]), str(row["File"])
        name = file.split("/")[1]
        results = pl.read_csv(
            nab / "results" / detector / "realKnownCause" / f"{detector}_{name}",
            try_parse_dates=True,
        )
        times = results["timestamp"].to_numpy()
        rows = windows_from_times(
            times,
            [
                (np.datetime64(a.replace(" ", "T")), np.datetime64(b.replace(" ", "T")))
                for a, b in windows[file]
            ],
        )
        assert len(rows) == len(windows[file])
        alarms = results["anomaly_score"].to_numpy() >= float(row["Threshold"])  # type: ignore[arg-type]
        score = nab_score(alarms, rows, probation_percent=0.15)
        worst = max(worst, abs(score.raw - float(row["Score"])))  # type: ignore[arg-type]
        assert (score.tp, score.tn, score.fp, score.fn) == (
            row["TP"],
            row["TN"],
            row["FP"],
            row["FN"],
        ), file
        if detector == "ARTime":  # NAB's per-row weights, as its current version writes them
            expected = results["S(t)_standard"].to_numpy()
            assert np.abs(sweep_weights(results.height, rows) - expected).max() < 1e-6
    assert worst < 1e-9


def test_the_subset_figures_of_the_provenance_note(nab: Path) -> None:
    """Normalised over the 19 windows: ARTime 63.9, numenta 55.5, windowedGaussian 13.4."""
    published = pl.DataFrame(_published(nab))
    totals = published.group_by("Detector").agg(pl.col("Score").sum())
    normalised = {d: round(100 * (s + 19) / 38, 1) for d, s in totals.iter_rows()}
    assert normalised == {"ARTime": 63.9, "numenta": 55.5, "windowedGaussian": 13.4}


def test_never_alarming_scores_zero_and_the_earliest_detections_a_hundred() -> None:
    labels = np.zeros(500, dtype=bool)
    labels[100:120] = labels[300:350] = True
    windows = windows_from_labels(labels)
    assert windows == [(100, 119), (300, 349)]
    never = nab_score(np.zeros(500, dtype=bool), windows)
    assert (never.raw, never.null, never.perfect, never.normalised) == (-2.0, -2.0, 2.0, 0.0)
    first = np.zeros(500, dtype=bool)
    first[[100, 300]] = True
    assert nab_score(first, windows).normalised == pytest.approx(100.0)
    # a false alarm before every window costs the fp weight, 0.11; one just after a window little
    far, near = first.copy(), first.copy()
    far[50], near[121] = True, True
    assert nab_score(far, windows).raw == pytest.approx(2.0 - 0.11)
    assert -0.11 < nab_score(near, windows).raw - 2.0 < -0.001
    # alarming on every row finds both windows but pays for every other row
    everything = nab_score(np.ones(500, dtype=bool), windows)
    assert everything.tp == 70 and everything.fp == 430 and everything.normalised < 0
    assert everything.contributions.sum() == pytest.approx(everything.raw)
