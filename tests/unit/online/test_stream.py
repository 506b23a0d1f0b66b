"""Streaming instances through a real run's model: one line out per line in, errors in-line."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import opslens
from opslens.config import ProjectConfig
from opslens.errors import InstanceError, RunError, SourceError
from opslens.online.stream import StreamSummary, iter_instances, stream_instances
from opslens.recipes import project_from_mapping
from opslens.runner import RunResult
from opslens.synthetic.fleet import make_fleet
from opslens.synthetic.trips import make_trips

DIST_COLUMNS = {"target": "duration_min", "categorical": ["route", "hour_band"]}
FLEET_COLUMNS = {
    "entity": "device_id",
    "time": "timestamp",
    "metrics": ["temperature", "vibration", "current"],
}


def _project(root: Path, runs: Path, recipe: str, columns: dict[str, Any]) -> ProjectConfig:
    return project_from_mapping(
        {
            "runs_dir": str(runs),
            "tracking": {"enabled": False},
            "analyses": [
                {
                    "name": "analysis",
                    "recipe": recipe,
                    "source": {"kind": "memory", "name": "analysis"},
                    "columns": columns,
                }
            ],
        },
        root=root,
    )


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- iter_instances ------------------------------------------------------------------------------


def test_iter_instances_numbers_lines_skips_blanks_and_flags_non_objects() -> None:
    text = '{"route": "A"}\n\n   \nnot json\n[1, 2]\n"text"\n  {"route": "B"}  \n'
    items = list(iter_instances(io.StringIO(text)))
    assert [n for n, _ in items] == [1, 4, 5, 6, 7]
    assert items[0] == (1, {"route": "A"})
    assert items[4] == (7, {"route": "B"})
    errors = {n: e for n, e in items if isinstance(e, InstanceError)}
    assert sorted(errors) == [4, 5, 6]
    assert errors[4].problem == "line 4 is not JSON (Expecting value)"
    assert errors[4].fix == "send one JSON object per line"
    assert errors[5].problem == "line 5 is a JSON list, not an object"
    assert errors[6].problem == "line 6 is a JSON str, not an object"


# --- a distribution run ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def trips() -> pl.DataFrame:
    return make_trips(n_rows=3000, seed=1, n_routes=3).trips


@pytest.fixture(scope="module")
def dist_run(tmp_path_factory: pytest.TempPathFactory, trips: pl.DataFrame) -> RunResult:
    result: RunResult = opslens.run(
        trips,
        recipe="distribution",
        runs_dir=tmp_path_factory.mktemp("dist-runs"),
        columns=DIST_COLUMNS,
        params={"min_combination_size": 20, "xgboost": {"n_estimators": 10}},
    )
    return result


@pytest.fixture
def dist_project(tmp_path: Path, dist_run: RunResult) -> ProjectConfig:
    return _project(tmp_path, dist_run.path.parent.parent, "distribution", DIST_COLUMNS)


def _instances(trips: pl.DataFrame, n: int) -> list[dict[str, Any]]:
    return trips.select("route", "hour_band", "duration_min").head(n).to_dicts()


@pytest.mark.slow
def test_one_output_line_per_input_line_and_errors_do_not_stop_the_stream(
    tmp_path: Path, dist_project: ProjectConfig, dist_run: RunResult, trips: pl.DataFrame
) -> None:
    good = _instances(trips, 4)
    lines = [
        json.dumps(good[0]),  # 1
        "",  # 2 blank: skipped
        "this is not json",  # 3
        json.dumps(good[1]),  # 4
        json.dumps([good[2]]),  # 5 an array
        "   ",  # 6 blank: skipped
        json.dumps({"route": good[2]["route"]}),  # 7 lacks hour_band
        json.dumps(good[2]),  # 8
        json.dumps(good[3]),  # 9
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"

    summary = stream_instances(dist_project, "analysis", input_path=source, output=out, plots=False)

    records = _read(out)
    assert [r["line"] for r in records] == [1, 3, 4, 5, 7, 8, 9]
    assert all(r["run_id"] == dist_run.run_id for r in records)
    errors = {r["line"]: r["error"] for r in records if "error" in r}
    assert errors == {
        3: "line 3 is not JSON (Expecting value); fix: send one JSON object per line",
        5: 'line 5 is a JSON list, not an object; fix: send objects such as {"route": "R01", '
        '"hour_band": "morning"}',
        7: "instance has no attribute 'hour_band' (needs ['route', 'hour_band']); "
        "fix: add 'hour_band' to every streamed instance",
    }
    assert all(set(r) == {"line", "run_id", "error"} for r in records if "error" in r)
    assert summary == StreamSummary(
        scored=4,
        rejected=3,
        plots_dir=None,
        origin=f"run folder {dist_run.path} (latest)",
    )
    assert not any("plot" in r for r in records)
    assert not (tmp_path / "stream").exists()


@pytest.mark.slow
def test_streamed_probabilities_equal_predict_frame_bit_for_bit(
    tmp_path: Path, dist_project: ProjectConfig, dist_run: RunResult, trips: pl.DataFrame
) -> None:
    rows = _instances(trips, 60)
    rows.append({"route": "R99", "hour_band": "morning"})  # an unseen route
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"

    summary = stream_instances(dist_project, "analysis", input_path=source, output=out, plots=False)
    assert (summary.scored, summary.rejected) == (61, 0)

    predictor = dist_run.predictor()
    expected = predictor.predict_frame(pl.DataFrame(rows).select("route", "hour_band"))
    classes = [int(c[2:]) for c in expected.columns if c.startswith("p_")]
    assert len(classes) == dist_run.facts["choose_k"]["k"]
    records = _read(out)
    assert len(records) == len(rows)
    for i, record in enumerate(records):
        assert record["line"] == i + 1
        assert record["cluster"] == expected["cluster"][i]
        assert record["probabilities"] == {str(c): expected[f"p_{c}"][i] for c in classes}
        assert record["probability"] == expected[f"p_{record['cluster']}"][i]
        profile = next(
            c for c in dist_run.facts["cluster"]["clusters"] if c["cluster"] == record["cluster"]
        )
        assert record["median"] == profile["median"]
        assert record["hdr_90"] == profile["hdr_90"]
    assert [r["unknown"] for r in records[:-1]] == [[]] * 60
    assert records[-1]["unknown"] == ["route"]


@pytest.mark.slow
def test_plots_are_drawn_per_scored_instance(
    tmp_path: Path, dist_project: ProjectConfig, trips: pl.DataFrame
) -> None:
    rows = _instances(trips, 3)
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps(rows[0]) + "\nbad\n" + json.dumps(rows[1]) + "\n" + json.dumps(rows[2]) + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    plots_dir = tmp_path / "plots"

    summary = stream_instances(
        dist_project, "analysis", input_path=source, output=out, plots_dir=plots_dir
    )
    assert summary.plots_dir == plots_dir
    assert (summary.scored, summary.rejected) == (3, 1)
    records = _read(out)
    assert [r.get("plot") for r in records] == [
        str(plots_dir / "instance-000001.png"),
        None,
        str(plots_dir / "instance-000003.png"),
        str(plots_dir / "instance-000004.png"),
    ]
    assert sorted(p.name for p in plots_dir.iterdir()) == [
        "instance-000001.png",
        "instance-000003.png",
        "instance-000004.png",
    ]
    assert (plots_dir / "instance-000001.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_plots_default_to_the_project_stream_folder(
    tmp_path: Path, dist_project: ProjectConfig, trips: pl.DataFrame
) -> None:
    out = tmp_path / "out.jsonl"
    summary = stream_instances(
        dist_project,
        "analysis",
        stdin=io.StringIO(json.dumps(_instances(trips, 1)[0]) + "\n"),
        output=out,
    )
    assert summary.plots_dir is not None
    assert summary.plots_dir.parent == tmp_path / "stream" / "analysis"
    assert [p.name for p in summary.plots_dir.iterdir()] == ["instance-000001.png"]


@pytest.mark.slow
def test_stdin_in_and_stdout_out(
    dist_project: ProjectConfig,
    dist_run: RunResult,
    trips: pl.DataFrame,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = _instances(trips, 2)
    summary = stream_instances(
        dist_project,
        "analysis",
        stdin=io.StringIO("".join(json.dumps(r) + "\n" for r in rows)),
        plots=False,
    )
    assert (summary.scored, summary.rejected, summary.plots_dir) == (2, 0, None)
    printed = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [p["line"] for p in printed] == [1, 2]
    expected = dist_run.predictor().predict_frame(pl.DataFrame(rows))
    assert [p["cluster"] for p in printed] == expected["cluster"].to_list()


@pytest.mark.slow
def test_a_missing_input_file_is_a_source_error(
    tmp_path: Path, dist_project: ProjectConfig
) -> None:
    with pytest.raises(SourceError) as err:
        stream_instances(dist_project, "analysis", input_path=tmp_path / "nope.jsonl")
    assert err.value.problem == f"instances file {tmp_path / 'nope.jsonl'} does not exist"
    assert err.value.fix == "pass --input FILE.jsonl or - for stdin"
    with pytest.raises(SourceError) as err:
        stream_instances(dist_project, "analysis", input_path=tmp_path)
    assert err.value.problem == f"instances file {tmp_path} is a directory, not a file"


def test_streaming_without_a_run_is_a_run_error(tmp_path: Path) -> None:
    project = _project(tmp_path, tmp_path / "runs", "distribution", DIST_COLUMNS)
    with pytest.raises(RunError, match="analysis 'analysis' has no complete run yet"):
        stream_instances(project, "analysis", stdin=io.StringIO(""), plots=False)


# --- a fleet run --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def readings() -> pl.DataFrame:
    return make_fleet(seed=0, n_devices=40, n_points=200, n_failing=4).readings


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory: pytest.TempPathFactory, readings: pl.DataFrame) -> RunResult:
    result: RunResult = opslens.run(
        readings,
        recipe="fleet",
        runs_dir=tmp_path_factory.mktemp("fleet-runs"),
        columns=FLEET_COLUMNS,
        params={"rare": {"methods": ["ecod", "isolation_forest"]}, "inspect_top": 0},
    )
    return result


def _device(readings: pl.DataFrame, device: str, n: int | None = None) -> dict[str, Any]:
    rows = readings.filter(pl.col("device_id") == device).sort("timestamp")
    if n is not None:
        rows = rows.head(n)
    return {
        "device_id": device,
        "readings": [
            {"timestamp": t.isoformat(), "temperature": a, "vibration": b, "current": c}
            for t, a, b, c in rows.select(
                "timestamp", "temperature", "vibration", "current"
            ).iter_rows()
        ],
    }


@pytest.mark.slow
def test_a_fleet_stream_answers_devices_and_draws_no_plots(
    tmp_path: Path, fleet_run: RunResult, readings: pl.DataFrame
) -> None:
    project = _project(tmp_path, fleet_run.path.parent.parent, "fleet", FLEET_COLUMNS)
    devices = ["dev-0003", "dev-0011"]
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps(_device(readings, devices[0]))
        + "\n"
        + json.dumps(_device(readings, "dev-0005", n=1))
        + "\n"
        + json.dumps(_device(readings, devices[1]))
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    plots_dir = tmp_path / "plots"

    summary = stream_instances(
        project, "analysis", input_path=source, output=out, plots=True, plots_dir=plots_dir
    )

    assert summary == StreamSummary(
        scored=2, rejected=1, plots_dir=None, origin=f"run folder {fleet_run.path} (latest)"
    )
    assert not plots_dir.exists()
    assert not (tmp_path / "stream").exists()
    records = _read(out)
    assert [r["line"] for r in records] == [1, 2, 3]
    assert all(r["run_id"] == fleet_run.run_id for r in records)
    assert all("plot" not in r for r in records)
    assert records[1] == {
        "line": 2,
        "run_id": fleet_run.run_id,
        "error": "device 'dev-0005' has 1 reading; the model needs at least 3; "
        "fix: send more readings of the device",
    }

    predictor = fleet_run.predictor()
    assert predictor.supports("figure") is False
    expected = predictor.predict_frame(readings.filter(pl.col("device_id").is_in(devices)))
    expected = expected.sort("device_id")
    for record, row in zip([records[0], records[2]], expected.iter_rows(named=True), strict=True):
        assert record["device_id"] == row["device_id"]
        assert record["score"] == row["score"]
        assert record["is_rare"] == row["is_rare"]
        assert record["methods"] == {
            "ecod": row["ecod"],
            "isolation_forest": row["isolation_forest"],
        }
        assert record["group"] == row["group"]
        assert record["group_vote"] == row["group_vote"]
        assert 0.0 <= record["score"] <= 1.0
