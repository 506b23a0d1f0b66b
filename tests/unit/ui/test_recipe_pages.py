"""Each recipe's own pages (AppTest) on a project holding all five recipes' demos, with
numbers asserted; the page list follows the project's recipes."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

import opslens
from opslens.config import ProjectConfig
from opslens.synthetic.trips import make_trips

pytestmark = pytest.mark.slow


def _page(module: str, project: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("OPSLENS_PROJECT", str(project))
    monkeypatch.chdir(project.parent)
    script = f"from {module} import render\nrender()\n"
    at = AppTest.from_string(script, default_timeout=180).run()
    assert not at.exception, at.exception
    return at


def _project(recipes: list[str]) -> ProjectConfig:
    """A stand-in holding only what the page list reads: each analysis's recipe."""
    analyses = [SimpleNamespace(name=r, recipe=r) for r in recipes]
    return SimpleNamespace(analyses=analyses)  # type: ignore[return-value]


def _page_list(config_json: str) -> None:
    import json

    import streamlit as st

    from opslens.recipes import project_from_mapping
    from opslens.ui.app import recipe_pages

    config = project_from_mapping(json.loads(config_json)) if config_json != "null" else None
    st.json(sorted(recipe_pages(config)))


def test_the_page_list_follows_the_projects_recipes() -> None:
    from opslens.ui.app import page_recipes

    assert page_recipes(None) == ["fleet"]
    assert page_recipes(_project(["distribution"])) == ["distribution"]
    assert page_recipes(_project(["propensity", "segments"])) == ["segments", "propensity"]
    mapping = {
        "tracking": {"enabled": False},
        "analyses": [
            {
                "name": "eta",
                "recipe": "distribution",
                "source": {"kind": "memory"},
                "columns": {"target": "y", "categorical": ["c"]},
            }
        ],
    }
    at = AppTest.from_function(_page_list, args=(json.dumps(mapping),), default_timeout=60).run()
    assert json.loads(at.json[0].value) == ["patterns"]  # no Series, Fleet, Known failures
    at = AppTest.from_function(_page_list, args=("null",), default_timeout=60).run()
    assert json.loads(at.json[0].value) == ["failures", "fleet", "series"]


def test_patterns_predicts_the_planted_pattern(
    every_recipe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page("opslens.recipes.distribution.pages.patterns", every_recipe, monkeypatch)
    truth = make_trips(n_rows=60_000, seed=0).truth
    shown = pl.DataFrame(at.dataframe[1].value)  # the pattern map
    assert shown.height == 96
    # the pattern map groups the planted shapes: each shape's combinations share one pattern
    joined = shown.join(truth, on=["route", "hour_band", "vehicle_type"])
    pure = joined.group_by("shape").agg(pl.col("pattern").n_unique().alias("n"))
    assert pure["n"].to_list() == [1, 1, 1]
    # a planted "slow & right-skewed" combination: the page predicts its shape's pattern
    slow = truth.filter(pl.col("shape_name") == "slow & right-skewed").row(0, named=True)
    for name in ("route", "hour_band", "vehicle_type"):
        at.selectbox(key=f"patterns_{name}").set_value(slow[name])
    at.run()
    assert not at.exception
    expected = joined.filter(pl.col("shape") == slow["shape"])["pattern"][0]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Predicted pattern"] == str(expected)
    assert float(metrics["Probability"].rstrip("%")) > 90
    probabilities = pl.DataFrame(at.dataframe[0].value)
    assert probabilities["probability"].sum() == pytest.approx(1.0, abs=1e-6)
    # held-out scores: the model against the own-histogram and global baselines
    scores = {r["metric"]: r for r in pl.DataFrame(at.dataframe[2].value).to_dicts()}
    assert scores["log_score"]["model"] > scores["log_score"]["global"]
    assert any("beats" in s.value or "wins" in s.value for s in at.success) or at.warning


def test_residuals_show_the_planted_fault(
    every_recipe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSLENS_PROJECT", str(every_recipe))
    at = _page("opslens.recipes.residual.pages.residuals", every_recipe, monkeypatch)
    at.selectbox(key="residuals_analysis").set_value("machine-axes").run()
    at.selectbox(key="residuals_axis").set_value("axis2").run()
    assert not at.exception
    levels = {m.label: int(m.value.replace(",", "")) for m in at.metric}
    # the fault is planted on axis2: its held-out samples reach error, axis1's do not
    assert levels["error"] >= 30
    runs = pl.DataFrame(at.dataframe[0].value)
    assert runs["len"].max() >= 30 and set(runs["level"]) <= {"alert", "error"}
    at.selectbox(key="residuals_axis").set_value("axis1").run()
    assert {m.label: int(m.value.replace(",", "")) for m in at.metric}["error"] == 0
    thresholds = pl.DataFrame(at.dataframe[1].value)
    assert thresholds["axis"].to_list() == ["axis1", "axis2", "axis3"]
    assert (thresholds["MaxC"] > thresholds["MinC"]).all()
    assert any("tracking is off" in i.value for i in at.info)


def test_live_scores_a_growing_file(every_recipe: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from opslens.synthetic.axes import make_axes

    make_axes(seed=0, n_samples=3000, dt_seconds=2.0).frame.write_csv(
        every_recipe.parent / "live.csv"
    )
    at = _page("opslens.recipes.residual.pages.live", every_recipe, monkeypatch)
    at.selectbox(key="live_analysis").set_value("machine-axes").run()
    assert any("Give the feed" in i.value for i in at.info)
    at.text_input(key="live_path").set_value("live.csv").run()
    assert not at.exception and not at.error
    counts = pl.DataFrame(at.dataframe[0].value)
    assert counts["axis"].to_list() == ["axis1", "axis2", "axis3"]
    assert (counts["ok"] + counts["alert"] + counts["error"]).to_list() == [500] * 3
    # the newest 500 samples are past the fault on axis2 only
    errors = dict(zip(counts["axis"], counts["error"], strict=True))
    assert errors["axis2"] >= 30 and errors["axis1"] == errors["axis3"] == 0
    at.text_input(key="live_path").set_value("missing.csv").run()
    assert any("does not exist" in e.value for e in at.error)


def test_propensity_ranks_a_users_items(
    every_recipe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page("opslens.recipes.propensity.pages.ranking", every_recipe, monkeypatch)
    metrics = {m.label: m.value for m in at.metric}
    assert 0 < float(metrics["base rate"].rstrip("%")) < 5
    # the model's held-out PR-AUC is above the base rate (what a random ranking scores)
    assert float(metrics["PR-AUC (model)"]) > 3 * float(metrics["base rate"].rstrip("%")) / 100
    assert not at.number_input  # no raw feature form on this page
    at.button(key="score_events").click().run()
    assert not at.exception and not at.error
    ranked = pl.DataFrame(at.dataframe[-1].value)
    assert ranked.height == len(at.multiselect(key="score_items").value) > 0
    assert ranked["probability"].is_between(0, 1).all()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The segments demo with tracking on, trained and fed four batches (drift from the third)."""
    from importlib.resources import files

    from opslens.api import load_project
    from opslens.lifecycle.registry import open_stores
    from opslens.runner.lifecycle import Deployment
    from opslens.synthetic.patients import make_patient_batches

    folder = tmp_path_factory.mktemp("deployed")
    text = (files("opslens.recipes.segments") / "demo" / "project.yaml").read_text()
    project = folder / "project.yaml"
    project.write_text(text.replace("sqlite:///mlflow.db", f"sqlite:///{folder}/mlflow.db"))
    opslens.run(project, analysis="patients")
    config = load_project(project)
    life = Deployment(config, "patients", *open_stores(config, "patients"))
    for batch in make_patient_batches(4, 400, drift_batch=2, seed=1):
        life.batch(batch.frame)
    return project


def test_monitoring_shows_batches_and_moves_the_champion(
    deployed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page("opslens.recipes.segments.pages.monitoring", deployed, monkeypatch)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Batches"] == "4"
    watched = pl.DataFrame(at.dataframe[0].value)
    noise = watched.filter(pl.col("share") == "noise_ratio").sort("batch")
    # the drifted third batch passes the 0.25 noise threshold, the first two do not
    assert noise["alert"].to_list()[:3] == [False, False, True]
    errors = pl.DataFrame(at.dataframe[1].value)
    assert set(errors["target"]) == {"series", "resource"}
    champion = metrics["Champion"]
    assert champion == "2"  # retrained on drift and promoted
    assert at.button(key="monitoring_rollback").label == "Roll back to version 1"
    at.button(key="monitoring_rollback").click().run()
    assert any("Make version 1 champion" in w.value for w in at.warning)
    at.button(key="monitoring_cancel").click().run()
    assert not at.warning
    at.button(key="monitoring_rollback").click().run()
    at.text_input(key="monitoring_reason").set_value("the drift was a lab error").run()
    at.button(key="monitoring_confirm").click().run()
    assert not at.exception and not at.error
    assert any("Version 1 is champion" in s.value for s in at.success)
    at.run()
    assert {m.label: m.value for m in at.metric}["Champion"] == "1"
    tables = [pl.DataFrame(d.value) for d in at.dataframe]
    history = next(t for t in tables if "alias" in t.columns)
    last = history.filter(pl.col("alias") == "champion").row(-1, named=True)
    assert (last["version"], last["was"], last["until"]) == ("1", "2", "now")
    assert "the drift was a lab error" in last["why"]
