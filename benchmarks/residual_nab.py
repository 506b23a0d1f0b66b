"""The residual recipe on NAB realKnownCause: labelled windows caught, false alarms, delay.

For each of the seven series the recipe runs with its default settings (a
linear trend, training on the first 80% of the samples, the default limits and
sustain rules), then the whole series is replayed through the online checker
as one stream. An alarm is the start of an ``error`` run (``alert`` is reported
too). Per series and overall it prints:

* windows caught: labelled anomaly windows with at least one alarm inside;
* false alarms per week: alarm starts outside every window, per week of data;
* detection delay: from a caught window's start to its first alarm (hours).

Beside the defaults, one alternative: sustain defaults of an hour (alert) and half
an hour (error) instead of 5 s and 3 s. The baseline a user would try first runs in the same pass: a fixed 3-sigma band
(mean ± 3 standard deviations of the same training rows), alarm when outside.

Run: ``.venv/bin/python benchmarks/residual_nab.py [PATH_TO_NAB]`` (the folder holding
``data/realKnownCause/*.csv`` and ``labels/combined_windows.json``; default
``../shared/datasets/nab`` relative to the repository).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

from opslens.recipes import project_from_mapping
from opslens.runner import run_analysis

REPO = Path(__file__).resolve().parents[1]
WEEK_S = 7 * 86400.0


@dataclass
class Score:
    windows: int = 0
    caught: int = 0
    false_alarms: int = 0
    weeks: float = 0.0
    delays_h: list[float] | None = None

    def add(self, other: Score) -> None:
        self.windows += other.windows
        self.caught += other.caught
        self.false_alarms += other.false_alarms
        self.weeks += other.weeks
        self.delays_h = (self.delays_h or []) + (other.delays_h or [])

    def row(self) -> str:
        delays = self.delays_h or []
        delay = f"{np.median(delays):7.1f} h" if delays else "      —  "
        return (
            f"{self.caught}/{self.windows} caught, "
            f"{self.false_alarms / self.weeks:6.2f} false alarms/week, median delay {delay}"
        )


def score(ts: np.ndarray, alarm: np.ndarray, windows: list[tuple[datetime, datetime]]) -> Score:
    """Windows caught, false alarm starts and delays for a boolean alarm series."""
    starts = alarm & ~np.concatenate([[False], alarm[:-1]])
    inside = np.zeros(ts.size, dtype=bool)
    delays = []
    caught = 0
    for lo, hi in windows:
        w = (ts >= np.datetime64(lo)) & (ts <= np.datetime64(hi))
        inside |= w
        hits = np.flatnonzero(w & alarm)
        if hits.size:
            caught += 1
            delays.append(float((ts[hits[0]] - np.datetime64(lo)) / np.timedelta64(1, "h")))
    span = float((ts[-1] - ts[0]) / np.timedelta64(1, "s"))
    return Score(len(windows), caught, int((starts & ~inside).sum()), span / WEEK_S, delays)


def _levels(frame: pl.DataFrame, folder: Path, params: dict[str, object]) -> tuple[np.ndarray, int]:
    project = project_from_mapping(
        {
            "tracking": {"enabled": False},
            "runs_dir": str(folder),
            "analyses": [
                {
                    "name": "nab",
                    "recipe": "residual",
                    "source": {"kind": "memory"},
                    "columns": {"time": "ts", "metrics": ["value"]},
                    "params": params,
                }
            ],
        }
    )
    result = run_analysis(project, "nab", frames={"frame": frame})
    levels = result.predictor().predict_frame(frame)["level"].to_numpy()
    return levels, int(result.facts["prepare"]["rows_train"])


#: one alternative beside the defaults: an alarm must last an hour (error: half an hour)
SUSTAINED = {"thresholds": {"alert_seconds_default": 3600.0, "error_seconds_default": 1800.0}}


def run_series(
    path: Path, windows: list[tuple[datetime, datetime]], folder: Path
) -> dict[str, Score]:
    frame = pl.read_csv(path, try_parse_dates=True).rename({"timestamp": "ts"})
    levels, train = _levels(frame, folder, {})
    sustained, _ = _levels(frame, folder, SUSTAINED)
    ts = frame["ts"].to_numpy()
    values = frame["value"].cast(pl.Float64).to_numpy()
    mean, std = values[:train].mean(), values[:train].std()
    return {
        "residual error": score(ts, levels == "error", windows),
        "residual alert+error": score(ts, levels != "ok", windows),
        "residual error, 30 min": score(ts, sustained == "error", windows),
        "3-sigma band": score(ts, np.abs(values - mean) > 3 * std, windows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "nab", nargs="?", type=Path, default=REPO / ".." / "shared" / "datasets" / "nab"
    )
    args = parser.parse_args()
    logging.disable(logging.INFO)
    labels = json.loads((args.nab / "labels" / "combined_windows.json").read_text())
    totals: dict[str, Score] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted((args.nab / "data" / "realKnownCause").glob("*.csv")):
            key = f"realKnownCause/{path.name}"
            windows = [
                (datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in labels[key]
            ]
            print(path.stem)
            for method, s in run_series(path, windows, Path(tmp)).items():
                print(f"  {method:22s} {s.row()}")
                totals.setdefault(method, Score()).add(s)
    print("overall")
    for method, s in totals.items():
        print(f"  {method:22s} {s.row()}")


if __name__ == "__main__":
    main()
