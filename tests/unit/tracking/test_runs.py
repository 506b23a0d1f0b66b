"""Run folders: atomic commit, the ``latest`` pointer, stale temporaries, reading runs back."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest

from opslens.errors import RunError
from opslens.tracking.runs import (
    LATEST,
    RunView,
    RunWriter,
    jsonable,
    list_runs,
    new_run_id,
    open_run,
    write_json,
)


def _commit(root: Path, analysis: str, run_id: str | None = None, **manifest: object) -> Path:
    writer = RunWriter(root, analysis, run_id)
    writer.write_json("manifest.json", {"status": "complete", **manifest})
    return writer.commit()


def _dead_pid() -> int:
    """The pid of a process that has already exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of a process that is alive for the test (started and ended here)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield child.pid
    finally:
        child.kill()
        child.wait()


def _stale(analysis_dir: Path, name: str, pid: str | None) -> Path:
    tmp = analysis_dir / name
    (tmp / "tables").mkdir(parents=True)
    (tmp / "tables" / "half.parquet").write_bytes(b"half a file")
    if pid is not None:
        (tmp / ".pid").write_text(pid)
    return tmp


# --- run ids ---------------------------------------------------------------------------


def test_new_run_id_is_utc_time_and_four_hex_digits() -> None:
    run_id = new_run_id(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    stamp, suffix = run_id.split("-")
    assert stamp == "20260102T030405Z"
    assert len(suffix) == 4
    assert set(suffix) <= set("0123456789abcdef")


# --- nothing visible before commit; commit; abort ----------------------------------------


def test_nothing_is_visible_before_commit(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, "eta", "20260101T000000Z-aaaa")
    writer.write_json("manifest.json", {"status": "complete"})
    writer.write_json("facts.json", {"analysis": {"name": "eta"}})
    writer.write_table("scores", pl.DataFrame({"a": [1, 2]}))

    assert writer.path == tmp_path / "eta" / ".tmp-20260101T000000Z-aaaa"
    assert writer.path.is_dir()
    assert (writer.path / ".pid").read_text() == str(os.getpid())
    assert not writer.final_path.exists()
    assert not (tmp_path / "eta" / LATEST).exists()
    assert list_runs(tmp_path, "eta") == []
    with pytest.raises(RunError, match="analysis 'eta' has no complete run yet"):
        open_run(tmp_path, "eta")


def test_open_run_does_not_open_a_temporary_folder_by_name(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, "eta", "20260101T000000Z-aaaa")
    writer.write_json("manifest.json", {"status": "complete"})
    with pytest.raises(RunError, match="is missing or incomplete"):
        open_run(tmp_path, "eta", ".tmp-20260101T000000Z-aaaa")


def test_commit_renames_the_folder_then_moves_latest(tmp_path: Path) -> None:
    first = _commit(tmp_path, "eta", "20260101T000000Z-aaaa")
    assert (tmp_path / "eta" / LATEST).read_text() == "20260101T000000Z-aaaa\n"

    writer = RunWriter(tmp_path, "eta", "20260102T000000Z-bbbb")
    writer.write_json("manifest.json", {"status": "complete", "n": 2})
    tmp = writer.path
    final = writer.commit()

    assert final == tmp_path / "eta" / "20260102T000000Z-bbbb"
    assert final.is_dir()
    assert not tmp.exists()
    assert not (final / ".pid").exists()
    assert sorted(p.name for p in final.iterdir()) == [
        "data",
        "manifest.json",
        "model",
        "plots",
        "tables",
    ]
    assert (tmp_path / "eta" / LATEST).read_text() == "20260102T000000Z-bbbb\n"
    assert not (tmp_path / "eta" / "latest.part").exists()
    assert open_run(tmp_path, "eta").run_id == "20260102T000000Z-bbbb"
    assert open_run(tmp_path, "eta").manifest == {"status": "complete", "n": 2}
    # the previous run stays readable by id
    assert open_run(tmp_path, "eta", "20260101T000000Z-aaaa").path == first


def test_abort_leaves_the_previous_latest(tmp_path: Path) -> None:
    _commit(tmp_path, "eta", "20260101T000000Z-aaaa")
    writer = RunWriter(tmp_path, "eta", "20260102T000000Z-bbbb")
    writer.write_json("manifest.json", {"status": "complete"})
    writer.write_table("scores", pl.DataFrame({"a": [1]}))
    writer.abort()

    assert not writer.path.exists()
    assert not writer.final_path.exists()
    assert (tmp_path / "eta" / LATEST).read_text() == "20260101T000000Z-aaaa\n"
    assert open_run(tmp_path, "eta").run_id == "20260101T000000Z-aaaa"
    assert [r.run_id for r in list_runs(tmp_path, "eta")] == ["20260101T000000Z-aaaa"]
    assert sorted(p.name for p in (tmp_path / "eta").iterdir()) == [
        "20260101T000000Z-aaaa",
        "latest",
    ]


# --- stale temporaries ---------------------------------------------------------------------


def test_a_stale_temporary_of_a_dead_process_is_removed(tmp_path: Path) -> None:
    analysis_dir = tmp_path / "eta"
    stale = _stale(analysis_dir, ".tmp-20250101T000000Z-dead", str(_dead_pid()))
    writer = RunWriter(tmp_path, "eta")
    assert not stale.exists()
    assert writer.path.is_dir()


def test_a_temporary_of_a_live_process_is_kept(tmp_path: Path, live_pid: int) -> None:
    analysis_dir = tmp_path / "eta"
    busy = _stale(analysis_dir, ".tmp-20250101T000000Z-busy", str(live_pid))
    writer = RunWriter(tmp_path, "eta")
    assert busy.is_dir()
    assert (busy / "tables" / "half.parquet").read_bytes() == b"half a file"
    writer.write_json("manifest.json", {"status": "complete"})
    writer.commit()
    # still kept, and still not a run
    assert busy.is_dir()
    assert [r.run_id for r in list_runs(tmp_path, "eta")] == [writer.run_id]


@pytest.mark.parametrize("pid", [None, "not a pid", ""])
def test_a_temporary_without_a_readable_pid_is_removed(tmp_path: Path, pid: str | None) -> None:
    stale = _stale(tmp_path / "eta", ".tmp-20250101T000000Z-odd0", pid)
    RunWriter(tmp_path, "eta")
    assert not stale.exists()


def test_stale_temporaries_of_other_analyses_are_left_alone(tmp_path: Path) -> None:
    other = _stale(tmp_path / "fleet", ".tmp-20250101T000000Z-dead", str(_dead_pid()))
    RunWriter(tmp_path, "eta")
    assert other.is_dir()


# --- writing and reading back ----------------------------------------------------------------


def test_write_methods_return_the_relative_paths_and_read_back(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, "eta", "20260101T000000Z-aaaa")
    table = pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    figure, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    example = pl.DataFrame({"route": ["R01"], "hour_band": ["morning"]})

    assert writer.write_table("scores", table) == "tables/scores.parquet"
    assert writer.write_object("edges", np.array([0.0, 1.5, 3.0])) == "data/edges.joblib"
    assert writer.write_plot("k_selection", figure) == "plots/k_selection.png"
    assert writer.write_plot("a_first", figure) == "plots/a_first.png"
    plt.close(figure)
    assert writer.write_model({"fitted": True}, example, {"stage": "classify", "k": 3}) == [
        "model/model.joblib",
        "model/metadata.json",
        "model/input_example.parquet",
    ]
    writer.write_json("nested/deeper/facts.json", {"x": 1})
    writer.write_json("manifest.json", {"status": "complete"})
    final = writer.commit()

    run = open_run(tmp_path, "eta")
    assert isinstance(run, RunView)
    assert run.path == final
    assert run.run_id == "20260101T000000Z-aaaa"
    assert run.table("scores").equals(table)
    np.testing.assert_array_equal(run.object("edges"), np.array([0.0, 1.5, 3.0]))
    assert [p.name for p in run.plots()] == ["a_first.png", "k_selection.png"]
    assert run.plots()[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert joblib.load(final / "model" / "model.joblib") == {"fitted": True}
    assert run.json("model/metadata.json") == {"stage": "classify", "k": 3}
    assert pl.read_parquet(final / "model" / "input_example.parquet").equals(example)
    assert run.json("nested/deeper/facts.json") == {"x": 1}
    assert run.has("tables/scores.parquet")
    assert not run.has("tables/nothing.parquet")


def test_missing_pieces_of_a_run_are_run_errors_with_a_fix(tmp_path: Path) -> None:
    _commit(tmp_path, "eta")
    run = open_run(tmp_path, "eta")
    with pytest.raises(RunError) as missing_json:
        _ = run.facts
    assert missing_json.value.problem == f"run {run.path} has no facts.json"
    assert missing_json.value.fix == "run `opslens run` again to produce a complete run"
    with pytest.raises(RunError) as missing_table:
        run.table("scores")
    assert missing_table.value.problem == f"run {run.path} has no table 'scores'"
    assert missing_table.value.fix == "run the stage that makes it"
    with pytest.raises(RunError) as missing_object:
        run.object("edges")
    assert missing_object.value.problem == f"run {run.path} has no saved 'edges'"
    assert missing_object.value.fix == "run the stage that makes it"


def test_link_in_links_a_file_of_another_run_and_never_changes_it(tmp_path: Path) -> None:
    old = RunWriter(tmp_path, "eta", "20260101T000000Z-aaaa")
    old.write_table("clusters", pl.DataFrame({"cluster": [0, 1]}))
    old.write_json("manifest.json", {"status": "complete"})
    old_path = old.commit()
    source = old_path / "tables" / "clusters.parquet"

    new = RunWriter(tmp_path, "eta", "20260102T000000Z-bbbb")
    assert new.link_in(source, "tables/clusters.parquet") == "linked"
    assert new.link_in(old_path / "manifest.json", "data/reused/old-manifest.json") == "linked"
    target = new.path / "tables" / "clusters.parquet"
    # one file on disk, two names: no bytes copied
    assert target.stat().st_ino == source.stat().st_ino and source.stat().st_nlink == 2
    assert (new.path / "data" / "reused" / "old-manifest.json").read_text() == (
        old_path / "manifest.json"
    ).read_text()
    # writing the same name in the new run replaces its link; the old run keeps its file
    new.write_table("clusters", pl.DataFrame({"cluster": [5, 6, 7]}))
    assert target.stat().st_ino != source.stat().st_ino
    assert pl.read_parquet(source)["cluster"].to_list() == [0, 1]
    new.write_json("manifest.json", {"status": "complete"})
    new.commit()
    assert open_run(tmp_path, "eta").table("clusters")["cluster"].to_list() == [5, 6, 7]


def test_link_in_copies_across_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    old = RunWriter(tmp_path, "eta", "20260101T000000Z-aaaa")
    old.write_table("clusters", pl.DataFrame({"cluster": [0, 1]}))
    old.write_json("manifest.json", {"status": "complete"})
    source = old.commit() / "tables" / "clusters.parquet"

    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    new = RunWriter(tmp_path, "eta", "20260102T000000Z-bbbb")
    assert new.link_in(source, "tables/clusters.parquet") == "copied"
    target = new.path / "tables" / "clusters.parquet"
    assert target.read_bytes() == source.read_bytes()
    assert target.stat().st_ino != source.stat().st_ino


# --- origin ------------------------------------------------------------------------------------


def test_origin_reads_the_manifest_artifacts(tmp_path: Path) -> None:
    artifacts = {
        "plots/k_selection.png": {
            "stage": "choose_k",
            "run_id": "20250101T000000Z-0ld0",
            "status": "reused",
        },
        "tables/scores.parquet": {
            "stage": "classify",
            "run_id": "20260101T000000Z-aaaa",
            "status": "produced",
        },
    }
    _commit(tmp_path, "eta", "20260101T000000Z-aaaa", artifacts=artifacts)
    run = open_run(tmp_path, "eta")
    assert run.origin("plots/k_selection.png") == {
        "stage": "choose_k",
        "run_id": "20250101T000000Z-0ld0",
        "status": "reused",
    }
    assert run.origin("tables/scores.parquet")["status"] == "produced"
    # not listed: produced by this run
    assert run.origin("plots/other.png") == {
        "run_id": "20260101T000000Z-aaaa",
        "status": "produced",
    }


@pytest.mark.parametrize("manifest", [{}, {"artifacts": None}, {"artifacts": {}}])
def test_origin_defaults_to_produced_by_this_run(
    tmp_path: Path, manifest: dict[str, object]
) -> None:
    _commit(tmp_path, "eta", "20260101T000000Z-aaaa", **manifest)
    assert open_run(tmp_path, "eta").origin("plots/k_selection.png") == {
        "run_id": "20260101T000000Z-aaaa",
        "status": "produced",
    }


# --- open_run errors ---------------------------------------------------------------------------


def test_open_run_without_any_run_is_a_run_error_with_a_fix(tmp_path: Path) -> None:
    with pytest.raises(RunError) as err:
        open_run(tmp_path, "eta")
    assert err.value.problem == "analysis 'eta' has no complete run yet"
    assert err.value.fix == "run `opslens run` (or `opslens run --analysis eta`) first"
    assert str(err.value) == (
        "analysis 'eta' has no complete run yet; "
        "fix: run `opslens run` (or `opslens run --analysis eta`) first"
    )


def test_open_run_of_a_missing_run_id_is_a_run_error_with_a_fix(tmp_path: Path) -> None:
    _commit(tmp_path, "eta", "20260101T000000Z-aaaa")
    with pytest.raises(RunError) as err:
        open_run(tmp_path, "eta", "20991231T000000Z-ffff")
    assert err.value.problem == (
        "run '20991231T000000Z-ffff' of analysis 'eta' is missing or incomplete"
    )
    assert err.value.fix == "run `opslens runs` to list complete runs"


def test_open_run_when_latest_names_an_incomplete_run(tmp_path: Path) -> None:
    analysis_dir = tmp_path / "eta"
    (analysis_dir / "20260101T000000Z-aaaa").mkdir(parents=True)  # no manifest.json
    (analysis_dir / LATEST).write_text("20260101T000000Z-aaaa\n")
    with pytest.raises(RunError) as err:
        open_run(tmp_path, "eta")
    assert err.value.problem == (
        "run '20260101T000000Z-aaaa' of analysis 'eta' is missing or incomplete"
    )
    assert err.value.fix == "run `opslens runs` to list complete runs"


# --- list_runs -----------------------------------------------------------------------------


def test_list_runs_is_newest_first_and_ignores_temporaries(tmp_path: Path) -> None:
    for run_id in ("20260102T000000Z-bbbb", "20260103T000000Z-cccc", "20260101T000000Z-aaaa"):
        _commit(tmp_path, "eta", run_id)
    analysis_dir = tmp_path / "eta"
    # a temporary folder that even holds a manifest is not a run
    tmp = analysis_dir / ".tmp-20260104T000000Z-dddd"
    tmp.mkdir()
    (tmp / "manifest.json").write_text('{"status": "complete"}')
    # a folder without a manifest is not a complete run
    (analysis_dir / "20260105T000000Z-eeee").mkdir()
    _commit(tmp_path, "fleet", "20260106T000000Z-ffff")

    assert [r.run_id for r in list_runs(tmp_path, "eta")] == [
        "20260103T000000Z-cccc",
        "20260102T000000Z-bbbb",
        "20260101T000000Z-aaaa",
    ]
    assert all(isinstance(r, RunView) for r in list_runs(tmp_path, "eta"))
    assert [r.run_id for r in list_runs(tmp_path, "fleet")] == ["20260106T000000Z-ffff"]
    assert list_runs(tmp_path, "nothing") == []


# --- jsonable and write_json -----------------------------------------------------------------


def test_jsonable_makes_numpy_nan_dates_durations_and_paths_json_ready() -> None:
    value = {
        "f64": np.float64(1.5),
        "f32": np.float32(0.25),
        "i64": np.int64(3),
        "bool": np.bool_(True),
        "nan": float("nan"),
        "np_nan": np.float64("nan"),
        "inf": float("inf"),
        "minus_inf": -np.inf,
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "naive": datetime(2026, 1, 2, 3, 4, 5),
        "day": date(2026, 1, 2),
        "span": timedelta(hours=1, minutes=30),
        "days": timedelta(days=2, seconds=5),
        "path": Path("runs") / "eta",
        "tuple": (np.int64(1), 2.0),
        3: [np.float64(2.5), {"inner": float("nan")}],
        "plain": "text",
        "none": None,
    }
    out = jsonable(value)
    assert out == {
        "f64": 1.5,
        "f32": 0.25,
        "i64": 3,
        "bool": True,
        "nan": None,
        "np_nan": None,
        "inf": None,
        "minus_inf": None,
        "when": "2026-01-02T03:04:05+00:00",
        "naive": "2026-01-02T03:04:05",
        "day": "2026-01-02",
        "span": "1:30:00",
        "days": "2 days, 0:00:05",
        "path": str(Path("runs") / "eta"),
        "tuple": [1, 2.0],
        "3": [2.5, {"inner": None}],
        "plain": "text",
        "none": None,
    }
    assert type(out["f64"]) is float
    assert type(out["i64"]) is int
    assert type(out["bool"]) is bool


def test_write_json_writes_strict_json_without_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "facts.json"
    write_json(target, {"a": np.float64(2.0), "b": float("nan"), "c": Path("x")})
    assert target.read_text() == '{\n  "a": 2.0,\n  "b": null,\n  "c": "x"\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["facts.json"]
