"""A password given through DB_URL appears in no log line, manifest, MLflow record, report or error."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from opslens.io.sources.sql import engine_url
from opslens.synthetic.trips import make_trips
from tests.fakes.cli import run_cli

pytestmark = pytest.mark.slow

SECRET = "TopSecret-4711"
PROJECT = """
analyses:
  - name: trip-eta
    recipe: distribution
    source: {{kind: sql, url: "${{DB_URL}}", table: "{table}"}}
    columns: {{time: started_at, target: duration_min, categorical: [route, hour_band]}}
    params: {{min_combination_size: 20, xgboost: {{n_estimators: 20}}}}
"""


@pytest.mark.services
def test_password_never_leaks(
    tmp_path: Path, pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = sa.create_engine(engine_url(pg_url))
    with engine.begin() as conn:
        make_trips(n_rows=5_000, seed=4, n_routes=4).trips.to_pandas().to_sql(
            "trips", conn, schema=pg_schema, index=False
        )
    engine.dispose()
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
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name != ".env":
            assert SECRET.encode() not in path.read_bytes(), f"password found in {path}"
            checked += 1
    names = {p.name for p in tmp_path.rglob("*")}
    assert {"manifest.json", "run.log", "report.html", "mlflow.db"} <= names
    assert checked > 20
