"""The ``score`` pipeline every recipe has: a batch of rows through a fitted model, on the engine.

A recipe may declare its own ``score`` pipeline; one that does not gets
:data:`SCORE_PIPELINE` (:meth:`opslens.core.recipe.Recipe.pipeline`): one stage,
``score_rows``, that answers the ``batch`` input with the ``champion`` input's
``predict_frame`` on the run's engine (in slices locally; on Spark with the model
broadcast once), whole ``batch_key`` groups together (the fleet model's devices). The
runner gives both inputs (``opslens score`` loads the model the way ``--from`` says), so
a scoring is a run folder like any other: its manifest, its answers as a table, its
row counts as facts and metrics.

Example:
    >>> import polars as pl
    >>> from opslens.core.predictor import BasePredictor
    >>> class Twice(BasePredictor):
    ...     recipe = "toy"
    ...     def input_schema(self):
    ...         return {"x": "number"}
    ...     def predict_frame(self, frame):
    ...         return frame.select(y=pl.col("x") * 2)
    ...     def predict_one(self, instance):
    ...         return {"y": 2 * instance["x"]}
    >>> out = score_rows(None, pl.DataFrame({"x": [1.0, 2.0]}), Twice())
    >>> out.values["answers"]["y"].to_list(), out.facts
    ([2.0, 4.0], {'rows_in': 2, 'answers': 2})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from opslens.core.engine import LocalEngine
from opslens.core.facts import ScoreRowsFacts
from opslens.core.predictor import BasePredictor
from opslens.core.recipe import Out, Output, Stage, StageContext
from opslens.errors import DataError

__all__ = ["SCORE_PIPELINE", "ScoreRowsFacts", "score_rows"]


def score_rows(ctx: StageContext | None, batch: Any, champion: Any) -> Out:
    """Every row of ``batch`` through ``champion.predict_frame`` on the run's engine.

    ``batch`` is a polars frame, or (``engine: spark``) the path of a Parquet file that
    the executors read themselves.
    """
    engine = ctx.engine if ctx is not None else LocalEngine()
    if isinstance(batch, Path):  # a Parquet file the engine reads itself (Spark's executors)
        batch = engine.read(batch)
    rows = engine.height(batch)
    if rows == 0:
        raise DataError("the batch to score has no rows", fix="give a file with rows to score")
    key = champion.batch_key if isinstance(champion, BasePredictor) else None
    answers: pl.DataFrame = engine.map_batches(batch, champion.predict_frame, key=key)
    counts = {"rows_in": rows, "answers": answers.height}
    return Out(
        values={"answers": answers},
        facts=counts,
        metrics={k: float(v) for k, v in counts.items()},
    )


SCORE_PIPELINE: tuple[Stage, ...] = (
    Stage("score_rows", score_rows, inputs=("batch", "champion"), outputs=(Output("answers"),)),
)
"""The built-in ``score`` pipeline of a recipe that declares none."""
