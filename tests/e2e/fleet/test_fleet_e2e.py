"""The fleet recipe end to end on a synthetic fleet with planted groups and failing devices."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import numpy as np
import polars as pl
import polars.selectors as cs
import pytest
from sklearn.metrics import adjusted_rand_score, roc_auc_score
from tests.fakes.cli import run_cli

from opslens.api import load_project
from opslens.runner import run_analysis
from opslens.synthetic.fleet import FleetData, make_fleet
from opslens.tracking.runs import open_run
from opslens.tracking.tracker import MemoryTracker

pytestmark = pytest.mark.slow

PROJECT = """
tracking: {enabled: false}
analyses:
  - name: fleet
    recipe: fleet
    source: {kind: file, path: readings.parquet}
    columns: {entity: device_id, time: timestamp, metrics: [temperature, vibration, current]}
    params:
      failures: {path: failures.csv}
      lead_time: {window: 3d, step: 1d, horizon: 10d, top_k: 10}
"""


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FleetData, MemoryTracker]:
    folder = tmp_path_factory.mktemp("fleet")
    data = make_fleet(n_devices=160, n_points=600, n_failing=10, seed=1)
    data.readings.write_parquet(folder / "readings.parquet")
    data.truth.filter(pl.col("failed")).select("device_id", "failure_time").write_csv(
        folder / "failures.csv"
    )
    (folder / "project.yaml").write_text(PROJECT)
    tracker = MemoryTracker()
    run_analysis(load_project(folder / "project.yaml"), "fleet", tracker=tracker)
    return folder, data, tracker


def test_planted_groups_and_failures_are_recovered(
    fleet_run: tuple[Path, FleetData, MemoryTracker],
) -> None:
    folder, data, tracker = fleet_run
    run = open_run(folder / "runs", "fleet")
    labels = run.table("group_labels").join(data.truth, on="device_id")
    aris = {
        m: adjusted_rand_score(labels["group"], labels[m])
        for m in ("kmeans", "dbscan", "agglomerative")
    }
    assert max(aris.values()) >= 0.8, aris

    scores = run.table("rare_scores").join(data.truth, on="device_id")
    auroc = roc_auc_score(scores["failed"].to_numpy(), scores["combined"].to_numpy())
    assert auroc >= 0.85, auroc
    # the run's failure AUROC is the risk ranking's, with weights learned out of fold (a
    # device's own label never sets its weight): it is the risk table's, and stays high
    risk = run.table("risk").join(data.truth, on="device_id")
    risk_auroc = roc_auc_score(risk["failed"].to_numpy(), risk["risk"].to_numpy())
    assert abs(tracker.metrics["failure_auroc"] - risk_auroc) < 1e-12
    assert risk_auroc >= 0.98, risk_auroc
    assert len(run.facts["health"]["fold_weights"]) == 5

    facts = run.facts["failures"]
    method = facts["method"]
    failed = labels.filter(pl.col("failed"))
    holding = failed[method].mode()[0]
    row = next(e for e in facts["enrichment"] if e["group"] == holding and e["method"] == method)
    assert row["enriched"] and row["q_value"] < 0.01, row
    assert facts["lead_time"]["n_failed"] == 10


def test_every_group_of_every_method_is_checked_and_the_most_enriched_leads(
    fleet_run: tuple[Path, FleetData, MemoryTracker],
) -> None:
    folder, _, _ = fleet_run
    run = open_run(folder / "runs", "fleet")
    facts = run.facts
    labels = run.table("group_labels")
    enrichment = run.table("failure_enrichment")
    for method in ("kmeans", "dbscan", "agglomerative"):
        groups = set(labels[method].unique().to_list())
        assert set(enrichment.filter(pl.col("method") == method)["group"].to_list()) == groups
    assert (labels["dbscan"] == -1).any()  # DBSCAN noise is a row of its own
    # one Benjamini-Hochberg family over every group of every method
    from statsmodels.stats.multitest import multipletests

    q = multipletests(enrichment["p_value"].to_numpy(), method="fdr_bh")[1]
    np.testing.assert_allclose(np.sort(enrichment["q_value"].to_numpy()), np.sort(q))
    top = facts["failures"]["most_enriched"]
    assert top["q_value"] == enrichment["q_value"].min() and top["enriched"]
    assert top["n_failed"] >= 8  # the planted failing devices sit together
    first = facts["failures"]["findings"][0]
    assert first.startswith(f"{top['n_failed']} of the 10 known failures are in ")
    assert "it stands apart by" in first
    contrasts = run.table("contrasts") if run.has("tables/contrasts.parquet") else None
    assert contrasts is None or {"method"} <= set(contrasts.columns)
    # groups are counted without DBSCAN's noise
    assert all(s["group"] >= 0 for s in facts["groups"]["sizes"])


def test_verdict_and_lead_time_carry_their_tests(
    fleet_run: tuple[Path, FleetData, MemoryTracker],
) -> None:
    folder, _, tracker = fleet_run
    facts = open_run(folder / "runs", "fleet").facts["failures"]
    ranking = facts["ranking"]
    assert ranking["auroc_p"] < 0.01 and ranking["permutations"] == 2000
    assert ranking["verdict"].startswith("useful risk indicator: AUROC")
    assert "permutation p = " in ranking["verdict"]
    assert tracker.metrics["failure_auroc_p"] == ranking["auroc_p"]
    lead = facts["lead_time"]
    assert lead["n_healthy"] == 150  # every healthy device scored at a pseudo-failure date
    assert lead["healthy_detected"] < lead["n_healthy"]
    assert lead["share_detected"] > lead["healthy_share_detected"]
    assert lead["beats_chance"] and lead["p_value"] < 0.01
    assert "better than chance (Fisher p" in lead["sentence"]
    assert lead["baseline"]["n_failed"] == 10  # the per-device rule, on the same devices
    lead_rows = open_run(folder / "runs", "fleet").table("lead_times")
    assert lead_rows.filter(~pl.col("failed")).height == 150


def test_fingerprints_have_the_named_features(
    fleet_run: tuple[Path, FleetData, MemoryTracker],
) -> None:
    folder, _, _ = fleet_run
    fp = open_run(folder / "runs", "fleet").table("fingerprints")
    assert fp.height == 160
    per_metric = {c.split("__", 1)[1] for c in fp.columns if c.startswith("temperature__")}
    assert len(per_metric) >= 30
    for needed in (
        "sample_entropy",
        "permutation_entropy",
        "adf_pvalue",
        "spectral_centroid",
        "missing_ratio",
    ):
        assert needed in per_metric


def test_fleet_report(
    fleet_run: tuple[Path, FleetData, MemoryTracker], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _, _ = fleet_run
    result = run_cli(["report", "fleet"], folder, monkeypatch)
    assert result.code == 0, result.err
    run = open_run(folder / "runs", "fleet")
    html = (run.path / "report.html").read_text()
    for title in (
        "Rare devices",
        "Behaviour groups",
        "Known failures",
        "Findings",
        "The rarest devices up close",
    ):
        assert title in html
    assert run.facts["failures"]["ranking"]["verdict"].split(":")[0] in html
    assert html.count("data:image/png;base64,") >= 6
    # wording for people: quota, groups without noise, plain feature names, durations, p-values
    assert "a fixed quota, the 5%" in html
    assert len(run.facts["failures"]["findings"][0].split()) > 0
    assert "Sensor faults" in html and "Devices most at risk" in html
    n_groups = len(run.facts["groups"]["sizes"])
    assert f"{n_groups} behaviour group" in html
    story = unescape(html.split('<section id="s-facts">', 1)[0])  # the facts appendix stays raw
    assert "σ" not in story and "__" not in story
    assert re.search(r"median \d+ days?( \d+ hours?)? ahead", story)
    assert "1 days" not in story and not re.search(r"\d\.\d+ (days|hours)", story)
    assert "matched pseudo-failure dates" in story
    assert run.facts["failures"]["findings"][0] in story


BAD = """
tracking: {{enabled: false}}
analyses:
  - name: fleet
    recipe: fleet
    source: {source}
    columns: {{entity: {entity}, time: timestamp, metrics: [temperature, vibration]}}
    params: {params}
"""


def _small() -> pl.DataFrame:
    return make_fleet(n_devices=12, n_points=60, n_failing=2, seed=3).readings


@pytest.mark.parametrize(
    ("case", "frame", "entity", "params", "expected"),
    [
        (
            "unknown device column",
            _small,
            "machine",
            "{}",
            "device column 'machine' (columns.entity) is not in file",
        ),
        (
            "a device with one reading",
            lambda: pl.concat(
                [
                    _small(),
                    _small()
                    .filter(pl.col("device_id") == "dev-0000")
                    .head(1)
                    .with_columns(pl.lit("dev-lonely").alias("device_id")),
                ]
            ),
            "device_id",
            "{}",
            "fewer than 3 readings of some metric (dev-lonely)",
        ),
        (
            "non-numeric metric",
            lambda: _small().with_columns(pl.lit("hot").alias("temperature")),
            "device_id",
            "{}",
            "column 'temperature' in file",
        ),
        (
            "duplicate timestamps",
            lambda: pl.concat([_small(), _small().head(2)]),
            "device_id",
            "{}",
            "duplicate (device, timestamp) pair(s)",
        ),
        (
            "unsorted time",
            lambda: _small().reverse(),
            "device_id",
            "{}",
            "time is not increasing within 12 device(s)",
        ),
        ("bad fingerprint param", _small, "device_id", "{fingerprint: {window: 1}}", "window"),
        ("unknown fingerprint param", _small, "device_id", "{fingerprint: {windw: 5}}", "windw"),
    ],
)
def test_fleet_bad_inputs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    frame,
    entity: str,  # type: ignore[no-untyped-def]
    params: str,
    expected: str,
) -> None:
    frame().write_csv(tmp_path / "r.csv")
    (tmp_path / "project.yaml").write_text(
        BAD.format(source="{kind: file, path: r.csv}", entity=entity, params=params)
    )
    result = run_cli(["run"], tmp_path, monkeypatch)
    assert result.code == 2, (case, result.err)
    lines = [x for x in result.err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0] and "fix:" in lines[0], result.err
    assert "Traceback" not in result.err


def test_policies_accept_what_the_errors_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    messy = pl.concat([_small().reverse(), _small().head(2)])
    messy.write_csv(tmp_path / "r.csv")
    params = "{duplicates: mean, unsorted: sort, failures: {ids: [dev-0001, ghost-1, ghost-2]}}"
    (tmp_path / "project.yaml").write_text(
        BAD.format(source="{kind: file, path: r.csv}", entity="device_id", params=params)
    )
    result = run_cli(["run"], tmp_path, monkeypatch)
    assert result.code == 0, result.err
    facts = open_run(tmp_path / "runs", "fleet").facts
    assert facts["prepare"]["duplicates_merged"] == 2
    assert facts["prepare"]["devices_sorted"] == 12
    assert facts["failures"]["unknown_ids"] == ["ghost-1", "ghost-2"]
    assert "ghost-1" in result.err  # warned, not fatal
    # one known failure: too few to tell, and no group is called enriched
    assert facts["failures"]["ranking"]["verdict"].startswith(
        "too few known failures to tell (1 known; a verdict needs at least 5)"
    )
    assert not facts["failures"]["ranking"]["useful"]
    assert not any(e["enriched"] for e in facts["failures"]["enrichment"])
    assert "too few" in " ".join(facts["failures"]["findings"])


def test_unreachable_elasticsearch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = '{kind: elasticsearch, hosts: "http://elastic:pw123@127.0.0.1:1", index: telemetry}'
    (tmp_path / "project.yaml").write_text(
        BAD.format(source=source, entity="device_id", params="{}")
    )
    result = run_cli(["run"], tmp_path, monkeypatch)
    assert result.code == 2
    assert "could not reach Elasticsearch at http://elastic:***@127.0.0.1:1" in result.err
    assert "pw123" not in result.err


def _fingerprints_from(
    tmp_path: Path, source: str, entity: str = "device_id", time: str = "timestamp"
) -> pl.DataFrame:
    import yaml

    from opslens.config import AnalysisConfig
    from opslens.features.fingerprints import fleet_fingerprints
    from opslens.io.load import load_source

    cfg = AnalysisConfig.model_validate(
        {
            "name": "f",
            "recipe": "fleet",
            "source": yaml.safe_load(source),
            "columns": {
                "entity": entity,
                "time": time,
                "metrics": ["temperature", "vibration"],
            },
        }
    )
    frame = load_source(cfg).frame
    return fleet_fingerprints(frame, entity=entity, time=time, metrics=["temperature", "vibration"])


@pytest.mark.services
def test_postgres_and_elasticsearch_give_the_file_fingerprints(
    tmp_path: Path, pg_url: str, pg_schema: str
) -> None:
    import sqlalchemy as sa
    from tests.fakes.es_loopback import EsLoopback

    from opslens.io.sources.sql import engine_url

    readings = make_fleet(n_devices=8, n_points=300, n_failing=1, seed=5).readings.drop("current")
    readings.write_parquet(tmp_path / "r.parquet")
    from_file = _fingerprints_from(tmp_path, f"{{kind: file, path: {tmp_path / 'r.parquet'}}}")

    engine = sa.create_engine(engine_url(pg_url))
    with engine.begin() as conn:
        readings.to_pandas().to_sql("readings", conn, schema=pg_schema, index=False)
    engine.dispose()
    from_pg = _fingerprints_from(
        tmp_path, f'{{kind: sql, url: "{pg_url}", table: "{pg_schema}.readings"}}'
    )

    docs = [
        {**r, "timestamp": r["timestamp"].isoformat() + "Z"} for r in readings.iter_rows(named=True)
    ]
    with EsLoopback() as es:
        es.add_index("telemetry", docs, date_fields=["timestamp"])
        from_es = _fingerprints_from(
            tmp_path,
            f'{{kind: elasticsearch, hosts: "{es.url}", index: telemetry, page_size: 500}}',
        )
        assert len(es.searches()) >= 5

    for other in (from_pg, from_es):
        assert other.columns == from_file.columns
        a = from_file.drop("device_id").to_numpy()
        b = other.drop("device_id").to_numpy()
        assert other["device_id"].to_list() == from_file["device_id"].to_list()
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_elasticsearch_reads_long_data(tmp_path: Path) -> None:
    """LONG documents (one per reading and metric) pivot to the file's WIDE fingerprints."""
    from tests.fakes.es_loopback import EsLoopback

    readings = make_fleet(n_devices=6, n_points=120, n_failing=1, seed=7).readings.drop("current")
    readings.write_parquet(tmp_path / "r.parquet")
    from_file = _fingerprints_from(tmp_path, f"{{kind: file, path: {tmp_path / 'r.parquet'}}}")
    docs = [
        {
            "device": {"id": r["device_id"]},
            "@timestamp": r["timestamp"].isoformat() + "Z",
            "long": {"key": metric, "value": r[metric]},
        }
        for r in readings.iter_rows(named=True)
        for metric in ("temperature", "vibration")
        if r[metric] is not None and r[metric] == r[metric]  # LONG data stores no missing rows
    ]
    with EsLoopback() as es:
        es.add_index("telemetry-long", docs, date_fields=["@timestamp"])
        source = (
            f'{{kind: elasticsearch, hosts: "{es.url}", index: telemetry-long, layout: long, '
            "long: {index: [device.id, '@timestamp'], key: long.key, value: long.value}}"
        )
        from_es = _fingerprints_from(
            tmp_path, source, entity="device.id", time="@timestamp"
        ).rename({"device.id": "device_id"})
        includes = es.searches()[0].body["_source"]["includes"]
    assert {"long.key", "long.value", "device.id", "@timestamp"} <= set(includes)
    assert from_es["device_id"].to_list() == from_file["device_id"].to_list()
    a = from_file.drop("device_id", cs.contains("missing_ratio"), cs.contains("count"))
    b = from_es.select(a.columns)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-9, atol=1e-12, equal_nan=True)
