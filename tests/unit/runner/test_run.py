"""The runner: declared outputs checked and persisted as declared, reruns that reuse honestly,
run logs scoped to their run, the registry alias moved only after the commit."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest

import opslens.recipes as registry
from opslens.core.recipe import Out, Output, Stage
from opslens.errors import ContractError
from opslens.recipes._template import RECIPE as TEMPLATE
from opslens.recipes._template import summarise
from opslens.report.render import render_report
from opslens.runner import run as runner_module
from opslens.runner import run_analysis
from opslens.synthetic.trips import make_trips
from opslens.tracking.runs import RunWriter, open_run
from opslens.tracking.tracker import MemoryTracker

FRAME = pl.DataFrame({"minutes": [1.0, 2.0, 3.0, 6.0]})


def _project(tmp_path: Path, names: tuple[str, ...] = ("toy",)) -> Any:
    return registry.project_from_mapping(
        {
            "tracking": {"enabled": False},
            "runs_dir": str(tmp_path / "runs"),
            "analyses": [
                {
                    "name": n,
                    "recipe": "template",
                    "source": {"kind": "memory", "name": "frame"},
                    "columns": {"target": "minutes"},
                }
                for n in names
            ],
        },
        root=tmp_path,
    )


def _with_stage(monkeypatch: pytest.MonkeyPatch, stage: Stage) -> None:
    recipe = dataclasses.replace(TEMPLATE, pipelines={"train": (stage,)})
    monkeypatch.setattr(runner_module, "get_recipe", lambda _name: recipe)


def _run(tmp_path: Path, **kw: Any) -> Any:
    return run_analysis(_project(tmp_path), "toy", frames={"frame": FRAME}, **kw)


def test_template_runs_and_persists_as_declared(tmp_path: Path, with_template: None) -> None:
    result = _run(tmp_path)
    run = open_run(tmp_path / "runs", "toy")
    assert run.has("tables/summary.parquet") and run.table("summary")["rows"].to_list() == [4]
    assert result.facts["summarise"] == {"rows": 4, "mean": 3.0}
    assert run.manifest["artifacts"]["tables/summary.parquet"] == {
        "stage": "summarise",
        "run_id": result.run_id,
        "status": "produced",
    }
    assert result.predictor().predict_one({}) == {"mean": 3.0}


def test_missing_output_names_the_stage(
    tmp_path: Path, with_template: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lazy(ctx: Any, raw: pl.DataFrame) -> Out:
        out = summarise(ctx, raw)
        out.values = {}
        return out

    _with_stage(
        monkeypatch,
        Stage("summarise", lazy, inputs=("raw",), outputs=(Output("summary"),), model=True),
    )
    with pytest.raises(
        ContractError, match="stage 'summarise' declared outputs summary but returned none"
    ):
        _run(tmp_path)
    assert not (tmp_path / "runs" / "toy" / "latest").exists()
    assert not list((tmp_path / "runs" / "toy").glob(".tmp-*")), "the aborted run is removed"


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (pd.DataFrame({"a": [1]}), "pandas.DataFrame"),
        ({"a": 1}, "builtins.dict"),
    ],
)
def test_a_table_must_be_a_polars_frame_never_pickled(
    tmp_path: Path, with_template: None, monkeypatch: pytest.MonkeyPatch, value: Any, needle: str
) -> None:
    def wrong(ctx: Any, raw: pl.DataFrame) -> Out:
        out = summarise(ctx, raw)
        out.values = {"summary": value}
        return out

    _with_stage(
        monkeypatch,
        Stage("summarise", wrong, inputs=("raw",), outputs=(Output("summary"),), model=True),
    )
    with pytest.raises(ContractError, match=f"declared output 'summary' a table.*{needle}"):
        _run(tmp_path)


def test_objects_are_saved_with_joblib_and_undeclared_plots_refused(
    tmp_path: Path, with_template: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_stage(
        monkeypatch,
        Stage(
            "summarise",
            summarise,
            inputs=("raw",),
            outputs=(Output("summary", "object"),),
            model=True,
        ),
    )
    _run(tmp_path)
    run = open_run(tmp_path / "runs", "toy")
    assert run.has("data/summary.joblib") and not run.has("tables/summary.parquet")

    def plotting(ctx: Any, raw: pl.DataFrame) -> Out:
        out = summarise(ctx, raw)
        out.plots = {"surprise": object()}
        return out

    _with_stage(
        monkeypatch,
        Stage("summarise", plotting, inputs=("raw",), outputs=(Output("summary"),), model=True),
    )
    with pytest.raises(ContractError, match="undeclared plot 'surprise'"):
        _run(tmp_path)


def test_facts_must_match_the_facts_model(
    tmp_path: Path, with_template: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def odd(ctx: Any, raw: pl.DataFrame) -> Out:
        out = summarise(ctx, raw)
        out.facts["surprise"] = 1
        return out

    _with_stage(
        monkeypatch,
        Stage("summarise", odd, inputs=("raw",), outputs=(Output("summary"),), model=True),
    )
    with pytest.raises(
        ContractError, match=r"facts do not match its facts model at 'summarise\.surprise'"
    ):
        _run(tmp_path)


class OrderTracker(MemoryTracker):
    """Remembers where `latest` pointed when the alias moved."""

    def __init__(self, runs: Path) -> None:
        super().__init__()
        self.runs_dir = runs
        self.latest_at_alias: str | None = None

    def set_alias(self, name: str, version: str) -> None:
        self.latest_at_alias = (self.runs_dir / name / "latest").read_text().strip()
        super().set_alias(name, version)


def test_alias_moves_only_after_the_commit(tmp_path: Path, with_template: None) -> None:
    tracker = OrderTracker(tmp_path / "runs")
    result = _run(tmp_path, tracker=tracker)
    assert tracker.latest_at_alias == result.run_id
    assert tracker.aliases == {"toy": "1"}


def test_a_failed_commit_leaves_the_alias_and_latest(
    tmp_path: Path, with_template: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _run(tmp_path)
    tracker = OrderTracker(tmp_path / "runs")

    def broken(self: RunWriter, **_: object) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(RunWriter, "commit", broken)
    with pytest.raises(OSError, match="disk full"):
        _run(tmp_path, tracker=tracker)
    assert tracker.aliases == {} and tracker.latest_at_alias is None
    assert tracker.status == "FINISHED" or tracker.status == "FAILED"
    assert (tmp_path / "runs" / "toy" / "latest").read_text().strip() == first.run_id


def test_two_runs_in_threads_keep_their_own_logs(tmp_path: Path, with_template: None) -> None:
    project = _project(tmp_path, ("one", "two"))
    results: dict[str, Any] = {}
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        barrier.wait()
        results[name] = run_analysis(project, name, frames={"frame": FRAME})

    threads = [threading.Thread(target=work, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, other in (("one", "two"), ("two", "one")):
        text = (results[name].path / "run.log").read_text()
        assert f"of '{name}'" in text and results[name].run_id in text
        assert f"of '{other}'" not in text and results[other].run_id not in text


@pytest.fixture(scope="module")
def trips_project(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("rerun")
    make_trips(n_rows=6_000, seed=1, n_routes=4).trips.write_parquet(folder / "trips.parquet")
    (folder / "project.yaml").write_text(
        """
tracking: {enabled: false}
analyses:
  - name: eta
    recipe: distribution
    source: {kind: file, path: trips.parquet}
    columns: {target: duration_min, categorical: [route, hour_band]}
    params: {min_combination_size: 20, xgboost: {n_estimators: 20}}
"""
    )
    return registry.load_project(folder / "project.yaml")


@pytest.mark.slow
def test_a_rerun_writes_new_results_and_marks_what_it_reused(trips_project: Any) -> None:
    base = run_analysis(trips_project, "eta")
    sentinel = b"stale confusion matrix"
    (base.path / "plots" / "confusion_matrix.png").write_bytes(sentinel)

    rerun = run_analysis(trips_project, "eta", stages=["classify"])
    new = open_run(trips_project.runs_root(), "eta")
    assert new.run_id == rerun.run_id != base.run_id
    # what classify produces is new, never the base run's file
    plot = new.path / "plots" / "confusion_matrix.png"
    assert plot.read_bytes() != sentinel and plot.read_bytes().startswith(b"\x89PNG")
    assert new.origin("plots/confusion_matrix.png") == {
        "stage": "classify",
        "run_id": rerun.run_id,
        "status": "produced",
    }
    assert new.origin("model/model.joblib")["run_id"] == rerun.run_id
    # what it reused is marked with the run that made it
    assert new.origin("plots/cluster_profiles.png") == {
        "stage": "cluster",
        "run_id": base.run_id,
        "status": "reused",
    }
    assert new.origin("tables/quantized.parquet")["status"] == "reused"
    stages = new.manifest["stages"]
    assert stages["classify"]["status"] == "ran" and stages["cluster"] == {
        "status": "reused",
        "run_id": base.run_id,
    }
    assert new.facts["cluster"] == base.facts["cluster"]
    assert rerun.metrics == base.metrics
    html = render_report(new)
    assert f"reused from run {base.run_id}" in html and "reran only some stages" in html

    # a second rerun keeps pointing at the run that produced each reused file
    third = run_analysis(trips_project, "eta", stages=["classify"])
    assert (
        open_run(trips_project.runs_root(), "eta").origin("plots/cluster_profiles.png")["run_id"]
        == base.run_id
    )
    assert third.run_id != rerun.run_id
