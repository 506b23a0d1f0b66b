"""Fleet figures: the rare flag explained, known failures marked, readable dates and units."""

from __future__ import annotations

from datetime import datetime, timedelta

import matplotlib.dates as mdates
import numpy as np
import polars as pl

from opslens.features.decompose import decompose_series
from opslens.plots.series import plot_decomposition, plot_point_anomalies
from opslens.recipes.fleet.plots import plot_embedding, plot_rare_scores


def _legend(fig) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_rare_scores_say_the_flag_is_a_quota_and_mark_failures() -> None:
    scores = pl.DataFrame(
        {
            "id": [f"d{i}" for i in range(10)],
            "combined": np.linspace(1.0, 0.1, 10),
            "is_rare": [True] + [False] * 9,
        }
    )
    fig = plot_rare_scores(scores, top_n=5, failed={"d0", "d3", "d9"}, contamination=0.05)
    legend = _legend(fig)
    assert "rare: the top 5% by score (params.rare.contamination)" in legend
    assert "known failure" in legend
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks.count("d0 (failed)") == 1 and "d3 (failed)" in ticks and "d9 (failed)" not in ticks
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 2  # d0 and d3 only


def test_embedding_marks_known_failures_and_names_noise() -> None:
    emb = pl.DataFrame({"id": list("abcdef"), "pc1": np.arange(6.0), "pc2": np.arange(6.0)})
    fig = plot_embedding(
        emb,
        [0, 0, 1, 1, -1, -1],
        [False] * 5 + [True],
        failed=[False, True, False, False, True, True],
    )
    assert {"known failure", "noise (fits no group)", "rare device"} <= set(_legend(fig))
    crosses = [c for c in fig.axes[0].collections if c.get_label() == "known failure"]
    assert len(crosses[0].get_offsets()) == 3


def test_device_plots_show_the_failure_time_dates_and_units() -> None:
    t0 = datetime(2026, 1, 1)
    times = [t0 + timedelta(hours=h) for h in range(24 * 8)]
    values = 20 + np.sin(2 * np.pi * np.arange(len(times)) / 24)
    frame = pl.DataFrame({"ts": times, "temperature": values})
    failed_at = t0 + timedelta(days=6)
    fig = plot_point_anomalies(
        frame,
        time="ts",
        value="temperature",
        flags=np.zeros(len(times), dtype=bool),
        title="d1",
        unit="°C",
        event=failed_at,
        event_label="known failure",
    )
    ax = fig.axes[0]
    assert ax.get_ylabel() == "temperature (°C)"
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    line = next(x for x in ax.get_lines() if x.get_label() == "known failure")
    assert np.datetime64(line.get_xdata()[0], "us") == np.datetime64(failed_at, "us")

    parts = decompose_series(frame, time="ts", value="temperature", period=24)
    fig = plot_decomposition(parts, title="d1", unit="°C", event=failed_at)
    assert fig.axes[0].get_ylabel() == "observed (°C)"
    assert all(any(x.get_label() == "known failure" for x in a.get_lines()) for a in fig.axes)
    assert isinstance(fig.axes[-1].xaxis.get_major_formatter(), mdates.ConciseDateFormatter)


def test_maintenance_events_are_drawn_on_the_device_timeline() -> None:
    t0 = datetime(2026, 1, 1)
    times = [t0 + timedelta(hours=h) for h in range(24 * 8)]
    frame = pl.DataFrame({"ts": times, "v": 20 + np.sin(np.arange(len(times)) / 4)})
    events = [
        (t0 + timedelta(days=2), "repair"),
        (t0 + timedelta(days=3), "error_e17"),
        (t0 + timedelta(days=5), "repair"),
    ]
    fig = plot_point_anomalies(
        frame, time="ts", value="v", flags=np.zeros(len(times), bool), title="d", events=events
    )
    assert {"error_e17 (1)", "repair (2)"} <= set(_legend(fig))
    dotted = [x for x in fig.axes[0].get_lines() if x.get_linestyle() == ":"]
    drawn = sorted(np.datetime64(x.get_xdata()[0], "us") for x in dotted)
    assert drawn == [np.datetime64(t, "us") for t, _ in events]
    parts = decompose_series(frame, time="ts", value="v", period=24)
    fig = plot_decomposition(parts, title="d", events=events)
    assert all(sum(x.get_linestyle() == ":" for x in a.get_lines()) == 3 for a in fig.axes)
    assert {"error_e17 (1)", "repair (2)"} <= set(_legend(fig))
