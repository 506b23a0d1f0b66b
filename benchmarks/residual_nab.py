"""The residual recipe on NAB realKnownCause: the NAB score, windows caught, false alarms, delay.

Every detector runs online over each of the seven series as one stream (no look-ahead;
NAB's probation, the first ``min(15%, 750)`` samples, is the warm-up):

Every documented mode (each ``params.mode`` with its defaults, and each documented choice of
model, direction, training window and warm-up), then the baselines, then the two settings
documented as batch analysis only (the alarm-flood guard off, ``hold_off: 0``: not a mode for
a live stream, which warns when served with it). The benchmark checks that every documented
mode scores at least 0 (exit code 1 otherwise). Operating modes and regressors need more
than one signal; NAB's series have one.

* **streaming (default)**: the recipe's streaming mode with its documented defaults
  (``params.streaming``, :class:`~opslens.recipes.residual.params.StreamingParams`);
  an alarm is a sample at level ``error``;
* streaming, ``direction: above`` and ``below``: the same, alarming on rises (drops) only;
* **3-sigma band**: the baseline a practitioner tries first, mean ± 3 standard
  deviations of the same warm-up, an alarm on every sample outside; and the same band
  with the streaming mode's hold-off (no new alarm for ``hold_off`` samples after one);
* streaming with a fixed warm-up of ``warmup_samples`` (750), as a live stream that does not
  know its length runs;
* reference mode, each documented setting (``REFERENCE_MODES``): a line against time fitted
  on the first 80% (the recipe's defaults; it looks ahead, so it flatters the mode), and
  fitted on NAB's probation only (the first 15%: online, as NAB's rules ask) with each
  model type (``linear``, ``huber``, ``piecewise``, a flat ``median``, ``auto``) and
  ``median`` with ``direction: both`` and ``below``; the reference's limits and sustain
  rules, the whole series replayed; an alarm is the checker's ``alarm`` answer (a stream
  entering ``error``, at most one per ``thresholds.hold_off`` samples);
* batch analysis only (``GUARD_OFF``): the reference mode's defaults and the streaming
  mode's with the guard off (``hold_off: 0``: every start of an ``error`` run an alarm).

Per detector, over the seven files: the NAB standard-profile score normalised over the
19 windows (100 = perfect, 0 = never alarming; :mod:`opslens.detect.nab`, checked against
NAB's own per-file scores), windows caught, false alarms per week (alarm starts outside
every window) and the median delay from a window's start to its first alarm. Published
detectors on the same files: ARTime 63.9, Numenta HTM 55.5, random 44.4, windowed
Gaussian 13.4. Last, the spread of the default's score over its neighbours (one knob a step
either side), since the default was chosen on these same files.

Run: ``.venv/bin/python benchmarks/residual_nab.py [PATH_TO_NAB] [--no-reference]`` (the
folder holding ``data/realKnownCause/*.csv`` and ``labels/combined_windows.json``; default
``../shared/datasets/nab`` relative to the repository).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from opslens.detect.nab import nab_score, windows_from_times
from opslens.recipes import project_from_mapping
from opslens.recipes.residual.params import StreamingParams
from opslens.recipes.residual.streaming import score_stream, warmup_length
from opslens.runner import run_analysis

REPO = Path(__file__).resolve().parents[1]
WEEK_S = 7 * 86400.0
PUBLISHED = {"ARTime": 63.9, "Numenta HTM": 55.5, "random": 44.4, "windowed Gaussian": 13.4}


@dataclass
class Score:
    windows: int = 0
    caught: int = 0
    false_alarms: int = 0
    weeks: float = 0.0
    delays_h: list[float] = field(default_factory=list)
    raw: float = 0.0
    null: float = 0.0
    perfect: float = 0.0

    def add(self, other: Score) -> None:
        self.windows += other.windows
        self.caught += other.caught
        self.false_alarms += other.false_alarms
        self.weeks += other.weeks
        self.delays_h += other.delays_h
        self.raw += other.raw
        self.null += other.null
        self.perfect += other.perfect

    @property
    def nab(self) -> float:
        span = self.perfect - self.null
        return 100.0 * (self.raw - self.null) / span if span > 0 else math.nan

    def row(self) -> str:
        delay = f"{np.median(self.delays_h):6.1f} h" if self.delays_h else "     —  "
        return (
            f"NAB {self.nab:7.1f}  {self.caught:2d}/{self.windows} caught, "
            f"{self.false_alarms / self.weeks:6.2f} false alarms/week, median delay {delay}"
        )


def score(ts: np.ndarray, alarm: np.ndarray, windows: list[tuple[datetime, datetime]]) -> Score:
    """NAB score, windows caught, false alarm starts and delays of a boolean alarm series."""
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
    rows = windows_from_times(ts, [(np.datetime64(a), np.datetime64(b)) for a, b in windows])
    nab = nab_score(alarm, rows, probation_percent=0.15)
    return Score(
        len(windows),
        caught,
        int((starts & ~inside).sum()),
        span / WEEK_S,
        delays,
        nab.raw,
        nab.null,
        nab.perfect,
    )


#: the reference mode's documented settings, each run as the recipe runs it: a batch run
#: (training window, limits), then the whole series replayed through its checker
REFERENCE_MODES: dict[str, dict[str, Any]] = {
    "reference, 80% training": {},
    "reference, probation": {"train_end": "15%"},
    **{
        f"reference, probation, {kind}": {"train_end": "15%", "model": {"type": kind}}
        for kind in ("huber", "piecewise", "median", "auto")
    },
    **{
        f"reference, probation, {side}": {
            "train_end": "15%",
            "model": {"type": "median"},
            "thresholds": {"direction": side},
        }
        for side in ("both", "below")
    },
}

#: documented as batch analysis only, not a mode for a live stream: the alarm-flood guard off
GUARD_OFF: dict[str, dict[str, Any]] = {
    "reference, 80%, guard off": {"thresholds": {"hold_off": 0}},
    "streaming, guard off": {"hold_off": 0},
}
BASELINES = ("3-sigma band", "3-sigma band + hold-off")


def _reference_alarms(frame: pl.DataFrame, folder: Path, params: dict[str, Any]) -> np.ndarray:
    """Reference mode: the recipe's batch run with ``params``; the checker's ``alarm`` answers
    (a stream entering ``error``, at most one per ``thresholds.hold_off`` samples)."""
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
                    "params": {"registry": {"root_dir": str(folder / "registry")}, **params},
                }
            ],
        }
    )
    result = run_analysis(project, "nab", frames={"frame": frame})
    answers = result.predictor().predict_frame(frame)
    alarm: np.ndarray = answers["alarm"].fill_null(False).to_numpy()
    return alarm


def _hold(alarm: np.ndarray, hold_off: int) -> np.ndarray:
    """Only the alarms at least ``hold_off + 1`` samples after the previous kept one."""
    out = np.zeros_like(alarm)
    quiet = 0
    for i in np.flatnonzero(alarm).tolist():
        if i >= quiet:
            out[i] = True
            quiet = i + hold_off + 1
    return out


#: one knob at a time, a step either side of the default: how much the score owes to the setting
NEIGHBOURS = (
    ("margin", 1.5),
    ("margin", 2.0),
    ("mad_k", 3.5),
    ("mad_k", 4.5),
    ("quantile", 0.98),
    ("quantile", 0.995),
    ("window", 145),
    ("window", 577),
    ("cycles", 2),
    ("cycles", 4),
    ("hold_off", 144),
    ("hold_off", 576),
)


def run_series(
    path: Path, windows: list[tuple[datetime, datetime]], folder: Path | None
) -> dict[str, Score]:
    frame = pl.read_csv(path, try_parse_dates=True).rename({"timestamp": "ts"})
    ts = frame["ts"].to_numpy()
    values = frame["value"].cast(pl.Float64).to_numpy()
    time_s = (ts - ts[0]) / np.timedelta64(1, "s")
    default = StreamingParams()
    warm = warmup_length(default, values.size)
    out: dict[str, Score] = {}
    for name, params in (
        ("streaming (default)", default),
        ("streaming, above only", default.model_copy(update={"direction": "above"})),
        ("streaming, below only", default.model_copy(update={"direction": "below"})),
        ("streaming, guard off", default.model_copy(update=GUARD_OFF["streaming, guard off"])),
    ):
        levels = score_stream(values, time_s=time_s, params=params, warmup=warm).levels
        out[name] = score(ts, levels == "error", windows)
    # as a live stream does not know its length: the first warmup_samples (750), always
    fixed = score_stream(values, time_s=time_s, params=default).levels
    out["streaming, warm-up 750"] = score(ts, fixed == "error", windows)
    for knob, value in NEIGHBOURS:
        params = default.model_copy(update={knob: value})
        levels = score_stream(values, time_s=time_s, params=params, warmup=warm).levels
        out[f"~ {knob}={value}"] = score(ts, levels == "error", windows)
    mean, std = values[:warm].mean(), values[:warm].std()
    band = np.abs(values - mean) > 3 * std
    band[:warm] = False
    out["3-sigma band"] = score(ts, band, windows)
    out["3-sigma band + hold-off"] = score(ts, _hold(band, default.hold_off), windows)
    if folder is not None:
        reference_off = {k: v for k, v in GUARD_OFF.items() if k.startswith("reference")}
        for name, settings in {**REFERENCE_MODES, **reference_off}.items():
            alarm = _reference_alarms(frame, folder / name.replace(" ", "_"), settings)
            alarm[:warm] = False  # NAB's probation: nothing counted there, for any detector
            out[name] = score(ts, alarm, windows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "nab", nargs="?", type=Path, default=REPO / ".." / "shared" / "datasets" / "nab"
    )
    parser.add_argument("--no-reference", action="store_true", help="skip the reference mode")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the extrapolation guard warns on every reference run
    labels = json.loads((args.nab / "labels" / "combined_windows.json").read_text())
    totals: dict[str, Score] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted((args.nab / "data" / "realKnownCause").glob("*.csv")):
            key = f"realKnownCause/{path.name}"
            windows = [
                (datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in labels[key]
            ]
            print(path.stem)
            folder = None if args.no_reference else Path(tmp)
            for method, s in _ordered(run_series(path, windows, folder)).items():
                if not method.startswith("~"):
                    print(f"  {method:33s} {s.row()}")
                totals.setdefault(method, Score()).add(s)
    print("overall (NAB standard profile, normalised over the 7 files' 19 windows)")
    heading = ""
    for method, s in totals.items():
        if method.startswith("~"):
            continue
        group = _GROUPS[_rank(method)]
        if group != heading:
            print(f" {group}")
            heading = group
        print(f"  {method:33s} {s.row()}")
    near = {m: s.nab for m, s in totals.items() if m.startswith("~")}
    print(
        f"streaming default's {len(near)} neighbours (one knob a step either side): NAB median "
        f"{np.median(list(near.values())):.1f}, min {min(near.values()):.1f} "
        f"({min(near, key=near.__getitem__)[2:]}), max {max(near.values()):.1f} "
        f"({max(near, key=near.__getitem__)[2:]})"
    )
    for name, value in PUBLISHED.items():
        print(f"  {'published: ' + name:33s} NAB {value:7.1f}")
    totals = {m: s for m, s in totals.items() if not m.startswith("~")}
    best = max(totals, key=lambda m: totals[m].nab)
    worst = min(totals, key=lambda m: totals[m].nab)
    modes = {m: s for m, s in totals.items() if m not in GUARD_OFF and m not in BASELINES}
    low = min(modes, key=lambda m: modes[m].nab)
    below = [m for m, s in modes.items() if not s.nab >= 0]
    print(
        f"best: {best} ({totals[best].nab:.1f}); worst: {worst} ({totals[worst].nab:.1f}); "
        f"every one of the {len(modes)} documented modes at least 0: "
        f"{'yes' if not below else 'NO: ' + ', '.join(below)} "
        f"(the lowest: {low}, {modes[low].nab:.1f})"
    )
    if below:
        raise SystemExit(1)


_GROUPS = (
    "documented modes (each at least 0)",
    "baselines",
    "batch analysis only: the alarm-flood guard off (hold_off: 0), not a mode for a live stream",
    "neighbours",
)


def _rank(method: str) -> int:
    if method.startswith("~"):
        return 3
    return 2 if method in GUARD_OFF else 1 if method in BASELINES else 0


def _ordered(scores: dict[str, Score]) -> dict[str, Score]:
    """The documented modes first, then the baselines, then the guard off, then neighbours."""
    return dict(sorted(scores.items(), key=lambda kv: _rank(kv[0])))


if __name__ == "__main__":
    main()
