"""One contract suite over every registered recipe (and the template), picked up automatically.

Per recipe: defaults validate and have a JSON Schema; every stage input is produced
by an earlier stage, ``raw`` or a declared file input; the demo runs; its facts
validate against the recipe's facts model; every artifact is one its stage declared;
the predictor obeys the protocol (unsupported calls are UnsupportedError, never
AttributeError) and survives a pickle round trip. Every registered recipe declares at least
one baseline, and its demo run scores the model against every one of them on held-out data
(facts ``baselines``, metrics ``baseline.<name>.<metric>``), read back through the recipe's
typed facts model.
"""

from __future__ import annotations

import json
import math
import pickle
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import opslens.recipes as registry
from opslens.core.facts import RecipeFacts
from opslens.core.predictor import BasePredictor, Predictor
from opslens.core.recipe import Recipe
from opslens.errors import InstanceError, UnsupportedError
from opslens.recipes._template import RECIPE as TEMPLATE
from opslens.runner import load_input, run_analysis
from opslens.tracking.models import load_predictor
from opslens.tracking.runs import open_run

REGISTERED: list[Recipe] = [registry.get_recipe(n) for n in registry.recipe_names()]
RECIPES: list[Recipe] = [*REGISTERED, TEMPLATE]
IDS = [r.name for r in RECIPES]
_DEMO_RUNS: dict[str, tuple[Any, Any, Any]] = {}


@pytest.mark.parametrize("recipe", RECIPES, ids=IDS)
def test_declarations_are_consistent(recipe: Recipe) -> None:
    recipe.params_model()  # every knob has a default
    schema = recipe.params_model.model_json_schema()
    assert schema["type"] == "object" and schema.get("additionalProperties") is False
    assert "train" in recipe.pipelines
    assert recipe.predictor is not None and issubclass(recipe.predictor, BasePredictor)
    assert recipe.facts_model is not None and issubclass(recipe.facts_model, RecipeFacts)
    files_in = {i.name for i in recipe.inputs}
    for name, pipeline in recipe.pipelines.items():
        available = {"raw"} | files_in
        names = [s.name for s in pipeline]
        assert len(names) == len(set(names))
        for i, stage in enumerate(pipeline):
            missing = set(stage.inputs) - available
            later = {o.name for s in pipeline[i:] for o in s.outputs}
            # train runs from the source alone; other pipelines (score, retrain) may also be
            # given values by the caller (run_analysis(inputs=...)), or read train's results
            # from the latest run, but never an output of their own later stages
            assert not (missing if name == "train" else missing & later), (
                f"{recipe.name}.{stage.name} needs {missing} before it is made"
            )
            available |= {o.name for o in stage.outputs}
            assert stage.name in recipe.facts_model.model_fields
    assert sum(s.model for s in recipe.stages) == 1, "exactly one stage returns the model"
    assert recipe.demo is not None
    assert (files(recipe.package) / "demo" / "project.yaml").is_file()


def _demo_project(recipe: Recipe, folder: Path) -> Any:
    assert recipe.demo is not None
    for name in recipe.demo.files:
        (folder / name).write_text(
            (files(recipe.package) / "demo" / name).read_text(encoding="utf-8")
        )
    text = (folder / "project.yaml").read_text()
    text = text.replace('tracking: {uri: "sqlite:///mlflow.db"}', "tracking: {enabled: false}")
    (folder / "project.yaml").write_text(text)
    return registry.load_project(folder / "project.yaml")


def _demo_run(recipe: Recipe, factory: pytest.TempPathFactory) -> tuple[Any, Any, Any]:
    """The recipe's demo project, its first active analysis and its run (one run per recipe,
    shared by the tests of this module)."""
    if recipe.name not in _DEMO_RUNS:
        project = _demo_project(recipe, factory.mktemp(f"demo-{recipe.name}"))
        analysis = project.active_analyses()[0]
        _DEMO_RUNS[recipe.name] = (project, analysis, run_analysis(project, analysis.name))
    return _DEMO_RUNS[recipe.name]


@pytest.mark.parametrize("recipe", REGISTERED, ids=[r.name for r in REGISTERED])
def test_every_recipe_declares_a_baseline(recipe: Recipe) -> None:
    assert recipe.baselines, f"the {recipe.name} recipe declares no baseline"
    names = [b.name for b in recipe.baselines]
    assert len(names) == len(set(names))
    for b in recipe.baselines:
        assert re.fullmatch(r"[a-z0-9_]+", b.name), b.name
        assert b.label.strip(), b.name


@pytest.mark.slow
@pytest.mark.parametrize("recipe", REGISTERED, ids=[r.name for r in REGISTERED])
def test_demo_run_scores_every_declared_baseline(
    recipe: Recipe, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project, analysis, result = _demo_run(recipe, tmp_path_factory)
    run = open_run(project.runs_root(), analysis.name)
    assert recipe.baselines, f"the {recipe.name} recipe declares no baseline"
    facts = recipe.read_facts(run.facts)  # facts.json validates through the typed model
    assert facts.baselines is not None, "the demo run wrote no baselines to its facts"
    scored = {s.baseline for s in facts.baselines.scores}
    declared = {b.name for b in recipe.baselines}
    assert scored == declared, f"declared {sorted(declared)}, scored {sorted(scored)}"
    for s in facts.baselines.scores:
        assert s.n > 0 and math.isfinite(s.model) and math.isfinite(s.value), s
        assert run.manifest["metrics"][f"baseline.{s.baseline}.{s.metric}"] == s.value
        assert f"model.{s.metric}" in run.manifest["metrics"]
    beats = run.manifest["metrics"]["beats_baselines"]
    assert beats == (1.0 if facts.baselines.model_wins else 0.0)
    assert result.baselines == facts.baselines
    promotion = run.manifest["promotion"]
    assert promotion["alias"] == "champion"
    assert promotion["moved"] is facts.baselines.model_wins


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES, ids=IDS)
def test_demo_runs_and_keeps_the_contract(
    recipe: Recipe, tmp_path_factory: pytest.TempPathFactory, with_template: None
) -> None:
    project, analysis, result = _demo_run(recipe, tmp_path_factory)
    run = open_run(project.runs_root(), analysis.name)
    assert run.run_id == result.run_id

    # facts: typed by the recipe's facts model, one section per stage that states facts
    assert recipe.facts_model is not None
    facts = recipe.facts_model.model_validate(run.facts)
    assert facts.analysis.recipe == recipe.name

    # artifacts: each one declared by the stage the manifest names, and on disk
    stages = {s.name: s for s in recipe.stages}
    artifacts = run.manifest["artifacts"]
    assert artifacts, "the manifest records every artifact"
    for relative, origin in artifacts.items():
        assert run.has(relative), relative
        stage = stages[origin["stage"]]
        folder, name = relative.split("/", 1)
        stem = name.rsplit(".", 1)[0]
        if folder == "plots":
            assert stage.owns("plots", stem), relative
        elif folder == "model":
            assert stage.model
        else:
            declared = stage.output(stem)
            assert (
                declared is not None
                and relative.startswith("tables/" if declared.kind == "table" else "data/")
            ) or stage.owns("tables", stem), relative
    on_disk = {
        str(p.relative_to(run.path))
        for p in run.path.rglob("*")
        if p.is_file() and p.parent != run.path
    }
    assert on_disk == set(artifacts), "every file in tables/, plots/, data/, model/ is recorded"

    # the predictor protocol
    predictor = load_predictor(project.runs_root(), analysis.name).predictor
    assert isinstance(predictor, Predictor) and isinstance(predictor, recipe.predictor)
    assert predictor.recipe == recipe.name
    schema = predictor.input_schema()
    assert isinstance(schema, dict)
    example = pl.read_parquet(run.path / "model" / "input_example.parquet")
    out = predictor.predict_frame(example)
    assert isinstance(out, pl.DataFrame) and out.height > 0
    again = pickle.loads(pickle.dumps(predictor)).predict_frame(example)
    assert out.equals(again)
    assert recipe.demo is not None and recipe.demo.instances is not None
    data = load_input(analysis).frame
    answered = 0
    for instance in recipe.demo.instances(data, analysis):
        try:
            answer = predictor.predict_one(instance)
        except InstanceError:
            continue
        json.dumps(answer)
        answered += 1
        for call in ("explain_one", "figure"):
            if predictor.supports(call):
                continue
            with pytest.raises(UnsupportedError):
                if call == "figure":
                    predictor.figure(instance, answer, title="t")
                else:
                    predictor.explain_one(instance)
    assert answered >= 1
    with pytest.raises(InstanceError):
        predictor.predict_one("not an object")  # type: ignore[arg-type]
