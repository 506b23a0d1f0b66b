"""The distribution recipe end to end on the transit trips: shapes found, stream == batch, reruns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import homogeneity_score
from tests.fakes.cli import run_cli

from opslens.api import load_project
from opslens.runner import run_analysis
from opslens.synthetic.trips import make_trips
from opslens.tracking.runs import open_run
from opslens.tracking.tracker import MemoryTracker

pytestmark = pytest.mark.slow

PROJECT = """
tracking: {enabled: false}
analyses:
  - name: trip-eta
    recipe: distribution
    source: {kind: file, path: trips.parquet}
    columns: {time: started_at, target: duration_min, categorical: [route, hour_band, vehicle_type]}
    params: {min_combination_size: 30, unit: min}
"""


@pytest.fixture(scope="module")
def trip_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("dist")
    data = make_trips(n_rows=20_000, seed=3)
    data.trips.write_parquet(folder / "trips.parquet")
    (folder / "project.yaml").write_text(PROJECT)
    project = load_project(folder / "project.yaml")
    tracker = MemoryTracker()
    run_analysis(project, "trip-eta", tracker=tracker)
    return folder, (data, tracker)


def test_planted_shapes_are_recovered(trip_run: tuple[Path, object]) -> None:
    """Each pattern holds one planted shape (K by held-out log score may split a shape by scale)."""
    folder, (data, tracker) = trip_run  # type: ignore[misc]
    run = open_run(folder / "runs", "trip-eta")
    facts = run.facts
    assert 3 <= facts["choose_k"]["k"] <= 6
    assert facts["prepare"]["combinations_kept"] >= 60
    clusters = run.table("clusters")
    truth = data.truth.with_columns(
        pl.concat_str(
            [
                pl.format("route={}", "route"),
                pl.format("hour_band={}", "hour_band"),
                pl.format("vehicle_type={}", "vehicle_type"),
            ],
            separator="|",
        ).alias("comb")
    )
    joined = clusters.join(truth.select("comb", "shape"), on="comb", how="inner")
    assert joined.height == clusters.height
    purity = homogeneity_score(joined["shape"].to_numpy(), joined["cluster"].to_numpy())
    assert purity >= 0.9, purity
    # the cluster holding the planted bimodal shape has a two-interval 90% HDR
    bimodal_shape = int(data.truth.filter(pl.col("shape_name") == "bimodal")["shape"][0])
    bimodal_cluster = joined.filter(pl.col("shape") == bimodal_shape)["cluster"].mode()[0]
    profile = run.table("profiles").filter(pl.col("cluster") == bimodal_cluster).row(0, named=True)
    assert profile["n_hdr_intervals_90"] == 2
    assert tracker.metrics["log_score"] >= tracker.metrics["log_score_own"]
    assert tracker.metrics["log_score"] >= tracker.metrics["log_score_global"]


def test_stream_gives_batch_probabilities(
    trip_run: tuple[Path, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = trip_run
    run = open_run(folder / "runs", "trip-eta")
    held_out = run.table("predictions_holdout").head(20)
    lines = [
        json.dumps({k: r[k] for k in ("route", "hour_band", "vehicle_type", "duration_min")})
        for r in held_out.iter_rows(named=True)
    ]
    lines.append(
        json.dumps(
            {
                "route": "never-seen",
                "hour_band": held_out["hour_band"][0],
                "vehicle_type": held_out["vehicle_type"][0],
            }
        )
    )
    (folder / "in.jsonl").write_text("\n".join(lines) + "\n")
    result = run_cli(
        ["stream", "trip-eta", "--input", "in.jsonl", "--output", "out.jsonl"], folder, monkeypatch
    )
    assert result.code == 0, result.err
    out = [json.loads(x) for x in (folder / "out.jsonl").read_text().splitlines()]
    assert len(out) == 21
    classes = sorted(int(c[2:]) for c in held_out.columns if c.startswith("p_"))
    for record, row in zip(out[:20], held_out.iter_rows(named=True), strict=True):
        batch = np.array([row[f"p_{c}"] for c in classes], dtype=np.float32)
        streamed = np.array([record["probabilities"][str(c)] for c in classes], dtype=np.float32)
        assert np.array_equal(batch, streamed)
        assert Path(record["plot"]).is_file()
    assert out[20]["unknown"] == ["route"]
    assert abs(sum(out[20]["probabilities"].values()) - 1.0) < 1e-5


def test_report_is_self_contained(
    trip_run: tuple[Path, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = trip_run
    result = run_cli(["report", "trip-eta"], folder, monkeypatch)
    assert result.code == 0, result.err
    html = (open_run(folder / "runs", "trip-eta").path / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4
    assert 'src="http' not in html and "<script" not in html
    facts = open_run(folder / "runs", "trip-eta").facts
    assert "Which combinations follow which pattern" in html
    for cluster in facts["cluster"]["clusters"]:
        assert cluster["description"] in html


def test_single_stage_reruns_from_saved_outputs(
    trip_run: tuple[Path, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = trip_run
    before = open_run(folder / "runs", "trip-eta")
    result = run_cli(["run", "--stages", "classify"], folder, monkeypatch)
    assert result.code == 0, result.err
    after = open_run(folder / "runs", "trip-eta")
    assert after.run_id != before.run_id
    assert after.manifest["stages_run"] == ["classify"]
    assert after.manifest["based_on"] == before.run_id
    assert after.facts["classify"] == before.facts["classify"]
    assert after.table("clusters").equals(before.table("clusters"))


def test_same_config_same_metrics(tmp_path: Path) -> None:
    data = make_trips(n_rows=8_000, seed=5)
    data.trips.write_parquet(tmp_path / "trips.parquet")
    (tmp_path / "project.yaml").write_text(
        PROJECT.replace("min_combination_size: 30", "min_combination_size: 10")
    )
    project = load_project(tmp_path / "project.yaml")
    first = run_analysis(project, "trip-eta", tracker=MemoryTracker())
    second = run_analysis(project, "trip-eta", tracker=MemoryTracker())
    assert first.metrics == second.metrics
    a = open_run(tmp_path / "runs", "trip-eta", first.run_id)
    b = open_run(tmp_path / "runs", "trip-eta", second.run_id)
    assert a.table("profiles").equals(b.table("profiles"))
    assert a.manifest["input"]["fingerprint"] == b.manifest["input"]["fingerprint"]


def _segmented(tmp_path: Path, name: str, trips: pl.DataFrame) -> object:
    folder = tmp_path / name
    folder.mkdir()
    trips.write_parquet(folder / "trips.parquet")
    text = PROJECT.replace(
        "categorical: [route, hour_band, vehicle_type]}",
        "categorical: [route, hour_band], group: vehicle_type}",
    ).replace("min_combination_size: 30", "min_combination_size: 10, xgboost: {n_estimators: 30}")
    (folder / "project.yaml").write_text(text)
    run_analysis(load_project(folder / "project.yaml"), "trip-eta", tracker=MemoryTracker())
    return open_run(folder / "runs", "trip-eta")


def test_segmented_by_group(tmp_path: Path) -> None:
    """Edges per segment; profiles do not depend on row order and are the mean of what was clustered."""
    data = make_trips(n_rows=12_000, seed=6)
    run = _segmented(tmp_path, "by_time", data.trips)
    edges = run.object("edges")  # type: ignore[attr-defined]
    assert sorted(edges) == sorted(data.trips["vehicle_type"].unique().to_list())
    assert all(np.all(np.diff(e) > 0) for e in edges.values())
    assert not all(np.array_equal(edges["bus"], e) for e in edges.values())
    histograms = run.table("histograms")  # type: ignore[attr-defined]
    assert set(histograms["segment"].unique().to_list()) == set(edges)
    meta = json.loads((run.path / "model" / "metadata.json").read_text())  # type: ignore[attr-defined]
    assert "vehicle_type" in meta["inputs"]
    # each cluster's mean histogram is the mean of the histograms clustered into it
    clusters = run.table("clusters")  # type: ignore[attr-defined]
    X = np.vstack(histograms["histogram"].to_list())
    labels = histograms.select("comb").join(clusters, on="comb", how="left")["cluster"].to_numpy()
    for row in run.table("profiles").iter_rows(named=True):  # type: ignore[attr-defined]
        expected = X[labels == row["cluster"]].mean(axis=0)
        np.testing.assert_allclose(row["mean_histogram"], expected, rtol=0, atol=1e-12)
    # the same rows in another order give the same patterns and profiles
    shuffled = data.trips.sort(["duration_min", "trip_id"], descending=True)
    other = _segmented(tmp_path, "by_duration", shuffled)
    assert other.table("profiles").equals(run.table("profiles"))  # type: ignore[attr-defined]
    assert other.table("clusters").equals(clusters)  # type: ignore[attr-defined]
