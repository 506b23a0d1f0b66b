"""Maintenance events: a repair resets the device's own baseline (planted: repaired gearboxes
run 5-8 °C cooler); counts and recency per kind; a bad event list names its key."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from opslens.errors import DataError
from opslens.recipes.fleet.change import ChangeRules, change_table, cusum_alarms
from opslens.recipes.fleet.daily import daily_panel
from opslens.recipes.fleet.events import event_features, event_list, reset_days
from opslens.recipes.fleet.params import EventParams
from opslens.recipes.fleet.risk import risk_ranking
from opslens.recipes.fleet.sensors import mask_faults, sensor_faults
from opslens.synthetic.turbines import make_turbines

E = "turbine_id"


def test_a_repair_resets_the_baseline() -> None:
    fleet = make_turbines(seed=3, n_repairs=8)
    assert fleet.events is not None and fleet.events.height == 8
    panel = daily_panel(
        fleet.readings, entity=E, time="timestamp", metrics=list(fleet.metrics), peer="site"
    )
    panel = mask_faults(panel, sensor_faults(panel, entity=E), entity=E)
    events = event_list(EventParams(path=Path("events.csv")), fleet.events, E)
    resets = reset_days(events, panel, entity=E, kinds=["repair"])
    rows = [panel.row(d) for d in fleet.events[E]]
    rules = ChangeRules()
    only_peer = {"rarity": 0.0, "own_change": 0.0, "peer_change": 1.0}
    found = {}
    for name, reset in (("without", None), ("with", resets)):
        alarms = cusum_alarms(panel, rules, reset)
        change = change_table(panel, entity=E, rules=rules, resets=reset)
        risk = risk_ranking(change, None, entity=E, h=rules.h, weights=only_peer)
        ranks = risk.filter(pl.col(E).is_in(fleet.events[E].implode()))["rank"]
        found[name] = (int(alarms[rows].any(axis=1).sum()), int(ranks.min()))  # type: ignore[arg-type]
    # without the events every repaired (cooler) turbine raises the warning and ranks high
    assert found["without"][0] == 8 and found["without"][1] <= 20
    # compared with its post-repair self, none does
    assert found["with"][0] == 0 and found["with"][1] > 100


def test_counts_recency_and_a_bad_event_list() -> None:
    fleet = make_turbines(
        n_turbines=30, n_sites=2, n_days=90, n_failing=2, n_sensor_faults=2, n_repairs=3, seed=1
    )
    assert fleet.events is not None
    events = event_list(EventParams(path=Path("e.csv")), fleet.events, E)
    end = fleet.readings["timestamp"].max().date()  # type: ignore[union-attr]
    feats = event_features(events, E, end=end)
    assert feats.columns == [E, "events_repair", "days_since_repair"]
    assert feats["events_repair"].sum() == 3 and (feats["days_since_repair"] >= 0).all()
    with pytest.raises(DataError, match=r"column 'when' \(params.events.time_column\) is not in"):
        event_list(EventParams(path=Path("e.csv"), time_column="when"), fleet.events, E)
