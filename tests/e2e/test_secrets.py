"""A secret, in every form it can take, appears in no output, log, manifest, MLflow record,
artifact, report or error of run, report, runs, stream, a failing run and --debug."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from opslens.io.sources.sql import engine_url
from opslens.synthetic.trips import make_trips
from tests.fakes.cli import Result, run_cli
from tests.fakes.es_loopback import EsLoopback

pytestmark = [pytest.mark.slow, pytest.mark.services]

SECRET = "TopSecret-4711"
PROJECT = """
analyses:
  - name: trip-eta
    recipe: distribution
    source: {{kind: sql, url: "${{DB_URL}}", table: "{table}"}}
    columns: {{time: started_at, target: duration_min, categorical: [route, hour_band]}}
    params: {{min_combination_size: 20, xgboost: {{n_estimators: 20}}}}
"""
COLUMNS = "{time: started_at, target: duration_min, categorical: [route, hour_band]}"
PARAMS = "{min_combination_size: 20, xgboost: {n_estimators: 10}}"


def _trips_to_postgres(pg_url: str, schema: str, n_rows: int) -> pl.DataFrame:
    trips = make_trips(n_rows=n_rows, seed=4, n_routes=4).trips
    engine = sa.create_engine(engine_url(pg_url))
    with engine.begin() as conn:
        trips.to_pandas().to_sql("trips", conn, schema=schema, index=False)
    engine.dispose()
    return trips


def _written_files(root: Path, skip: set[str]) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and path.name not in skip:
            yield path


@pytest.mark.services
def test_password_never_leaks(
    tmp_path: Path, pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _trips_to_postgres(pg_url, pg_schema, 5_000)
    url_with_password = pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    assert SECRET in url_with_password
    (tmp_path / ".env").write_text(f"DB_URL={url_with_password}\n")
    monkeypatch.delenv("DB_URL", raising=False)
    (tmp_path / "project.yaml").write_text(PROJECT.format(table=f"{pg_schema}.trips"))
    (tmp_path / "in.jsonl").write_text('{"route": "R01", "hour_band": "night"}\n')

    outputs = []
    for args in (
        ["run"],
        ["report", "trip-eta"],
        ["runs"],
        ["stream", "trip-eta", "--input", "in.jsonl"],
    ):
        result = run_cli(args, tmp_path, monkeypatch)
        assert result.code == 0, result.err
        outputs += [result.out, result.err]
    # a failing run (missing table) must not show it either
    (tmp_path / "project.yaml").write_text(PROJECT.format(table=f"{pg_schema}.nope"))
    failed = run_cli(["run"], tmp_path, monkeypatch)
    assert failed.code == 2 and "postgres:***@" in failed.err
    outputs += [failed.out, failed.err]
    # and neither must an unreachable server
    (tmp_path / ".env").write_text(f"DB_URL=postgresql://postgres:{SECRET}@127.0.0.1:1/test\n")
    unreachable = run_cli(["run"], tmp_path, monkeypatch)
    assert unreachable.code == 2
    outputs += [unreachable.out, unreachable.err]

    for text in outputs:
        assert SECRET not in text
    checked = 0
    for path in _written_files(tmp_path, {".env"}):
        assert SECRET.encode() not in path.read_bytes(), f"password found in {path}"
        checked += 1
    names = {p.name for p in tmp_path.rglob("*")}
    assert {"manifest.json", "run.log", "report.html", "mlflow.db"} <= names
    assert checked > 20


# --- every form of a secret: literal keys, ?password=, a space, an unencoded '@' ---------------

# each canary has two halves so that half a secret shown is caught too
CANARIES = {
    "es-password": ("Cn4ryLit", "Zq1pw"),
    "es-api-key": ("Cn4ryKey", "Zq2ak"),
    "pg-query": ("Cn4ryQry", "Zq3qs"),
    "pg-space": ("Cn4rySp ", "Zq4sp"),
    "pg-at": ("Cn4ry@At", "Zq5at"),
}


def _canary(name: str) -> str:
    return "".join(CANARIES[name])


def _forms_project(es_url: str, host: str, table: str) -> str:
    sources = {
        "es-password": (
            f'{{kind: elasticsearch, hosts: "{es_url}", index: trips, username: elastic, '
            f'password: "{_canary("es-password")}"}}'
        ),
        "es-api-key": (
            f'{{kind: elasticsearch, hosts: "{es_url}", index: trips, '
            f'api_key: "{_canary("es-api-key")}"}}'
        ),
        "pg-query": (
            f'{{kind: sql, url: "postgresql://postgres@{host}/test?password={_canary("pg-query")}", '
            f'table: "{table}"}}'
        ),
        "pg-space": (
            f'{{kind: sql, url: "postgresql://postgres:{_canary("pg-space")}@{host}/test", '
            f'table: "{table}"}}'
        ),
        "pg-at": (
            f'{{kind: sql, url: "postgresql://postgres:{_canary("pg-at")}@{host}/test", '
            f'table: "{table}"}}'
        ),
    }
    analyses = "".join(
        f"  - name: {name}\n    recipe: distribution\n    source: {source}\n"
        f"    columns: {COLUMNS}\n    params: {PARAMS}\n"
        for name, source in sources.items()
    )
    return f"analyses:\n{analyses}"


def _leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [half for halves in CANARIES.values() for half in halves if half.encode() in data]


def test_every_secret_form_is_masked_everywhere(
    tmp_path: Path, pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips = _trips_to_postgres(pg_url, pg_schema, 3_000)
    host = pg_url.split("@", 1)[1].split("/", 1)[0]
    docs = trips.with_columns(pl.col("started_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_dicts()
    with EsLoopback() as es:
        es.add_index("trips", docs, date_fields=["started_at"])
        project = tmp_path / "project.yaml"
        project.write_text(_forms_project(es.url, host, f"{pg_schema}.trips"))
        (tmp_path / "in.jsonl").write_text('{"route": "R01", "hour_band": "night"}\n')
        results: list[Result] = [run_cli(["run"], tmp_path, monkeypatch)]
        assert results[0].code == 0, results[0].err
        for name in CANARIES:
            for args in (["report", name], ["stream", name, "--input", "in.jsonl"]):
                results.append(run_cli(args, tmp_path, monkeypatch))
                assert results[-1].code == 0, (args, results[-1].err)
        results.append(run_cli(["--debug", "report", "pg-at"], tmp_path, monkeypatch))
        assert results[-1].code == 0, results[-1].err
        results.append(run_cli(["runs"], tmp_path, monkeypatch))
        assert results[-1].code == 0, results[-1].err
        # failing runs, plain and with --debug: a missing table or index
        broken = _forms_project(es.url, host, f"{pg_schema}.nope").replace(
            "index: trips", "index: gone"
        )
        project.write_text(broken)
        for name in CANARIES:
            for debug in ([], ["--debug"]):
                failed = run_cli([*debug, "run", "--analysis", name], tmp_path, monkeypatch)
                assert failed.code == 2, (name, failed.err)
                assert "error:" in failed.err
                results.append(failed)
        # an unreachable host names it, secrets still hidden
        project.write_text(broken.replace(host, "127.0.0.1:1"))
        for name in ("pg-query", "pg-space", "pg-at"):
            failed = run_cli(["--debug", "run", "--analysis", name], tmp_path, monkeypatch)
            assert failed.code == 2 and "127.0.0.1:1" in failed.err, failed.err
            results.append(failed)

    for result in results:
        assert not _leaks(result.out + result.err), (_leaks(result.out + result.err), result.err)
    checked = []
    for path in _written_files(tmp_path, {"project.yaml"}):
        assert not _leaks(path.read_bytes()), f"{_leaks(path.read_bytes())} found in {path}"
        checked.append(path.name)
    assert {"manifest.json", "run.log", "report.html", "mlflow.db"} <= set(checked)
    assert checked.count("manifest.json") >= 2 * len(CANARIES)  # runs/ and MLflow's artifacts
    # the secrets are masked, not dropped: the manifest still says a password was given
    manifest = next(tmp_path.glob("runs/es-password/*/manifest.json"))
    assert json.loads(manifest.read_text())["config"]["source"]["password"] == "***"
