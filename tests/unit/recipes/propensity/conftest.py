"""The bundled propensity demo's events, items and feature tables, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from opslens.config import AnalysisConfig
from opslens.core.recipe import StageContext
from opslens.recipes import propensity
from opslens.recipes.propensity import featurize, stages
from opslens.recipes.propensity.params import PropensityParams
from opslens.synthetic.clickstream import clickstream_frame

DEMO = Path(propensity.__file__).parent / "demo" / "project.yaml"


@pytest.fixture(scope="session")
def demo() -> dict[str, object]:
    config = yaml.safe_load(DEMO.read_text())["analyses"][0]
    analysis = AnalysisConfig.model_validate(config)
    params: PropensityParams = PropensityParams.model_validate(config["params"])
    ctx = StageContext(analysis=analysis, params=params, random_state=42)
    source = config["source"]
    raw = clickstream_frame(seed=source["seed"], **source["options"])
    made = stages.data_gen(ctx, raw, None, None).values
    sessions = stages.sessionize_stage(ctx, made["events"]).values["sessionized_events"]
    split = stages.split(ctx, sessions).values
    feats = featurize.features(ctx, items=made["items"], **split).values
    return {
        "params": params,
        "events": made["events"],
        "items": made["items"],
        "bounds": split["split_bounds"],
        "test": feats["test_features"],
        "train": feats["train_features"],
    }
