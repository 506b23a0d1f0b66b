"""Load what the registry side holds: the latest run's model folder.

The online side only reads committed runs (``runs/<analysis>/latest``), never
a stage's working files.

Example:
    >>> import tempfile, pathlib
    >>> load_predictor(pathlib.Path(tempfile.mkdtemp()), "eta")
    Traceback (most recent call last):
    ...
    opslens.errors.RunError: analysis 'eta' has no complete run yet; fix: run `opslens run` (or `opslens run --analysis eta`) first
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib

from opslens.errors import RunError
from opslens.tracking.runs import RunView, open_run

__all__ = ["LoadedPredictor", "load_predictor"]


@dataclass(frozen=True)
class LoadedPredictor:
    """A run's predictor with the run it came from and its metadata."""

    predictor: Any
    run: RunView
    metadata: dict[str, Any]


def load_predictor(runs_root: Path, analysis: str, run_id: str = "latest") -> LoadedPredictor:
    """The model of ``analysis``'s latest (or given) run; RunError if it has none."""
    run = open_run(runs_root, analysis, run_id)
    path = run.path / "model" / "model.joblib"
    if not path.is_file():
        raise RunError(
            f"run {run.run_id} of '{analysis}' holds no model to predict with",
            fix="run all stages of the analysis (its recipe's last stage saves the model)",
        )
    return LoadedPredictor(
        predictor=joblib.load(path), run=run, metadata=run.json("model/metadata.json")
    )
