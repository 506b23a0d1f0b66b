"""Baselines in every run: scores collected from the stages into facts and metrics, the verdict
in the headline, the serving alias withheld from a model that loses (unless forced), and the
scores of stages not rerun carried over."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.unit.runner.test_run import _project

from opslens.core.baselines import Baseline, BaselineScore
from opslens.core.recipe import Out, Output, Recipe, Stage, StageContext
from opslens.errors import ContractError
from opslens.recipes._template import RECIPE as TEMPLATE
from opslens.recipes._template import summarise
from opslens.runner import run as runner_module
from opslens.runner import run_analysis
from opslens.tracking.models import load_predictor
from opslens.tracking.runs import open_run
from opslens.tracking.tracker import MemoryTracker

# the target is 1, 2, 3, 6: its mean 3.0 is the "model"; a planted baseline figure says who wins
FRAME = pl.DataFrame({"minutes": [1.0, 2.0, 3.0, 6.0]})
BASELINES = (Baseline("median", "the median"), Baseline("zero", "always zero"))


def _errors(raw: pl.DataFrame) -> tuple[float, float, float]:
    """Mean absolute error of the mean (the model), of the median and of zero, on the rows."""
    y = raw["minutes"]
    mean, median = float(y.mean()), float(y.median())  # type: ignore[arg-type]
    return (
        float((y - mean).abs().mean()),  # type: ignore[arg-type]
        float((y - median).abs().mean()),  # type: ignore[arg-type]
        float(y.abs().mean()),  # type: ignore[arg-type]
    )


def _score(ctx: StageContext, raw: pl.DataFrame) -> Out:
    model, median, zero = _errors(raw)
    scores = [
        BaselineScore(
            baseline=name,
            label=label,
            metric="mae_minutes",
            metric_label="MAE of minutes",
            model=model,
            value=value,
            higher_is_better=False,
            n=raw.height,
        )
        for name, label, value in (("median", "the median", median), ("zero", "always zero", zero))
    ]
    return Out(values={"scored": raw}, metrics={"mae": model}, baselines=scores)


def _recipe(gate_median: bool = True) -> Recipe:
    def score(ctx: StageContext, raw: pl.DataFrame) -> Out:
        out = _score(ctx, raw)
        out.baselines = [
            s.model_copy(update={"gate": gate_median}) if s.baseline == "median" else s
            for s in out.baselines
        ]
        return out

    def fit(ctx: StageContext, scored: pl.DataFrame) -> Out:
        return summarise(ctx, scored)

    stages = (
        Stage("score", score, inputs=("raw",), outputs=(Output("scored"),)),
        Stage("summarise", fit, inputs=("scored",), outputs=(Output("summary"),), model=True),
    )
    return dataclasses.replace(TEMPLATE, pipelines={"train": stages}, baselines=BASELINES)


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch, with_template: None) -> Any:
    def use(recipe: Recipe) -> None:
        monkeypatch.setattr(runner_module, "get_recipe", lambda _name: recipe)

    return use


def test_a_model_that_loses_is_registered_but_not_made_champion(tmp_path: Path, toy: Any) -> None:
    # planted: on 1, 2, 3, 6 the mean (the model) and the median tie at MAE 1.5 (a tie goes to
    # the model); on a skewed target the median (MAE 3.8) and zero (4.8) beat the mean (6.08)
    assert _errors(FRAME) == (1.5, 1.5, 3.0)
    skewed = pl.DataFrame({"minutes": [1.0, 1.0, 1.0, 1.0, 20.0]})
    assert _errors(skewed) == pytest.approx((6.08, 3.8, 4.8))
    toy(_recipe())
    tracker = MemoryTracker()
    result = run_analysis(_project(tmp_path), "toy", frames={"frame": skewed}, tracker=tracker)

    assert tracker.models and tracker.aliases == {}  # registered, alias not moved
    assert result.model_version == "1"
    assert result.promotion is not None and result.promotion.moved is False
    assert result.baselines is not None and result.baselines.losses == ["median", "zero"]
    assert result.metrics["baseline.median.mae_minutes"] == pytest.approx(3.8)
    assert result.metrics["model.mae_minutes"] == pytest.approx(6.08)
    assert result.metrics["baseline.zero.mae_minutes"] == pytest.approx(4.8)
    assert result.metrics["beats_baselines"] == 0.0
    verdict = result.baselines.verdict  # the figures as opslens.core.baselines formats them
    assert re.fullmatch(
        r"the median is better on MAE of minutes: 3\.80? against 6\.08 \(5 held-out rows\)", verdict
    )
    assert result.headline().startswith(verdict + "; mae=6.08")
    run = open_run(tmp_path / "runs", "toy")
    said = f"version 1 registered but not made champion: {verdict}; pass --force to serve it anyway"
    assert said in run.manifest["warnings"] and said in result.warnings
    assert run.manifest["promotion"] == {
        "alias": "champion",
        "version": "1",
        "moved": False,
        "why": f"held back: {verdict}",
    }
    facts = TEMPLATE.read_facts(run.facts)
    assert facts.baselines is not None and facts.baselines.verdict == verdict
    assert [s.baseline for s in facts.baselines.scores] == ["median", "zero"]
    assert said in (run.path / "run.log").read_text()


def test_force_serves_a_model_that_loses(tmp_path: Path, toy: Any) -> None:
    skewed = pl.DataFrame({"minutes": [1.0, 1.0, 1.0, 1.0, 20.0]})
    toy(_recipe())
    tracker = MemoryTracker()
    result = run_analysis(
        _project(tmp_path), "toy", frames={"frame": skewed}, tracker=tracker, force=True
    )
    assert tracker.aliases == {"toy": "1"}
    assert result.promotion is not None and result.promotion.moved is True
    assert result.promotion.why.startswith("forced: the median is better")
    assert result.metrics["beats_baselines"] == 0.0
    # promote=False withholds the alias even from a model that wins
    other = MemoryTracker()
    run_analysis(_project(tmp_path), "toy", frames={"frame": FRAME}, tracker=other, promote=False)
    assert other.models and other.aliases == {}


def test_a_model_that_wins_is_made_champion(tmp_path: Path, toy: Any) -> None:
    toy(_recipe())
    tracker = MemoryTracker()
    # symmetric target: the mean and the median tie (ties go to the model), zero is far worse
    result = run_analysis(_project(tmp_path), "toy", frames={"frame": FRAME}, tracker=tracker)
    assert tracker.aliases == {"toy": "1"}
    assert result.baselines is not None and result.baselines.model_wins
    assert result.metrics["beats_baselines"] == 1.0
    assert result.headline().startswith("the model beats the median and always zero on held-out")
    assert "; mae=1.5" in result.headline()
    manifest = open_run(tmp_path / "runs", "toy").manifest
    assert manifest["promotion"]["moved"] is True and manifest["pipeline"] == "train"


def test_a_losing_comparison_that_does_not_gate_keeps_the_alias_moving(
    tmp_path: Path, toy: Any
) -> None:
    # the median wins (MAE 4 against 6.4) but does not gate; zero (MAE 14) gates and loses
    frame = pl.DataFrame({"minutes": [10.0, 10.0, 10.0, 10.0, 30.0]})
    assert _errors(frame) == pytest.approx((6.4, 4.0, 14.0))
    toy(_recipe(gate_median=False))
    tracker = MemoryTracker()
    result = run_analysis(_project(tmp_path), "toy", frames={"frame": frame}, tracker=tracker)
    assert tracker.aliases == {"toy": "1"}
    assert result.baselines is not None and result.baselines.model_wins
    assert result.metrics["baseline.median.mae_minutes"] == pytest.approx(4.0)


def test_a_rerun_keeps_the_baseline_scores_of_stages_it_did_not_run(
    tmp_path: Path, toy: Any
) -> None:
    skewed = pl.DataFrame({"minutes": [1.0, 1.0, 1.0, 1.0, 20.0]})
    toy(_recipe())
    project = _project(tmp_path)
    first = run_analysis(project, "toy", frames={"frame": skewed})
    again = run_analysis(project, "toy", frames={"frame": skewed}, stages=["summarise"])
    assert again.facts["baselines"] == first.facts["baselines"]
    assert {k: v for k, v in again.metrics.items() if "." in k} == {
        k: v for k, v in first.metrics.items() if "." in k
    }
    assert again.baselines is not None and again.baselines.losses == ["median", "zero"]
    assert again.promotion is not None and not again.promotion.moved


def test_a_score_of_an_undeclared_baseline_names_the_stage(tmp_path: Path, toy: Any) -> None:
    toy(dataclasses.replace(_recipe(), baselines=(Baseline("zero", "always zero"),)))
    with pytest.raises(ContractError, match="stage 'score' scored the baseline 'median'"):
        run_analysis(_project(tmp_path), "toy", frames={"frame": FRAME})
    assert not (tmp_path / "runs" / "toy" / "latest").exists()


def test_reason_and_inputs_reach_the_manifest_and_the_stages(tmp_path: Path, toy: Any) -> None:
    seen: dict[str, Any] = {}

    def fit(ctx: StageContext, scored: pl.DataFrame, champion: Any) -> Out:
        seen["champion"] = champion
        return summarise(ctx, scored)

    recipe = _recipe()
    score, _ = recipe.stages
    stages = (
        score,
        Stage(
            "summarise",
            fit,
            inputs=("scored", "champion"),
            outputs=(Output("summary"),),
            model=True,
        ),
    )
    toy(dataclasses.replace(recipe, pipelines={"train": stages}))
    result = run_analysis(
        _project(tmp_path),
        "toy",
        frames={"frame": FRAME},
        inputs={"champion": "model v7"},
        reason="drift in batch 7",
    )
    assert seen == {"champion": "model v7"}
    assert result.view.manifest["reason"] == "drift in batch 7"


def test_a_scoring_run_neither_serves_nor_bases_a_training_rerun(tmp_path: Path, toy: Any) -> None:
    def score_batch(ctx: StageContext, batch: pl.DataFrame, champion: Any) -> Out:
        answers = champion.predict_frame(batch)
        return Out(values={"answers": answers}, metrics={"scored": float(answers.height)})

    recipe = _recipe()
    batch = (
        Stage(
            "score_batch", score_batch, inputs=("batch", "champion"), outputs=(Output("answers"),)
        ),
    )
    toy(dataclasses.replace(recipe, pipelines={**recipe.pipelines, "batch": batch}))
    project = _project(tmp_path)
    trained = run_analysis(project, "toy", frames={"frame": FRAME})
    scored = run_analysis(
        project,
        "toy",
        pipeline="batch",
        inputs={"batch": FRAME.head(3), "champion": trained.predictor()},
        reason="nightly batch",
    )
    runs = tmp_path / "runs"
    # a scored batch is a run folder of its own, but `latest` still names the trained run
    assert (runs / "toy" / scored.run_id / "manifest.json").is_file()
    assert open_run(runs, "toy").run_id == trained.run_id
    assert scored.status == "complete" and scored.metrics == {"scored": 3.0}
    manifest = scored.view.manifest
    assert (manifest["pipeline"], manifest["reason"]) == ("batch", "nightly batch")
    assert scored.table("answers")["mean"].to_list() == [3.0, 3.0, 3.0]
    # the predictor of the analysis is still the trained one, not the model-less batch run
    assert load_predictor(runs, "toy").run_id == trained.run_id
    # a rerun of one training stage continues the training run, not the batch run
    again = run_analysis(project, "toy", frames={"frame": FRAME}, stages=["summarise"])
    assert again.view.manifest["based_on"] == trained.run_id
    assert again.status == "complete"
