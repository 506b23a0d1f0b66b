"""The segments model against its baseline, one global LightGBM with the same features, on the
same held-out rows: the demo run states one score per target with finite intervals; planted
per-segment slopes make the per-segment models win by a wide margin; data without segment
structure make the global model win and the verdict say so (the comparison is not rigged).
The facts are read through the typed model and narrated from it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from opslens.config import AnalysisConfig
from opslens.config.sources import SyntheticSource
from opslens.core.baselines import summarise
from opslens.core.facts import BaselinesFacts
from opslens.core.recipe import Out, StageContext
from opslens.errors import RunError
from opslens.recipes.segments import RECIPE
from opslens.recipes.segments.baseline import GLOBAL_MODEL, compare_rmse
from opslens.recipes.segments.facts import SegmentsFacts
from opslens.recipes.segments.narrative import segments_narrative
from opslens.recipes.segments.params import SegmentsParams
from opslens.recipes.segments.stages import fit_stage, prepare
from opslens.synthetic import generate
from opslens.tracking.runs import jsonable

ROOT = Path(__file__).resolve().parents[4]
K = 6  # planted segments
_SLOPE_X = np.array([-2.0, 2.0, -1.0, 1.0, 2.0, -2.0])
_SLOPE_Z = np.array([1.0, -1.0, 2.0, -2.0, -1.0, 1.0])
NOISE = 0.3


def _fit(analysis: AnalysisConfig, raw: pl.DataFrame, seed: int = 0) -> tuple[Out, Out]:
    ctx = StageContext(analysis=analysis, params=analysis.params, random_state=seed)
    prepared = prepare(ctx, raw)
    return prepared, fit_stage(ctx, prepared.values["prepared"])


def _typed(analysis: AnalysisConfig, prepared: Out, fit: Out) -> SegmentsFacts:
    """The facts as the runner writes them (JSON-ready) read back through the recipe's model."""
    facts = {
        "analysis": {
            "name": analysis.name,
            "recipe": "segments",
            "source": "synthetic",
            "run_id": "r1",
        },
        "prepare": prepared.facts,
        "fit": fit.facts,
        "baselines": summarise(fit.baselines).model_dump(),
    }
    typed = RECIPE.read_facts(jsonable(facts))
    assert isinstance(typed, SegmentsFacts)
    return typed


def planted(n: int, *, structured: bool, seed: int) -> pl.DataFrame:
    """Six well-separated blobs in (f1, f2); y and r depend on model features x and z.

    ``structured``: each blob has its own slopes (y = a_s x + b_s z, r = b_s x − a_s z);
    otherwise one smooth function of x (y) and of z (r) holds everywhere.
    """
    rng = np.random.default_rng(seed)
    s = rng.integers(0, K, n)
    angle = 2 * np.pi * np.arange(K) / K
    f = 6 * np.c_[np.cos(angle), np.sin(angle)][s] + rng.normal(0, 0.7, (n, 2))
    x, z = rng.normal(size=n), rng.normal(size=n)
    if structured:
        y = _SLOPE_X[s] * x + _SLOPE_Z[s] * z
        r = _SLOPE_Z[s] * x - _SLOPE_X[s] * z
    else:
        y = np.sin(2 * x) + 0.5 * x
        r = z + 0.5 * z**2
    return pl.DataFrame(
        {
            "f1": f[:, 0],
            "f2": f[:, 1],
            "x": x,
            "z": z,
            "y": y + rng.normal(0, NOISE, n),
            "r": r + rng.normal(0, NOISE, n),
        }
    )


def _planted_analysis() -> AnalysisConfig:
    params = SegmentsParams.model_validate({"resource_target": "r", "model_features": ["x", "z"]})
    return AnalysisConfig(
        name="planted",
        recipe="segments",
        source={"kind": "memory"},
        columns={"target": "y", "metrics": ["f1", "f2"]},
        params=params,
    )


@pytest.fixture(scope="module")
def demo() -> tuple[AnalysisConfig, Out, Out]:
    from opslens.api import load_project

    analysis = load_project(ROOT / "examples" / "segments" / "project.yaml").analyses[0]
    src = analysis.source
    assert isinstance(src, SyntheticSource)
    raw = generate(src.generator, seed=src.seed, options=src.options)
    prepared, fit = _fit(analysis, raw, analysis.random_state)
    return analysis, prepared, fit


def test_demo_run_scores_each_target_against_the_global_model(demo) -> None:
    analysis, prepared, fit = demo
    facts = _typed(analysis, prepared, fit)
    assert RECIPE.baselines == (GLOBAL_MODEL,)
    assert isinstance(facts.baselines, BaselinesFacts)
    scores = facts.baselines.for_baseline("global_model")
    assert [s.metric for s in scores] == ["rmse_next_score", "rmse_resource_hours"]
    assert [s.metric_label for s in scores] == ["RMSE of next_score", "RMSE of resource_hours"]
    test_rows = prepared.facts["test_rows"]
    for s in scores:
        assert s.gate and not s.higher_is_better
        assert 0.95 * test_rows <= s.n <= test_rows
        assert s.interval is not None and all(math.isfinite(v) for v in s.interval)
        lo, hi = s.interval
        assert lo < s.model - s.value < hi, "the interval is around the RMSE difference"
        assert s.p_value is not None and 0 < s.p_value <= 1
    # the baseline is fitted on its own, but with the same rows, features and settings it is
    # the model's global fallback: the same held-out RMSE as the fit facts state
    for s, target in zip(scores, ["next_score", "resource_hours"], strict=True):
        assert s.value == pytest.approx(facts.fit.targets[target].global_.rmse, rel=1e-9)
        assert s.model == pytest.approx(facts.fit.targets[target].segment.rmse, rel=1e-9)
    # the demo's resource target has strong per-segment structure: a clear, significant win
    resource = scores[1]
    assert resource.model < 0.8 * resource.value and resource.interval[1] < 0
    assert resource.p_value < 0.05
    # the global model is always there: the model as served never loses to it here
    assert scores[0].model <= scores[0].value and facts.baselines.model_wins


def test_demo_narrative_reads_the_typed_facts_and_states_the_verdict(demo) -> None:
    analysis, prepared, fit = demo
    facts = _typed(analysis, prepared, fit)
    n = segments_narrative(facts, ["segments"])
    assert facts.baselines is not None
    assert facts.baselines.model_wins
    assert " The model beats one global LightGBM with the same features on held-out data." in (
        n.summary
    )
    assert n.summary.startswith("4 segments found in ") and len(n.summary.split()) <= 40
    assert [s.title for s in n.sections] == [
        "Data",
        "Segments",
        "The model as served against the global model",
        "Model per segment",
    ]
    assert n.sections[0].paragraphs[0].startswith("3,000 rows read from synthetic")


def test_planted_per_segment_slopes_beat_one_global_model() -> None:
    analysis = _planted_analysis()
    _, fit = _fit(analysis, planted(3000, structured=True, seed=0))
    assert fit.facts["segments"] == K
    verdict = summarise(fit.baselines)
    assert verdict.model_wins and verdict.losses == []
    for s in fit.baselines:
        # one global model has to find six interactions; each segment's model a plane
        assert s.model < 0.6 * s.value, (s.metric, s.model, s.value)
        assert s.model < 2 * NOISE
        assert s.interval is not None and s.interval[1] < 0
        assert s.p_value is not None and s.p_value < 0.01


def test_no_segment_structure_every_segment_keeps_the_global_model() -> None:
    """Blobs without their own relationships: per-segment models would lose (a sixth of the rows
    each), so every segment keeps the global answer and the model ties its baseline."""
    analysis = _planted_analysis()
    prepared, fit = _fit(analysis, planted(3000, structured=False, seed=0))
    assert fit.facts["segments"] == K, "the blobs are still found: only the targets ignore them"
    facts = _typed(analysis, prepared, fit)
    assert facts.fit is not None
    for target in ("y", "r"):
        choices = facts.fit.targets[target].choices
        assert len(choices) == K and {c.choice for c in choices.values()} == {"global"}
        # the segments' own models were worse out of fold: the comparison is not rigged
        assert all(c.rmse_segment > c.rmse_global for c in choices.values())
    assert facts.baselines is not None and facts.baselines.model_wins
    for s in facts.baselines.scores:
        assert s.model == pytest.approx(s.value, rel=1e-9) and s.value < 1.2 * NOISE
    assert "Model per segment" in [s.title for s in segments_narrative(facts, []).sections]


def test_compare_rmse_groups_units_and_ties() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=400)
    pred = y + rng.normal(0, 1, 400)
    tie = compare_rmse(y, pred, pred, target="Resource-Hours")
    assert tie.metric == "rmse_resource_hours" and tie.model_wins
    assert tie.interval == (0.0, 0.0) and tie.model == tie.value
    # rows of one unit share an error: resampled by unit the interval is wider than by row
    units = np.repeat(np.arange(40), 10)
    shared = np.repeat(rng.normal(0, 1, 40), 10)
    base = y + shared
    by_row = compare_rmse(y, pred, base, target="y")
    by_unit = compare_rmse(y, pred, base, target="y", groups=units)
    assert by_row.interval is not None and by_unit.interval is not None
    width = lambda s: s.interval[1] - s.interval[0]  # noqa: E731
    assert width(by_unit) > 1.5 * width(by_row)


def test_a_facts_file_its_model_rejects_names_the_field() -> None:
    bad = {
        "analysis": {"name": "p", "recipe": "segments", "run_id": "r"},
        "fit": {
            "segments": 1,
            "training_rows": 9,
            "noise_points": 0,
            "noise_ratio": 0.0,
            "segment_sizes": {"0": 9},
            "min_segment_rows": 5,
            "segments_on_global": [],
            "hdbscan": {},
            "targets": {"y": {"segment": {"rmse": 1.0, "mae": 1.0, "r2": 0.5, "n": 3}}},
        },
    }
    with pytest.raises(RunError, match=r"at 'fit\.targets\.y\.global': Field required"):
        RECIPE.read_facts(bad)


def test_nothing_held_out_means_no_comparison_not_an_error() -> None:
    analysis = _planted_analysis()
    ctx = StageContext(analysis=analysis, params=analysis.params, random_state=0)
    prepared = prepare(ctx, planted(600, structured=True, seed=1)).values["prepared"]
    fit = fit_stage(ctx, prepared.with_columns(pl.lit("train").alias("split")))
    assert fit.baselines == [] and summarise(fit.baselines).verdict == "no baseline was scored"
    assert fit.facts["targets"]["y"]["segment"]["n"] == 0
