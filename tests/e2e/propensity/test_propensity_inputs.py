"""Your own event table through the same stages, and every bad input: one line, exit code 2."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from tests.fakes.cli import run_cli

from opslens.synthetic.clickstream import make_clickstream
from opslens.tracking.runs import open_run

pytestmark = pytest.mark.slow

PROJECT = """
tracking: {{enabled: false}}
analyses:
  - name: shop
    recipe: propensity
    source: {{kind: file, path: {path}}}
    columns: {{entity: visitor, group: sku, target: action, time: at}}
    params:
      features: {{every: 1d, lookback: 7d, horizon: 3d}}
      models: {{n_estimators: 20}}
      {extra}
"""


def _events(days: int = 20) -> pl.DataFrame:
    ev = make_clickstream(seed=3, num_users=150, num_items=40, num_days=days).events
    return ev.rename(
        {"user_id": "visitor", "item_id": "sku", "event_type": "action", "timestamp": "at"}
    )


def _project(
    folder: Path, frame: pl.DataFrame, *, extra: str = "", name: str = "events.csv"
) -> None:
    frame.write_csv(folder / name) if name.endswith(".csv") else frame.write_parquet(folder / name)
    (folder / "project.yaml").write_text(PROJECT.format(path=name, extra=extra))


def _one_line_exit_2(folder: Path, monkeypatch: pytest.MonkeyPatch, *words: str) -> str:
    res = run_cli(["run", "project.yaml"], folder, monkeypatch)
    assert res.code == 2, (res.code, res.err[-800:])
    lines = [ln for ln in res.err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in res.err, res.err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_your_own_events_with_an_item_table_and_renamed_event_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_clickstream(seed=3, num_users=150, num_items=40, num_days=20)
    ev = (
        _events()
        .with_columns(pl.col("action").replace({"add_to_cart": "Add-To-Cart", "purchase": "order"}))
        .with_columns(  # unknown types: warned, counted, dropped
            pl.when((pl.int_range(pl.len()) % 50 == 0) & (pl.col("action") == "view"))
            .then(pl.lit("hover"))
            .otherwise(pl.col("action"))
            .alias("action"),
        )
    )
    data.items.rename({"item_id": "sku"}).write_parquet(tmp_path / "items.parquet")
    _project(
        tmp_path, ev, extra="event_names: {order: purchase}\n      items: {path: items.parquet}"
    )
    res = run_cli(["run", "project.yaml"], tmp_path, monkeypatch)
    assert res.code == 0, res.err
    run = open_run(tmp_path / "runs", "shop")
    facts = run.facts["data-gen"]
    hovers = ev.filter(pl.col("action") == "hover").height
    assert facts["unknown_event_types"] == {"hover": hovers}
    assert facts["events"] == ev.height - hovers
    assert facts["event_counts"]["purchase"] == ev.filter(pl.col("action") == "order").height
    assert any("unknown type" in w for w in run.manifest["warnings"])
    items = run.table("items")
    assert items["price"].null_count() == 0 and set(items["category"]) <= set(
        data.items["category"]
    )


def test_timestamps_in_mixed_time_zones_are_normalised_to_utc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ev = _events()
    shifted = ev.with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0)
        .then((pl.col("at") + pl.duration(hours=2)).dt.strftime("%Y-%m-%dT%H:%M:%S+02:00"))
        .otherwise(pl.col("at").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        .alias("at")
    )
    _project(tmp_path, shifted)
    assert run_cli(["run", "project.yaml"], tmp_path, monkeypatch).code == 0
    got = open_run(tmp_path / "runs", "shop").table("events")["timestamp"].sort()
    assert got.to_list() == ev["at"].sort().to_list()  # the same instants, in UTC


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("missing_event_type", ("event-type column 'action'", "columns.target")),
        ("naive_and_offset_mixed", ("time column 'at'", "mixes timestamps with a UTC offset")),
        ("empty_window", ("too few", "params.split")),
        ("short_window", ("shorter than the label horizon", "params.features.horizon")),
        (
            "item_table_mismatch",
            ("items in the events are not in the item table", "params.items.path"),
        ),
        (
            "user_table_mismatch",
            ("users in the events are not in the user table", "params.users.path"),
        ),
        ("no_known_events", ("no events", "params.event_names")),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    case: str, words: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ev = _events()
    extra = ""
    if case == "missing_event_type":
        ev = ev.drop("action")
    elif case == "naive_and_offset_mixed":
        ev = ev.with_columns(
            pl.when(pl.int_range(pl.len()) % 2 == 0)
            .then(pl.col("at").dt.strftime("%Y-%m-%dT%H:%M:%S+02:00"))
            .otherwise(pl.col("at").dt.strftime("%Y-%m-%d %H:%M:%S"))
            .alias("at")
        )
    elif case == "empty_window":
        ev = ev.filter(pl.col("at") < ev["at"].min() + pl.duration(days=2))  # type: ignore[operator]
    elif case == "short_window":
        ev = _events(days=9)
    elif case == "item_table_mismatch":
        pl.DataFrame({"sku": ["nope"], "category": ["x"], "price": [1.0]}).write_csv(
            tmp_path / "items.csv"
        )
        extra = "items: {path: items.csv}"
    elif case == "user_table_mismatch":
        pl.DataFrame({"visitor": ev["visitor"].unique().sort().head(5)}).write_csv(
            tmp_path / "users.csv"
        )
        extra = "users: {path: users.csv}"
    elif case == "no_known_events":
        ev = ev.with_columns(pl.lit("hover").alias("action"))
    _project(tmp_path, ev, extra=extra)
    _one_line_exit_2(tmp_path, monkeypatch, *words)
    assert not (tmp_path / "runs" / "shop" / "latest").exists()  # nothing half-written
