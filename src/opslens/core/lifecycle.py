"""The life-cycle contract: what a recipe supplies so one spine scores, monitors, retrains and
promotes its models (``opslens batch | monitor | retrain | promote | models history``).

A recipe that has a life cycle sets :attr:`opslens.core.recipe.Recipe.lifecycle` to a
:class:`Lifecycle`: two named pipelines of its own stages and four pure hooks.

* ``batch`` pipeline: its stages take ``batch`` (the frame to score), ``champion`` (the
  serving model, a predictor) and ``champion_version``; they return the declared outputs
  ``predictions`` (table: one row per batch row), ``labelled`` (table: the batch's rows that
  carry labels, kept for retraining; may be empty) and ``record`` (object: the batch's
  monitoring record, a flat JSON-ready dict of numbers and small dicts).
* ``retrain`` pipeline: its stages take ``raw`` (the training source), ``labelled`` (the
  labelled rows of every batch so far, with the column :data:`BATCH_COLUMN`) and
  ``champion``; they return the challenger (the stage's ``model``) and the object output
  ``comparison``: a :class:`Comparison` of challenger and champion on held-out rows.
* Either pipeline may also return the object output ``steps``: ``{step: {"params": {...},
  "metrics": {...}}}``, logged as child runs of the run's tracked run (MLflow nested runs).
* ``monitor(records, params)``: the alerts of the newest record, given the records since
  the champion was trained (oldest first).
* ``retrain_reason(records, params, trained_at, now)``: why to retrain now, or None.
* ``window(raw, labelled, analysis)``: the rows a retraining fits on and holds out from.
* ``compare(champion, challenger, window, analysis)``: the held-out comparison that
  ``opslens promote`` makes between two registered versions.

The spine (:mod:`opslens.runner.lifecycle`) keeps the records in a :class:`History`
and moves aliases in a :class:`Registry`; both are protocols, injected.

Example:
    >>> c = Comparison(metric="rmse", champion=2.0, challenger=1.5, higher_is_better=False,
    ...     rows=40, training_rows=400, reason="manual")
    >>> c.challenger_wins, c.summary()
    (True, 'challenger rmse 1.5 vs champion 2 on 40 held-out rows: promoted')
    >>> Comparison(metric="log_score", champion=-1.0, challenger=-1.4, higher_is_better=True,
    ...     rows=10, training_rows=90, interval=(-0.6, -0.2), p_value=0.004).summary()
    'challenger log_score -1.4 vs champion -1 on 10 held-out rows (difference 95% interval -0.6 to -0.2, p 0.004): champion kept'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl
from pydantic import BaseModel, ConfigDict, create_model

from opslens.core.facts import RecipeFacts

if TYPE_CHECKING:
    from opslens.config.project import AnalysisConfig

__all__ = [
    "BATCH_COLUMN",
    "CHALLENGER",
    "CHAMPION",
    "CURRENT",
    "BatchFacts",
    "Comparison",
    "History",
    "Lifecycle",
    "Record",
    "Registry",
    "RetrainFacts",
    "lifecycle_facts",
    "since_training",
    "split_newest",
]

CHAMPION = "champion"
"""The serving alias of every recipe."""
CURRENT = "current"
"""The serving alias of projects made before opslens 0.3: a synonym of ``champion``."""
CHALLENGER = "challenger"
"""The alias of the newest retrained version, before (or instead of) its promotion."""
BATCH_COLUMN = "__batch"
"""The column of ``labelled`` that numbers the batch a row came from (0: training data)."""

Record = Mapping[str, Any]
Alert = dict[str, Any]


@dataclass(frozen=True)
class Comparison:
    """Challenger against champion on the same held-out rows, on one metric (lower or higher
    better); ``details`` holds whatever else the recipe measured (per target, a ratio, ...).

    ``wins`` overrides the plain metric comparison where the recipe decides on several
    metrics at once (segments: the mean RMSE ratio over two targets).
    """

    metric: str
    champion: float
    challenger: float
    higher_is_better: bool
    rows: int
    training_rows: int = 0
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    wins: bool | None = None
    text: str = ""
    #: 95% paired interval of (challenger − champion) per held-out row, and a paired test's p
    interval: tuple[float, float] | None = None
    p_value: float | None = None

    @property
    def challenger_wins(self) -> bool:
        """Whether the challenger is at least as good as the champion (ties go to it)."""
        if self.wins is not None:
            return self.wins
        if not math.isfinite(self.challenger):
            return False
        if not math.isfinite(self.champion):
            return True
        if self.higher_is_better:
            return self.challenger >= self.champion
        return self.challenger <= self.champion

    def facts(self) -> dict[str, Any]:
        """The comparison as the ``retrain`` section of a run's facts (:class:`RetrainFacts`)."""
        return {
            "metric": self.metric,
            "champion": self.champion,
            "challenger": self.challenger,
            "higher_is_better": self.higher_is_better,
            "rows": self.rows,
            "training_rows": self.training_rows,
            "challenger_wins": self.challenger_wins,
            "summary": self.summary(),
            "details": self.details,
            "interval": list(self.interval) if self.interval is not None else None,
            "p_value": self.p_value,
        }

    def summary(self) -> str:
        """One line: both figures, the rows and the decision (or the recipe's own ``text``)."""
        if self.text:
            return self.text
        verdict = "promoted" if self.challenger_wins else "champion kept"
        spread = ""
        if self.interval is not None:
            lo, hi = self.interval
            spread = f" (difference 95% interval {lo:.3g} to {hi:.3g}"
            spread += f", p {self.p_value:.2g})" if self.p_value is not None else ")"
        return (
            f"challenger {self.metric} {self.challenger:.4g} vs champion {self.champion:.4g} "
            f"on {self.rows} held-out rows{spread}: {verdict}"
        )


class BatchFacts(BaseModel):
    """The ``score_batch`` section of a batch run's facts: its monitoring record."""

    model_config = ConfigDict(extra="forbid")

    record: dict[str, Any]


class RetrainFacts(BaseModel):
    """The ``retrain`` section of a retraining run's facts: the held-out comparison."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    champion: float
    challenger: float
    higher_is_better: bool
    rows: int
    training_rows: int
    challenger_wins: bool
    summary: str
    details: dict[str, Any] = {}
    interval: tuple[float, float] | None = None
    p_value: float | None = None


def lifecycle_facts(model: type[RecipeFacts]) -> type[RecipeFacts]:
    """``model`` with the life-cycle sections ``score_batch`` and ``retrain`` (the stages every
    life cycle names so), unless it has them already; same name, a subclass.

    Example:
        >>> sorted(lifecycle_facts(RecipeFacts).model_fields)
        ['analysis', 'baselines', 'retrain', 'score_batch', 'score_rows']
    """
    if {"score_batch", "retrain"} <= set(model.model_fields):
        return model
    sections: dict[str, Any] = {
        "score_batch": (BatchFacts | None, None),
        "retrain": (RetrainFacts | None, None),
    }
    extended: type[RecipeFacts] = create_model(
        model.__name__,
        __base__=model,
        __module__=model.__module__,
        __doc__=model.__doc__,
        **sections,
    )
    return extended


def _no_alerts(_records: Sequence[Record], _params: Any) -> list[Alert]:
    return []


def _never(
    _records: Sequence[Record], _params: Any, _trained: datetime | None, _now: datetime
) -> str | None:
    return None


def _describe(record: Record) -> str:
    return ", ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in record.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    )


@dataclass(frozen=True)
class Lifecycle:
    """A recipe's life-cycle hooks (see the module docstring); the hooks are pure."""

    window: Callable[[pl.DataFrame, pl.DataFrame, AnalysisConfig], pl.DataFrame]
    compare: Callable[[Any, Any, pl.DataFrame, AnalysisConfig], Comparison]
    monitor: Callable[[Sequence[Record], Any], list[Alert]] = _no_alerts
    retrain_reason: Callable[[Sequence[Record], Any, datetime | None, datetime], str | None] = (
        _never
    )
    #: one line saying what a batch record holds, for the CLI
    describe: Callable[[Record], str] = _describe
    #: the config key naming the SQLAlchemy URL of the monitoring history (unset: beside
    #: the runs); said in the fix of a history that cannot be opened
    history_key: str = "params.lifecycle.history_url"
    batch_pipeline: str = "batch"
    retrain_pipeline: str = "retrain"

    def history_url(self, params: Any) -> str | None:
        """The URL ``params`` hold at :attr:`history_key` (None: unset).

        Example:
            >>> from types import SimpleNamespace as NS
            >>> life = Lifecycle(window=lambda *a: a[0], compare=lambda *a: None)
            >>> life.history_url(NS(lifecycle=NS(history_url="sqlite:///h.db")))
            'sqlite:///h.db'
            >>> life.history_url(NS(lifecycle=None))
        """
        value: Any = params
        for part in self.history_key.removeprefix("params.").split("."):
            value = getattr(value, part, None)
        return value if isinstance(value, str) else None


def since_training(records: Sequence[Record], version: str | None) -> list[Record]:
    """The records of batches scored by ``version`` (the champion since its training).

    Example:
        >>> since_training([{"model_version": "1"}, {"model_version": 2}], "2")
        [{'model_version': 2}]
    """
    return [r for r in records if str(r.get("model_version")) == str(version)]


def split_newest(rows: pl.DataFrame, share: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows to fit on, rows held out): the last ``share`` of the newest batch is held out.

    Example:
        >>> rows = pl.DataFrame({"__batch": [0] * 4 + [1] * 6, "x": range(10)})
        >>> [f["x"].to_list() for f in split_newest(rows, 1 / 3)]
        [[0, 1, 2, 3, 4, 5, 6, 7], [8, 9]]
    """
    newest = rows[BATCH_COLUMN].max()
    last = rows.filter(pl.col(BATCH_COLUMN) == newest)
    k = max(1, round(last.height * share))
    before = rows.filter(pl.col(BATCH_COLUMN) != newest)
    return pl.concat([before, last.head(last.height - k)]), last.tail(k)


class History(Protocol):
    """Where the spine keeps the monitoring history (append-only; SQLAlchemy in production)."""

    def add_batch(self, analysis: str, record: dict[str, Any]) -> int:
        """Append a batch record; its number."""

    def batches(self, analysis: str) -> list[dict[str, Any]]:
        """Every batch record, oldest first (each with ``batch``)."""

    def add_error(self, analysis: str, kind: str, message: str) -> None:
        """Append an error (a rejected batch, a failed retraining)."""

    def errors(self, analysis: str) -> list[dict[str, Any]]:
        """Every error, oldest first."""

    def add_training(
        self, analysis: str, version: str | None, reason: str, details: dict[str, Any]
    ) -> None:
        """Record a training or retraining."""

    def trainings(self, analysis: str) -> list[dict[str, Any]]:
        """Every training, oldest first (``at``, ``version``, ``reason``, ``details``)."""

    def add_alias_move(
        self, analysis: str, alias: str, version: str, previous: str | None, reason: str
    ) -> int:
        """Record an alias move and why."""

    def alias_moves(self, analysis: str) -> list[dict[str, Any]]:
        """Every alias move, oldest first, with ``until``."""


class Registry(Protocol):
    """The model registry of one analysis: versions, aliases, loading a version."""

    def version_of(self, alias: str) -> str | None:
        """The version ``alias`` points to, or None."""

    def versions(self) -> list[str]:
        """Every registered version, oldest first."""

    def set_alias(self, alias: str, version: str) -> None:
        """Point ``alias`` at ``version``."""

    def load(self, version: str) -> Any:
        """The predictor of ``version``."""

    def log_steps(self, run_id: str, steps: Mapping[str, Mapping[str, Any]]) -> None:
        """Log ``steps`` (``{name: {"params": ..., "metrics": ...}}``) as child runs of ``run_id``."""

    def run_of(self, version: str) -> str | None:
        """The opslens run that registered ``version`` (None if unknown)."""
