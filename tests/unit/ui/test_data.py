"""The Data page: demo fleet, uploads, PostgreSQL, column roles and filters (AppTest)."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from opslens.errors import DataError, SourceError
from opslens.ui.state import DATA
from opslens.ui.views import data as data_view
from opslens.ui.views.data import RAW, read_table_bytes, select_metrics, shape_table

ROOT = Path(__file__).resolve().parents[3]
PAGE = str(ROOT / "src/opslens/ui/pages/data.py")
PASSWORD = "S3cr$t/pw@x"


def _app() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


def _readings() -> pl.DataFrame:
    start = datetime(2024, 1, 1)
    return pl.DataFrame(
        {
            "device_id": [d for d in ("a", "b", "c") for _ in range(4)],
            "timestamp": [
                (start + timedelta(hours=h)).isoformat() for _ in range(3) for h in range(4)
            ],
            "site": ["north", "south", "north"] * 4,
            "temperature": [float(i) for i in range(12)],
            "current": [float(i) / 2 for i in range(12)],
        }
    )


def _csv(frame: pl.DataFrame) -> bytes:
    return frame.write_csv().encode()


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _upload(name: str, content: bytes) -> AppTest:
    at = _app()
    at.radio(key="data_source").set_value("Upload CSV/Parquet").run()
    at.file_uploader(key="upload").set_value((name, content, "application/octet-stream")).run()
    assert not at.exception
    return at


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


# --- pure helpers ----------------------------------------------------------------------------


def test_read_table_bytes_reads_csv_and_parquet() -> None:
    frame = _readings()
    assert read_table_bytes("r.csv", _csv(frame)).shape == frame.shape
    assert read_table_bytes("r.parquet", _parquet(frame)).equals(frame)


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("junk.parquet", b"\x00\x01not parquet", "Parquet"),
        ("junk.csv", b"PK\x03\x04\x14\x00garbage\x00\xff\xfe\n\x81\x82,\x00", "CSV"),
    ],
)
def test_read_table_bytes_names_the_unreadable_file(name: str, content: bytes, kind: str) -> None:
    with pytest.raises(SourceError, match=re.escape(f"cannot read '{name}' as {kind}")):
        read_table_bytes(name, content)


def test_read_table_bytes_refuses_a_file_without_rows() -> None:
    with pytest.raises(SourceError, match=re.escape("'empty.csv' holds no rows")):
        read_table_bytes("empty.csv", b"device_id,timestamp,temperature\n")


def test_shape_and_select_refuse_wrong_roles() -> None:
    frame = _readings()
    with pytest.raises(DataError, match="both as the entity and as the time"):
        shape_table(frame, entity="device_id", time="device_id")
    with pytest.raises(DataError, match="not timestamps"):
        shape_table(frame, entity="device_id", time="site")
    wide = shape_table(frame, entity="device_id", time="timestamp")
    with pytest.raises(DataError, match="no metric"):
        select_metrics(wide, entity="device_id", time="timestamp", metrics=[])
    with pytest.raises(DataError, match="'site' in the table is not numeric"):
        select_metrics(wide, entity="device_id", time="timestamp", metrics=["site"])


# --- the page --------------------------------------------------------------------------------


def test_demo_fleet_loads_and_is_used_in_one_click() -> None:
    at = _app()
    assert not at.exception
    assert DATA not in at.session_state
    at.button(key="load_demo").click().run()
    assert not at.exception
    data = at.session_state[DATA]
    assert data.frame["device_id"].n_unique() == 300
    assert (data.entity, data.time, data.metrics) == (
        "device_id",
        "timestamp",
        ["temperature", "vibration", "current"],
    )
    assert [s.value for s in at.success] == [f"Loaded 300 devices, {data.frame.height:,} readings"]
    assert at.dataframe[0].value.shape == (200, 5)  # the preview
    described = at.dataframe[1].value  # describe_table: one row per column
    assert described["name"].tolist() == ["device_id", "timestamp", *data.metrics]
    assert described.loc[described["name"] == "device_id", "unique"].item() == 300


def test_demo_filters_narrow_what_is_used() -> None:
    at = _app()
    at.button(key="load_demo").click().run()
    at.multiselect(key="filter_devices").set_value(["dev-0001", "dev-0002"]).run()
    lo, _ = at.slider(key="filter_time").value
    at.slider(key="filter_time").set_range(lo, lo + timedelta(hours=9)).run()
    at.button(key="use_data").click().run()
    assert not at.exception
    data = at.session_state[DATA]
    assert sorted(data.frame["device_id"].unique()) == ["dev-0001", "dev-0002"]
    assert data.frame["timestamp"].max() <= lo + timedelta(hours=9)
    assert data.label.endswith("(filtered)")
    assert any("Loaded 2 devices" in s.value for s in at.success)


def test_the_device_filter_starts_empty_and_means_every_device() -> None:
    at = _app()
    at.button(key="load_demo").click().run()
    devices = at.multiselect(key="filter_devices")
    assert devices.value == [] and len(devices.options) == 300  # no 300 chips pre-selected
    assert "all 300 devices" in devices.placeholder
    at.button(key="use_data").click().run()
    assert not at.exception
    assert at.session_state[DATA].frame["device_id"].n_unique() == 300
    assert not at.session_state[DATA].label.endswith("(filtered)")


@pytest.mark.parametrize("name", ["r.csv", "r.parquet"])
def test_upload_guesses_roles_and_loads(name: str) -> None:
    frame = _readings()
    at = _upload(name, _csv(frame) if name.endswith(".csv") else _parquet(frame))
    assert not _errors(at)
    assert at.selectbox(key="col_entity").value == "device_id"
    assert at.selectbox(key="col_time").value == "timestamp"
    assert at.multiselect(key="col_metrics").value == ["temperature", "current"]
    at.button(key="use_data").click().run()
    data = at.session_state[DATA]
    assert data.frame.schema["timestamp"] == pl.Datetime("us")
    assert data.frame.height == 12
    assert data.label == f"file {name}"
    assert any("Loaded 3 devices, 12 readings" in s.value for s in at.success)


def test_a_semicolon_upload_is_sniffed_and_a_wrong_separator_is_named() -> None:
    frame = _readings()
    content = frame.write_csv(separator=";").encode()
    at = _upload("r.csv", content)
    assert not _errors(at)
    assert at.selectbox(key="col_entity").value == "device_id"
    assert at.multiselect(key="col_metrics").value == ["temperature", "current"]
    at.button(key="use_data").click().run()
    assert at.session_state[DATA].frame.height == 12
    # a separator chosen by hand that is not the file's: the message names the separator
    at.selectbox(key="upload_separator").set_value("tab").run()
    assert len(at.error) == 1
    message = at.error[0].value
    assert "read as one column" in message and "tab" in message and "Separator" in message
    assert "role" not in message


def test_a_latin1_upload_reads_with_its_encoding() -> None:
    content = "device_id;timestamp;temp\nkühl;2024-01-01T00:00:00;1.5\n".encode("latin-1")
    at = _upload("r.csv", content)
    assert len(at.error) == 1 and "Encoding" in at.error[0].value
    at.text_input(key="upload_encoding").set_value("latin-1").run()
    assert not _errors(at)
    assert at.selectbox(key="col_entity").value == "device_id"


def test_roles_follow_a_newly_read_table() -> None:
    first = _readings()
    at = _upload("a.csv", _csv(first))
    at.selectbox(key="col_entity").set_value("site").run()
    second = first.rename({"device_id": "unit", "timestamp": "when", "temperature": "volt"})
    second = second.drop("site")
    at.file_uploader(key="upload").set_value(("b.csv", _csv(second), "text/csv")).run()
    assert not at.exception and not _errors(at)
    assert at.selectbox(key="col_entity").options == ["unit", "when", "volt", "current"]
    assert at.selectbox(key="col_entity").value == "unit"
    assert at.selectbox(key="col_time").value == "when"
    assert at.multiselect(key="col_metrics").value == ["volt", "current"]
    at.button(key="use_data").click().run()
    data = at.session_state[DATA]
    assert (data.entity, data.time, data.metrics) == ("unit", "when", ["volt", "current"])


def test_an_unreadable_upload_shows_one_clear_error() -> None:
    at = _upload("broken.parquet", b"garbage, not parquet")
    assert len(at.error) == 1
    assert "cannot read 'broken.parquet' as Parquet" in at.error[0].value
    assert RAW not in at.session_state
    assert not at.button  # no roles, nothing to use


def test_an_upload_over_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_view, "MAX_UPLOAD_BYTES", 100)
    at = _upload("big.csv", _csv(_readings()))
    assert len(at.error) == 1
    assert "above the 1 GB upload limit" in at.error[0].value
    assert RAW not in at.session_state


def test_a_text_metric_shows_an_error_and_stores_nothing() -> None:
    at = _upload("r.csv", _csv(_readings()))
    at.multiselect(key="col_metrics").set_value(["temperature", "site"]).run()
    assert not at.exception
    assert len(at.error) == 1
    assert "column 'site' in the table is not numeric" in at.error[0].value
    assert not at.dataframe  # no preview of a wrong table
    assert at.button(key="use_data").disabled
    assert DATA not in at.session_state


def test_the_same_column_in_two_roles_is_an_error() -> None:
    at = _upload("r.csv", _csv(_readings()))
    at.selectbox(key="col_time").set_value("device_id").run()
    assert "column 'device_id' is chosen both as the entity and as the time" in _errors(at)[0]
    assert at.button(key="use_data").disabled


def test_a_time_role_on_text_is_an_error() -> None:
    at = _upload("r.csv", _csv(_readings()))
    at.selectbox(key="col_time").set_value("site").run()
    assert "time column 'site'" in _errors(at)[0]
    assert DATA not in at.session_state


def test_no_metric_is_an_error() -> None:
    at = _upload("r.csv", _csv(_readings()))
    at.multiselect(key="col_metrics").set_value([]).run()
    assert "no metric column is chosen" in _errors(at)[0]


def test_a_long_table_is_pivoted() -> None:
    wide = _readings().drop("site")
    long = wide.unpivot(
        index=["device_id", "timestamp"], variable_name="metric", value_name="reading"
    )
    at = _upload("long.csv", _csv(long))
    at.radio(key="layout").set_value("LONG").run()
    assert at.selectbox(key="col_key").value == "metric"
    assert at.selectbox(key="col_value").value == "reading"
    assert sorted(at.multiselect(key="col_metrics").value) == ["current", "temperature"]
    at.button(key="use_data").click().run()
    assert not at.exception
    data = at.session_state[DATA]
    assert data.frame.height == 12
    assert (
        data.frame.sort("device_id", "timestamp")["temperature"].to_list()
        == wide["temperature"].to_list()
    )


# --- PostgreSQL ------------------------------------------------------------------------------


def _fill_pg(at: AppTest, url: str, *, port: str | None = None, password: str = "") -> None:
    from sqlalchemy.engine import make_url

    parts = make_url(url)
    at.radio(key="data_source").set_value("PostgreSQL").run()
    at.text_input(key="pg_host").input(parts.host or "127.0.0.1")
    at.text_input(key="pg_port").input(port or str(parts.port or 5432))
    at.text_input(key="pg_database").input(parts.database or "")
    at.text_input(key="pg_user").input(parts.username or "")
    at.text_input(key="pg_password").input(password or (parts.password or ""))


@pytest.mark.services
def test_postgres_table_loads(pg_url: str, pg_schema: str) -> None:
    import sqlalchemy as sa

    from opslens.io.sources.sql import engine_url

    table = f"{pg_schema}.readings"
    engine = sa.create_engine(engine_url(pg_url))
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"create table {table} (device text, ts timestamp, temp double precision)")
        )
        conn.execute(
            sa.text(f"insert into {table} values (:d, :t, :v)"),
            [
                {"d": d, "t": datetime(2024, 1, 1) + timedelta(hours=h), "v": float(h)}
                for d in ("pump-1", "pump-2")
                for h in range(5)
            ],
        )
    engine.dispose()
    at = _app()
    _fill_pg(at, pg_url)
    at.text_input(key="pg_table").input(table)
    at.button(key="pg_load").click().run()
    assert not at.exception
    assert not _errors(at)
    assert at.selectbox(key="col_entity").value == "device"
    assert at.selectbox(key="col_time").value == "ts"
    assert at.multiselect(key="col_metrics").value == ["temp"]
    at.button(key="use_data").click().run()
    data = at.session_state[DATA]
    assert data.frame.height == 10
    assert data.label.startswith("PostgreSQL ") and table in data.label
    assert any("Loaded 2 devices, 10 readings" in s.value for s in at.success)


def test_an_unreachable_database_shows_one_error_without_the_password() -> None:
    at = _app()
    _fill_pg(at, "postgresql://postgres@127.0.0.1/test", port="1", password=PASSWORD)
    at.text_input(key="pg_table").input("readings")
    at.button(key="pg_load").click().run()
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert "could not connect to the database" in message
    assert "127.0.0.1:1" in message
    assert "source.url" not in message and "Host, Port" in message
    shown = " ".join(str(e.value) for e in (*at.error, *at.markdown, *at.caption))
    assert PASSWORD not in shown and "S3cr%24t" not in shown
    assert DATA not in at.session_state and RAW not in at.session_state
