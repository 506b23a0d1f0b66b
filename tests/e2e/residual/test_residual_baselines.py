"""The residual recipe against its baselines on held-out rows, end to end through the runner:
the bundled demo (no labels: alarm rates only, nothing gates), a slow drift after a downward
trend that the residual limits catch and a fixed 3-sigma band on the raw signal misses, and
stationary noise with spikes where the band is better and the verdict says so."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from opslens.api import load_project
from opslens.errors import DataError
from opslens.explain.text import fmt
from opslens.recipes import project_from_mapping
from opslens.recipes.residual import RECIPE
from opslens.recipes.residual.facts import ResidualFacts
from opslens.recipes.residual.narrative import residual_narrative
from opslens.runner import RunResult, run_analysis

pytestmark = pytest.mark.slow
DEMO = Path(__file__).resolve().parents[3] / "examples" / "residual" / "project.yaml"
DAYS, PER_DAY = 30, 144  # ten-minute samples for a month: six days held out


def _run(folder: Path, frame: pl.DataFrame, target: str | None = "anomaly") -> RunResult:
    columns: dict[str, object] = {"time": "ts", "metrics": ["load"]}
    if target is not None:
        columns["target"] = target
    project = project_from_mapping(
        {
            "tracking": {"enabled": False},
            "runs_dir": str(folder),
            "analyses": [
                {
                    "name": "m",
                    "recipe": "residual",
                    "source": {"kind": "memory"},
                    "columns": columns,
                }
            ],
        },
        root=folder,
    )
    return run_analysis(project, "m", frames={"frame": frame})


def _frame(load: np.ndarray, labels: np.ndarray) -> pl.DataFrame:
    start = datetime(2025, 3, 1)
    ts = [start + timedelta(minutes=10 * i) for i in range(load.size)]
    return pl.DataFrame({"ts": ts, "load": load, "anomaly": labels.astype(np.int64)})


def _facts(result: RunResult) -> ResidualFacts:
    facts = RECIPE.read_facts(json.loads((result.path / "facts.json").read_text()))
    assert isinstance(facts, ResidualFacts) and facts.baselines is not None
    return facts


def _score(facts: ResidualFacts, baseline: str, metric: str) -> tuple[float, float, bool]:
    assert facts.baselines is not None
    (s,) = [s for s in facts.baselines.for_baseline(baseline) if s.metric == metric]
    assert s.interval is not None and all(math.isfinite(v) for v in s.interval)
    assert s.interval[0] <= s.model - s.value <= s.interval[1]
    return s.model, s.value, s.interval[0] > 0 or s.interval[1] < 0


def test_the_demo_compares_alarm_rates_and_nothing_gates(tmp_path: Path) -> None:
    text = DEMO.read_text().replace(
        'tracking: {uri: "sqlite:///mlflow.db"}', "tracking: {enabled: false}"
    )
    (tmp_path / "project.yaml").write_text(text)
    result = run_analysis(load_project(tmp_path / "project.yaml"), "machine-axes")
    facts = _facts(result)
    assert facts.baselines is not None and facts.thresholds is not None
    held = facts.thresholds.held_out
    assert held is not None and held.labels is None and held.rows == 600
    assert "nobody knows which of the alarms were right" in held.note
    assert [(s.baseline, s.metric, s.gate) for s in facts.baselines.scores] == [
        ("three_sigma", "alarm_rate", False),
        ("never_alarm", "alarm_rate", False),
    ]
    model, band, significant = _score(facts, "three_sigma", "alarm_rate")
    # the model alarms on the planted fault only (40 samples of axis2, at the error level)
    assert model == held.rates["model"] and 35 <= model * 600 <= 42
    assert model * 600 == sum(c.error for c in facts.thresholds.holdout.values())
    # the trends carry the raw values out of the training band: it alarms on > 30% of rows
    assert band > 0.3 and significant
    assert _score(facts, "never_alarm", "alarm_rate")[1] == 0.0
    assert facts.baselines.model_wins and facts.baselines.losses == []
    assert result.metrics["baseline.three_sigma.alarm_rate"] == pytest.approx(band)
    assert result.metrics["model.alarm_rate"] == pytest.approx(model)
    narrative = residual_narrative(facts, [])
    assert (
        "Without labels no baseline can be beaten or lost to: the model alarmed on "
        f"{fmt(100 * model)}% of the held-out rows, a 3-sigma band per axis on {fmt(100 * band)}%."
    ) in narrative.summary
    assert "Alarms on the held-out rows" in [s.title for s in narrative.sections]


def test_the_limits_catch_a_slow_drift_after_a_trend_that_a_3_sigma_band_misses(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(7)
    n = DAYS * PER_DAY
    load = 100.0 - 20.0 * np.arange(n) / n + rng.normal(0.0, 1.0, n)
    labels = np.zeros(n, dtype=bool)
    first, last = int(n * 0.86), int(n * 0.96)
    load[first:last] += np.linspace(0.0, 10.0, last - first)  # back up towards old values
    labels[first:last] = True
    facts = _facts(_run(tmp_path, _frame(load, labels)))
    assert facts.thresholds is not None and facts.thresholds.held_out is not None
    held = facts.thresholds.held_out
    assert (held.rows, held.windows, held.unit, held.units) == (864, 1, "held-out days", 6)
    recall, band_recall, _ = _score(facts, "three_sigma", "recall")
    assert recall >= 0.75 and band_recall == 0.0
    f1, band_f1, significant = _score(facts, "three_sigma", "f1")
    assert f1 >= 0.8 and band_f1 == 0.0 and significant
    nab, band_nab, _ = _score(facts, "three_sigma", "nab_standard")
    assert nab > 40.0 and band_nab <= 0.0
    assert _score(facts, "never_alarm", "nab_standard")[1] == 0.0
    assert facts.baselines is not None and facts.baselines.model_wins
    assert facts.baselines.verdict == (
        "the model beats a 3-sigma band per axis and the detector that never alarms "
        "on held-out data"
    )


def test_on_stationary_noise_with_spikes_the_band_wins_and_the_verdict_says_so(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(11)
    n = DAYS * PER_DAY
    load = 50.0 + rng.normal(0.0, 1.0, n)
    labels = rng.random(n) < 0.02
    load[labels] += 8.0
    facts = _facts(_run(tmp_path, _frame(load, labels)))
    recall, band_recall, _ = _score(facts, "three_sigma", "recall")
    assert recall == 1.0 and band_recall == 1.0  # both see every spike
    precision, band_precision, _ = _score(facts, "three_sigma", "precision")
    # the limits sit near the 97th percentile of the residuals: noise alone trips them
    assert precision < 0.8 and band_precision > 0.95
    f1, band_f1, significant = _score(facts, "three_sigma", "f1")
    assert band_f1 > f1 and significant
    assert facts.baselines is not None
    assert not facts.baselines.model_wins and facts.baselines.losses == ["three_sigma"]
    assert facts.baselines.verdict.startswith(
        f"a 3-sigma band per axis is better on F1 of alarmed rows against labelled rows: "
        f"{band_f1:.3f} against {f1:.3f} (864 held-out rows)"
    )
    # against never alarming, the model still finds the spikes: NAB well above 0
    nab, never, _ = _score(facts, "never_alarm", "nab_standard")
    assert nab > 80.0 and never == 0.0
    summary = residual_narrative(facts, []).summary
    assert "A 3-sigma band per axis does better than the model on held-out data" in summary


def test_a_label_column_that_is_missing_or_not_flags_is_a_data_error(tmp_path: Path) -> None:
    load = np.linspace(1.0, 2.0, 200)
    frame = _frame(load, np.zeros(200, dtype=bool))
    with pytest.raises(DataError, match=r"label column 'faults' \(columns.target\) is not in"):
        _run(tmp_path, frame, target="faults")
    text = frame.with_columns(pl.col("anomaly").cast(pl.String))
    with pytest.raises(DataError, match="holds String, not true/false or 0/1"):
        _run(tmp_path, text)
