"""Two-sided limits in the reference mode: a level drop below the trend is caught with
``direction: both`` (and ``below``), missed with ``above``; the default entry is the
reference's, unchanged; one sample at a time equals the array."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from opslens.recipes import project_from_mapping
from opslens.recipes.residual.checker import OnlineChecker
from opslens.runner import run_analysis


def _drop() -> pl.DataFrame:
    rng = np.random.default_rng(11)
    n = 2000
    ts = np.datetime64("2025-05-01T00:00:00", "us") + (np.arange(n) * 2).astype("timedelta64[s]")
    y = 40.0 + 0.002 * np.arange(n) + rng.normal(0, 0.5, n)
    y[1800:1850] -= 5.0  # a pressure drop: 10 noise deviations below the trend for 100 s
    return pl.DataFrame({"ts": ts, "pressure": y})


def _run(tmp_path: Path, thresholds: dict[str, Any]) -> Any:
    project = project_from_mapping(
        {
            "tracking": {"enabled": False},
            "runs_dir": str(tmp_path / "runs"),
            "analyses": [
                {
                    "name": "p",
                    "recipe": "residual",
                    "source": {"kind": "memory"},
                    "columns": {"time": "ts", "metrics": ["pressure"]},
                    "params": {
                        "thresholds": thresholds,
                        "registry": {"root_dir": str(tmp_path / "registry")},
                    },
                }
            ],
        }
    )
    return run_analysis(project, "p", frames={"frame": _drop()})


def test_a_drop_below_the_trend_is_caught_with_both_and_missed_with_above(tmp_path: Path) -> None:
    frame = _drop()
    above = _run(tmp_path / "a", {})
    both = _run(tmp_path / "b", {"direction": "both"})
    below = _run(tmp_path / "c", {"directions": {"pressure": "below"}})
    levels = {
        name: r.predictor().predict_frame(frame)["level"].to_numpy()
        for name, r in (("above", above), ("both", both), ("below", below))
    }
    assert (levels["above"][1800:1850] == "error").sum() == 0
    for name in ("both", "below"):
        caught = np.flatnonzero(levels[name][1800:1850] == "error")
        assert caught.size >= 40 and caught[0] <= 5, name
    entry = above.facts["thresholds"]["axes"]["pressure"]
    assert "MinC_below" not in entry and "direction" not in entry  # the reference's entry
    both_entry = both.facts["thresholds"]["axes"]["pressure"]
    assert both_entry["MinC"] == entry["MinC"] and both_entry["MaxC"] == entry["MaxC"]
    assert both_entry["MinC_below"] > 0 and both_entry["direction"] == "both"
    # one sample at a time answers as the array
    checker = OnlineChecker(both.predictor())
    one = [checker.update(row, stream="s")["level"] for row in frame.slice(1700, 300).to_dicts()]
    whole = both.predictor().predict_frame(frame.slice(1700, 300))["level"].to_list()
    assert one == whole
