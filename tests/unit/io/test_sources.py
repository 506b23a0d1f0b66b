"""File, SQLite and PostgreSQL sources give the same frame, WIDE and LONG."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from opslens.config import AnalysisConfig
from opslens.errors import DataError, SourceError
from opslens.io.load import load_source
from opslens.io.sources.sql import engine_url


def _wide() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "trip_id": [1, 2, 3, 4, 5, 6],
            "started_at": [1_700_000_000 + 600 * i for i in range(6)],
            "route": ["A", "B", "A", "C", "B", "A"],
            "duration_min": [12.5, 30.25, 14.0, 45.5, 29.0, 13.75],
        }
    )


def _long(wide: pl.DataFrame) -> pl.DataFrame:
    return (
        wide.with_columns(pl.col("trip_id").cast(pl.Int64))
        .unpivot(
            index=["trip_id"],
            on=["started_at", "route", "duration_min"],
            variable_name="variable",
            value_name="value",
        )
        .with_columns(pl.col("value").cast(pl.String))
    )


def _analysis(source: dict, layout: str) -> AnalysisConfig:
    extra = (
        {"layout": "long", "long": {"index": ["trip_id"], "key": "variable", "value": "value"}}
        if layout == "long"
        else {}
    )
    return AnalysisConfig.model_validate(
        {
            "name": "eta",
            "recipe": "distribution",
            "source": {**source, **extra},
            "columns": {"time": "started_at", "target": "duration_min", "categorical": ["route"]},
        }
    )


def _normalise(frame: pl.DataFrame) -> pl.DataFrame:
    """Same logical frame regardless of how a backend typed the values (LONG values are text)."""
    return frame.select(
        pl.col("trip_id").cast(pl.Int64),
        pl.col("started_at"),
        pl.col("route").cast(pl.String),
        pl.col("duration_min").cast(pl.Float64),
    ).sort("trip_id")


def _write_sqlite(path: Path, frame: pl.DataFrame, table: str) -> str:
    url = f"sqlite:///{path}"
    with sqlite3.connect(path) as conn:
        frame.to_pandas().to_sql(table, conn, index=False)
    return url


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_sqlite_and_csv_give_the_same_frame(tmp_path: Path, layout: str) -> None:
    data = _wide() if layout == "wide" else _long(_wide())
    csv = tmp_path / "trips.csv"
    data.write_csv(csv)
    url = _write_sqlite(tmp_path / "t.db", data, "trips")
    from_csv = load_source(_analysis({"kind": "file", "path": str(csv)}, layout)).frame
    from_sql = load_source(_analysis({"kind": "sql", "url": url, "table": "trips"}, layout)).frame
    from_query = load_source(
        _analysis({"kind": "sql", "url": url, "query": "select * from trips"}, layout)
    ).frame
    assert from_csv.schema["started_at"] == pl.Datetime("us")
    assert_frame_equal(_normalise(from_csv), _normalise(from_sql))
    assert_frame_equal(_normalise(from_csv), _normalise(from_query))
    assert _normalise(from_csv)["duration_min"].to_list() == _wide()["duration_min"].to_list()


@pytest.mark.services
@pytest.mark.parametrize("layout", ["wide", "long"])
def test_postgres_and_csv_give_the_same_frame(
    tmp_path: Path, pg_url: str, pg_schema: str, layout: str
) -> None:
    data = _wide() if layout == "wide" else _long(_wide())
    csv = tmp_path / "trips.csv"
    data.write_csv(csv)
    engine = sa.create_engine(engine_url(pg_url))
    with engine.begin() as conn:
        data.to_pandas().to_sql("trips", conn, schema=pg_schema, index=False)
    engine.dispose()
    from_csv = load_source(_analysis({"kind": "file", "path": str(csv)}, layout)).frame
    from_pg = load_source(
        _analysis({"kind": "sql", "url": pg_url, "table": f"{pg_schema}.trips"}, layout)
    ).frame
    assert_frame_equal(_normalise(from_csv), _normalise(from_pg))
    parquet = tmp_path / "trips.parquet"
    data.write_parquet(parquet)
    from_parquet = load_source(_analysis({"kind": "file", "path": str(parquet)}, layout)).frame
    assert_frame_equal(_normalise(from_csv), _normalise(from_parquet))


def test_time_window_and_epoch_seconds(tmp_path: Path) -> None:
    csv = tmp_path / "trips.csv"
    _wide().write_csv(csv)
    cfg = _analysis(
        {
            "kind": "file",
            "path": str(csv),
            "window": {"start": "2023-11-14T22:23:20", "end": "2023-11-14T22:53:20"},
        },
        "wide",
    )
    frame = load_source(cfg).frame
    # started_at = 1_700_000_000 (22:13:20 UTC) + 600 s steps; the window keeps steps 1, 2 and 3
    assert frame["trip_id"].to_list() == [2, 3, 4]


def test_missing_table_names_it(tmp_path: Path) -> None:
    url = _write_sqlite(tmp_path / "t.db", _wide(), "trips")
    with pytest.raises(SourceError, match="table 'nope' does not exist"):
        load_source(_analysis({"kind": "sql", "url": url, "table": "nope"}, "wide"))


def test_unreachable_database_masks_password() -> None:
    with pytest.raises(SourceError) as err:
        load_source(
            _analysis(
                {"kind": "sql", "url": "postgresql://app:hunter22@127.0.0.1:1/test", "table": "t"},
                "wide",
            )
        )
    assert "hunter22" not in str(err.value)
    assert "could not connect" in str(err.value)


def test_empty_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    with sqlite3.connect(tmp_path / "e.db") as conn:
        conn.execute(
            "create table trips (trip_id int, started_at int, route text, duration_min real)"
        )
    with pytest.raises(DataError, match="has no rows"):
        load_source(_analysis({"kind": "sql", "url": url, "table": "trips"}, "wide"))


def test_long_with_repeated_pairs_is_an_error(tmp_path: Path) -> None:
    data = pl.concat([_long(_wide()), _long(_wide()).head(1)])
    csv = tmp_path / "long.csv"
    data.write_csv(csv)
    with pytest.raises(DataError, match="repeated"):
        load_source(_analysis({"kind": "file", "path": str(csv)}, "long"))
