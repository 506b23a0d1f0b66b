"""read_elasticsearch against a loopback server speaking the documented PIT/search responses.

No Elasticsearch server can be installed here; tests/fakes/es_loopback.py answers
``GET /``, ``POST /<index>/_pit``, ``POST /_search`` (pit + search_after) and
``DELETE /_pit`` as Elasticsearch 9 does, and records every request.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import polars as pl
import pytest
from elasticsearch import ConnectionError as EsConnectionError
from elasticsearch import Elasticsearch
from polars.testing import assert_frame_equal
from tests.fakes.es_loopback import EsLoopback

from opslens.errors import DataError, OpslensWarning, SourceError
from opslens.io.sources.elasticsearch import build_query, read_elasticsearch

DEVICES = ["dev-a", "dev-b", "dev-c"]
N_READINGS = 2_000
T0 = datetime(2024, 1, 1)


def _expected() -> pl.DataFrame:
    """3 devices x 2,000 one-minute readings, two metrics (cpu, temp)."""
    rng = np.random.default_rng(7)
    n = len(DEVICES) * N_READINGS
    return pl.DataFrame(
        {
            "device": np.repeat(DEVICES, N_READINGS),
            "timestamp": pl.datetime_range(
                T0, T0 + timedelta(minutes=N_READINGS - 1), "1m", eager=True
            ).to_list()
            * len(DEVICES),
            "cpu": rng.normal(50.0, 10.0, n),
            "temp": rng.normal(30.0, 2.0, n),
        },
        schema={
            "device": pl.String,
            "timestamp": pl.Datetime("us"),
            "cpu": pl.Float64,
            "temp": pl.Float64,
        },
    )


EXPECTED = _expected()


def _docs(frame: pl.DataFrame, style: str) -> list[dict[str, Any]]:
    """Documents in time order (devices interleaved, so every timestamp ties three times)."""
    ordered = frame.sort(["timestamp", "device"])
    if style == "iso_z":
        ts = ordered["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    elif style == "iso_offset":  # same instants written in +02:00
        ts = (
            ordered["timestamp"]
            .dt.replace_time_zone("UTC")
            .dt.convert_time_zone("Etc/GMT-2")
            .dt.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        )
    elif style == "epoch_ms":
        ts = ordered["timestamp"].dt.epoch("ms")
    else:
        raise ValueError(style)
    return ordered.with_columns(ts.alias("timestamp")).to_dicts()


@pytest.fixture(scope="module")
def server() -> Iterator[EsLoopback]:
    with EsLoopback() as es:
        es.add_index("metrics", _docs(EXPECTED, "iso_z"), date_fields=["timestamp"])
        es.add_index("metrics_ms", _docs(EXPECTED, "epoch_ms"), date_fields=["timestamp"])
        es.add_index("metrics_tz", _docs(EXPECTED, "iso_offset"), date_fields=["timestamp"])
        yield es


def _read(es: EsLoopback, **kwargs: Any) -> pl.DataFrame:
    args: dict[str, Any] = {
        "hosts": es.url,
        "index": "metrics",
        "time_field": "timestamp",
        "entity_field": "device",
        "fields": ["cpu", "temp"],
        "page_size": 500,
    }
    args.update(kwargs)
    return read_elasticsearch(**args)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_pit_paging_returns_the_whole_index_exactly(server: EsLoopback) -> None:
    before = len(server.requests)
    got = _read(server)
    assert got.columns == ["device", "timestamp", "cpu", "temp"]
    assert got["timestamp"].is_sorted()
    assert_frame_equal(got.sort(["device", "timestamp"]), EXPECTED)

    calls = server.requests[before:]
    opens = [r for r in calls if r.path.endswith("/_pit") and r.method == "POST"]
    searches = [r for r in calls if r.path == "/_search"]
    closes = [r for r in calls if r.method == "DELETE" and r.path == "/_pit"]
    assert len(opens) == 1 and opens[0].path == "/metrics/_pit"
    assert opens[0].params["keep_alive"] == "2m"
    # 6,000 docs / 500 = 12 full pages, then one empty page ends the loop
    assert len(searches) == 13
    assert all("from" not in r.body and "from" not in r.params for r in searches)
    assert all(r.body["size"] == 500 and r.body["track_total_hits"] is False for r in searches)
    assert all(r.body["sort"] == [{"timestamp": "asc"}, {"_shard_doc": "asc"}] for r in searches)
    assert "search_after" not in searches[0].body
    assert all(len(r.body["search_after"]) == 2 for r in searches[1:])
    assert sorted(searches[0].body["_source"]["includes"]) == ["cpu", "device", "temp", "timestamp"]
    # the newest PIT id is always the one used next (the server hands out a new one each time)
    expected_ids = [opens[0].response_pit_id] + [r.response_pit_id for r in searches[:-1]]
    assert [r.body["pit"]["id"] for r in searches] == expected_ids
    assert len(set(expected_ids)) == 13
    assert all(r.body["pit"]["keep_alive"] == "2m" for r in searches)
    assert len(closes) == 1 and closes[0].body == {"id": searches[-1].response_pit_id}
    assert closes[0].status == 200
    assert server.open_pits == 0


@pytest.mark.parametrize("index", ["metrics_ms", "metrics_tz"])
def test_epoch_millis_and_offset_iso_times_parse_to_the_same_frame(
    server: EsLoopback, index: str
) -> None:
    got = _read(server, index=index, page_size=2_500)
    assert got.schema["timestamp"] == pl.Datetime("us")
    assert_frame_equal(got.sort(["device", "timestamp"]), EXPECTED)


def test_time_window_and_entity_filters_give_exact_subsets(server: EsLoopback) -> None:
    start, end = T0 + timedelta(hours=5), T0 + timedelta(hours=10)
    window = _read(server, start=start, end=end)
    assert window.height == 300 * 3
    stamps = window["timestamp"].to_list()
    assert min(stamps) == start and max(stamps) == end - timedelta(minutes=1)

    picked = _read(server, entities=["dev-a", "dev-c"])
    assert picked.height == 2 * N_READINGS
    assert set(picked["device"].unique()) == {"dev-a", "dev-c"}

    # aware bounds are converted to UTC: 07:00+02:00 is 05:00Z
    plus2 = timezone(timedelta(hours=2))
    both = _read(
        server,
        start=datetime(2024, 1, 1, 7, tzinfo=plus2),
        end=datetime(2024, 1, 1, 10, tzinfo=UTC),
        entities=["dev-b"],
        page_size=128,
    )
    want = EXPECTED.filter(
        (pl.col("device") == "dev-b") & pl.col("timestamp").is_between(start, end, closed="left")
    )
    assert both.height == 300
    assert_frame_equal(both.sort(["device", "timestamp"]), want)

    user_query = _read(server, query={"range": {"cpu": {"gte": 60.0}}})
    assert user_query.height == EXPECTED.filter(pl.col("cpu") >= 60.0).height
    assert user_query.height > 0


def test_no_hits_give_an_empty_frame_with_the_columns(server: EsLoopback) -> None:
    got = _read(server, start=datetime(2030, 1, 1))
    assert got.height == 0
    assert got.schema == EXPECTED.schema
    assert server.open_pits == 0


def test_unreachable_host_fails_fast_naming_host_and_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    attempts: list[Any] = []  # every TCP connect the client makes to that port
    connect = socket.socket.connect

    def counting_connect(sock: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[1:2] == (port,):
            attempts.append(address)
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", counting_connect)
    with pytest.raises(SourceError) as info:
        read_elasticsearch(
            hosts=f"http://elastic:hunter2@127.0.0.1:{port}",
            index="metrics",
            time_field="timestamp",
        )
    message = str(info.value)
    # fails fast: one refused connection and the reader gives up (the client's default would
    # retry 3 times; a sniff or product-check request would be a second attempt)
    assert attempts == [("127.0.0.1", port)]
    assert f"127.0.0.1:{port}" in message
    assert "hunter2" not in message and "elastic:***@" in message
    assert "could not reach Elasticsearch" in message
    assert message.endswith("fix: check source.hosts and that the server is running")
    assert "\n" not in message


def test_unknown_index_names_the_index(server: EsLoopback) -> None:
    with pytest.raises(SourceError, match=r"index 'nope' does not exist") as info:
        _read(server, index="nope")
    assert server.url in str(info.value) and "fix: check source.index" in str(info.value)


def test_wrong_credentials_are_reported_without_the_password() -> None:
    docs = _docs(EXPECTED.head(10), "iso_z")
    with EsLoopback(basic_auth=("elastic", "right-one")) as es:
        es.add_index("metrics", docs, date_fields=["timestamp"])
        with pytest.raises(SourceError) as info:
            _read(es, basic_auth=("elastic", "wrong-pass-123"))
        message = str(info.value)
        assert "credentials" in message and "401" in message and es.url in message
        assert "wrong-pass-123" not in message and "right-one" not in message
        assert es.requests[-1].status == 401
        ok = _read(es, basic_auth=("elastic", "right-one"))
        assert_frame_equal(
            ok.sort(["device", "timestamp"]), EXPECTED.head(10).sort(["device", "timestamp"])
        )


def test_refused_query_and_failed_shards_and_other_products_are_source_errors() -> None:
    docs = _docs(EXPECTED.head(30), "iso_z")
    with EsLoopback() as es:
        es.add_index("metrics", docs, date_fields=["timestamp"])
        with pytest.raises(SourceError, match=r"400 parsing_exception: unknown query \[bogus\]"):
            _read(es, query={"bogus": {}})
        assert es.open_pits == 0  # closed although the search failed
    with EsLoopback(shard_failures=1) as es:
        es.add_index("metrics", docs, date_fields=["timestamp"])
        with pytest.raises(SourceError, match=r"1 of 2 shards of index 'metrics' failed"):
            _read(es)
        assert es.open_pits == 0
    with EsLoopback(product_header=False) as es:
        es.add_index("metrics", docs, date_fields=["timestamp"])
        with pytest.raises(SourceError, match="is not Elasticsearch"):
            _read(es)


def test_nested_fields_flatten_and_bad_times_raise_data_error() -> None:
    docs = [
        {
            "host": {"name": f"h{i % 2}"},
            "@timestamp": 1_704_067_200_000 + i * 1_000,
            "m": {"cpu": float(i)},
        }
        for i in range(7)
    ]
    with EsLoopback() as es:
        es.add_index("beats", docs, date_fields=["@timestamp"])
        es.add_index("broken", [{"ts": "yesterday-ish", "v": 1.0}], date_fields=[])
        got = read_elasticsearch(
            hosts=[es.url],
            index="beats",
            time_field="@timestamp",
            entity_field="host.name",
            fields=["m.cpu"],
            page_size=3,
        )
        assert got.columns == ["host.name", "@timestamp", "m.cpu"]
        assert got["m.cpu"].to_list() == [float(i) for i in range(7)]
        assert got["@timestamp"][6] == datetime(2024, 1, 1, 0, 0, 6)
        assert len(es.searches()) == 3  # pages of 3, 3, 1
        with pytest.raises(DataError, match=r"time field 'ts' of index 'broken'"):
            read_elasticsearch(hosts=es.url, index="broken", time_field="ts")


def test_bad_arguments_are_reported_before_connecting() -> None:
    with pytest.raises(SourceError, match="not a full URL"):
        read_elasticsearch(hosts="127.0.0.1:9200", index="m", time_field="ts")
    with pytest.raises(SourceError, match="without the entity field"):
        build_query(time_field="ts", entities=["a"])
    with pytest.raises(SourceError, match="page size 0"):
        read_elasticsearch(hosts="http://127.0.0.1:9200", index="m", time_field="ts", page_size=0)


class _NoClose(Elasticsearch):
    """A client whose PIT close fails, as when the connection drops at the very end."""

    def close_point_in_time(self, *args: Any, **kwargs: Any) -> Any:
        raise EsConnectionError("connection reset")


def test_given_client_is_used_and_a_failed_close_only_warns() -> None:
    docs = _docs(EXPECTED.head(12), "epoch_ms")
    with EsLoopback() as es:
        es.add_index("metrics", docs, date_fields=["timestamp"])
        client = _NoClose(es.url, max_retries=0)
        with pytest.warns(OpslensWarning, match="expires by itself after 2m"):
            got = _read(es, hosts="http://unused:9200", client=client, page_size=5)
        assert_frame_equal(
            got.sort(["device", "timestamp"]), EXPECTED.head(12).sort(["device", "timestamp"])
        )
        assert client.info()["version"]["number"].startswith("9.")  # still open: not ours to close
        client.close()
        with pytest.raises(
            SourceError,
            match=r"index 'gone' does not exist on Elasticsearch at " + es.url.replace(".", r"\."),
        ):
            _read(es, hosts="http://unused:9200", client=Elasticsearch(es.url), index="gone")
