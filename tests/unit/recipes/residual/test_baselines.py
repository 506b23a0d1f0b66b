"""The residual recipe's held-out comparison (recipes/residual/baselines.py): the 3-sigma band's
exact limits, row-level precision / recall / F1, NAB against never alarming, which comparisons
gate, bootstrap units, and the alarm rates without labels."""

from __future__ import annotations

import numpy as np
import pytest

from opslens.core.baselines import BaselineScore, summarise
from opslens.recipes.residual.baselines import (
    band_alarms,
    counts,
    f1,
    held_out_comparison,
    units_of,
)


def test_the_band_is_mean_plus_minus_three_population_sds_of_the_training_values() -> None:
    train = {"a": np.array([8.0, 12.0] * 50), "b": np.array([0.0, 2.0] * 50)}  # sd 2 and 1
    held = {"a": np.array([10.0, 15.9, 16.1, 3.9, 0.0]), "b": np.array([1.0, 1.0, 1.0, 1.0, 4.1])}
    assert band_alarms(train, held).tolist() == [False, False, True, True, True]
    # 0 is an idle axis and never alarms, however far outside the band
    assert band_alarms(train, {"a": np.array([0.0]), "b": np.array([1.0])}).tolist() == [False]


def test_precision_recall_f1_of_alarmed_rows() -> None:
    labels = np.array([0, 0, 1, 1, 1, 1, 0, 0], dtype=bool)
    alarms = np.array([1, 0, 0, 1, 1, 0, 0, 0], dtype=bool)
    assert counts(alarms, labels) == (2, 1, 2)
    assert f1(2, 1, 2) == pytest.approx({"precision": 2 / 3, "recall": 0.5, "f1": 4 / 7})
    assert f1(0, 0, 4) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_units_are_days_from_five_days_on_else_twenty_blocks() -> None:
    hours = np.datetime64("2025-01-01T00") + np.arange(24 * 6)
    ids, unit = units_of(hours)
    assert unit == "held-out days" and ids.tolist()[::24] == [0, 1, 2, 3, 4, 5]
    ids, unit = units_of(hours[:80])
    assert unit == "blocks of consecutive held-out rows" and np.bincount(ids).tolist() == [4] * 20
    assert np.all(np.diff(ids) >= 0)


def _planted(seed: int = 0) -> dict[str, np.ndarray]:
    """Ten days of hourly rows; two labelled windows; the model catches both a little late."""
    rng = np.random.default_rng(seed)
    n = 240
    times = np.datetime64("2025-01-01T00") + np.arange(n)
    labels = np.zeros(n, dtype=bool)
    labels[50:70] = labels[150:170] = True
    model = np.zeros(n, dtype=bool)
    model[55:70] = model[152:165] = True
    model[200] = True  # one false alarm
    values = rng.normal(10.0, 1.0, n)
    values[210:214] = 20.0  # the band fires here, outside every window
    return {"times": times, "labels": labels, "model": model, "values": values}


def _compare(*, labelled: bool) -> tuple[list[BaselineScore], dict[str, object]]:
    d = _planted()
    return held_out_comparison(
        times=d["times"],
        model=d["model"],
        train={"a": np.random.default_rng(1).normal(10.0, 1.0, 500)},
        held={"a": d["values"]},
        labels=d["labels"] if labelled else None,
        random_state=0,
    )


def test_with_labels_f1_gates_against_the_band_and_nab_against_never_alarming() -> None:
    scores, facts = _compare(labelled=True)
    by = {(s.baseline, s.metric): s for s in scores}
    assert sorted(by) == [
        ("never_alarm", "nab_standard"),
        ("three_sigma", "f1"),
        ("three_sigma", "nab_standard"),
        ("three_sigma", "precision"),
        ("three_sigma", "recall"),
    ]
    assert [k for k, s in by.items() if s.gate] == [
        ("three_sigma", "f1"),
        ("never_alarm", "nab_standard"),
    ]
    assert by["three_sigma", "recall"].model == pytest.approx(28 / 40)
    assert by["three_sigma", "precision"].model == pytest.approx(28 / 29)
    assert by["three_sigma", "recall"].value == 0.0 and by["three_sigma", "f1"].value == 0.0
    never = by["never_alarm", "nab_standard"]
    assert never.value == 0.0 and 50.0 < never.model < 100.0 and never.n == 2
    assert by["three_sigma", "nab_standard"].value < 0  # four false alarms, no window found
    for s in scores:
        assert s.interval is not None and s.interval[0] <= s.model - s.value <= s.interval[1]
    assert facts["windows"] == 2 and facts["unit"] == "held-out days" and facts["units"] == 10
    assert summarise(scores).model_wins
    again, _ = _compare(labelled=True)
    assert [s.interval for s in again] == [s.interval for s in scores]


def test_without_labels_only_alarm_rates_and_nothing_gates() -> None:
    scores, facts = _compare(labelled=False)
    assert [(s.baseline, s.metric, s.gate) for s in scores] == [
        ("three_sigma", "alarm_rate", False),
        ("never_alarm", "alarm_rate", False),
    ]
    assert scores[0].model == pytest.approx(29 / 240) and scores[1].value == 0.0
    assert not scores[0].higher_is_better
    assert facts["windows"] is None and "nobody knows which" in str(facts["note"])
    assert facts["rates"] == {"model": pytest.approx(29 / 240), "three_sigma": scores[0].value}
