"""The predictor protocol: what every consumer (stream, service, UI, MQTT) calls on a model.

A predictor is what a recipe's training pipeline leaves in ``model/``. It says
what an instance must hold (:meth:`Predictor.input_schema`), predicts a frame
(:meth:`~Predictor.predict_frame`, batch and MLflow pyfunc) or one instance
(:meth:`~Predictor.predict_one`, the stream), and may explain an instance or
draw it. A call a recipe does not offer raises :class:`~opslens.errors.UnsupportedError`
(an ``OpslensError``: one line, exit code 2), never an ``AttributeError``;
:meth:`~BasePredictor.supports` tells a consumer beforehand.

Example:
    >>> import polars as pl
    >>> class Echo(BasePredictor):
    ...     recipe = "echo"
    ...     def input_schema(self):
    ...         return {"x": "number"}
    ...     def predict_frame(self, frame):
    ...         return frame.select(y=pl.col("x") * 2)
    ...     def predict_one(self, instance):
    ...         return {"y": 2 * self.check_instance(instance)["x"]}
    >>> p = Echo()
    >>> p.predict_one({"x": 2}), p.supports("figure"), isinstance(p, Predictor)
    ({'y': 4}, False, True)
    >>> p.figure({"x": 2}, {}, title="t")
    Traceback (most recent call last):
    ...
    opslens.errors.UnsupportedError: the echo model does not draw single instances; fix: use predict_one / predict_frame, or stream with --no-plots
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import polars as pl

from opslens.errors import InstanceError, UnsupportedError

__all__ = ["KINDS", "BasePredictor", "InputRule", "Predictor", "rules_of"]

_OPTIONAL = ("explain_one", "figure", "step")

#: what a field may be: text, a finite number, a whole number, true/false, ISO 8601 text
#: (``datetime``), ISO text or epoch seconds (``time``), a list, an object, or anything
KINDS = ("string", "number", "integer", "boolean", "datetime", "time", "list", "object", "any")


@dataclass(frozen=True)
class InputRule:
    """What one field of an instance takes, as strictly as the model needs it.

    ``kind`` is one of :data:`KINDS`; ``nullable``: ``null`` passes (the model answers a
    missing value); ``choices``: the only texts taken (categories seen in training);
    ``minimum`` / ``maximum``: bounds of a number (or of epoch seconds); ``fields``: the
    fields of each object of a ``list``, and ``min_items`` how many it needs at least;
    ``required``: the field must be sent. The service builds its request schema from
    these rules and refuses (422, with the field path) what they do not allow.

    Example:
        >>> InputRule("string", nullable=False, choices=("a", "b")).choices
        ('a', 'b')
        >>> InputRule("colour")
        Traceback (most recent call last):
        ...
        ValueError: input kind 'colour' is not one of string, number, integer, boolean, datetime, time, list, object, any
    """

    kind: str
    nullable: bool = True
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    fields: Mapping[str, InputRule] | None = None
    min_items: int = 0
    required: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"input kind '{self.kind}' is not one of {', '.join(KINDS)}")


@runtime_checkable
class Predictor(Protocol):
    """What a consumer may call on a fitted model."""

    recipe: str

    def input_schema(self) -> dict[str, str]:
        """Field name → type (``string``, ``number``, ``datetime``, ``list``) an instance carries."""

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """One answer row per input row (or per entity, where the recipe scores entities)."""

    def predict_one(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        """The answer for one instance as a JSON-ready dict."""

    def explain_one(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        """Why the model answers as it does for one instance (UnsupportedError if not offered)."""

    def figure(self, instance: Mapping[str, Any], answer: Mapping[str, Any], title: str) -> Any:
        """A matplotlib Figure of the instance and its answer (UnsupportedError if not offered)."""

    def step(
        self, instance: Mapping[str, Any], state: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Score one sample of a stream whose state the caller keeps: ``(answer, new_state)``.

        ``state`` is JSON-ready (what the previous call returned; ``None`` starts a
        stream), so a stream, the service or Redis can hold it between samples.
        UnsupportedError for recipes whose answers need no memory.
        """

    def supports(self, call: str) -> bool:
        """Whether ``call`` (``explain_one``, ``figure``, ``step``, ...) is offered."""


class BasePredictor(ABC):
    """Defaults for the optional calls and the instance check; recipes' predictors derive from it.

    ``batch_key`` names the column whose rows must be scored together in one
    ``predict_frame`` call (the fleet model's device id); None: any slice of rows.
    """

    recipe = ""
    batch_key: str | None = None

    @abstractmethod
    def input_schema(self) -> dict[str, str]:
        """Field name → type; subclasses say what their instances hold."""

    def input_rules(self) -> dict[str, InputRule]:
        """Each field of :meth:`input_schema` as a rule: its kind, ``null`` passing.

        Recipes narrow it where the model refuses more (no nulls, the categories seen
        in training, bounds), so what the service publishes is what it accepts.
        """
        return _default_rules(self.input_schema())

    @abstractmethod
    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Subclasses answer a frame."""

    @abstractmethod
    def predict_one(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        """Subclasses answer one instance."""

    def explain_one(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        """Not offered unless a recipe overrides it."""
        raise UnsupportedError(
            f"the {self.recipe} model does not explain single instances",
            fix="use predict_one, whose answer holds what the model can say",
        )

    def figure(self, instance: Mapping[str, Any], answer: Mapping[str, Any], title: str) -> Any:
        """Not offered unless a recipe overrides it."""
        raise UnsupportedError(
            f"the {self.recipe} model does not draw single instances",
            fix="use predict_one / predict_frame, or stream with --no-plots",
        )

    def step(
        self, instance: Mapping[str, Any], state: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Not offered unless a recipe's answers depend on the samples before (residual run lengths)."""
        raise UnsupportedError(
            f"the {self.recipe} model keeps no state between instances",
            fix="use predict_one; each instance is answered on its own",
        )

    def supports(self, call: str) -> bool:
        """Whether ``call`` is offered: the mandatory calls always, optional ones if overridden."""
        if call not in _OPTIONAL:
            return callable(getattr(self, call, None))
        return getattr(type(self), call) is not getattr(BasePredictor, call)

    def check_instance(self, instance: Mapping[str, Any]) -> Mapping[str, Any]:
        """InstanceError naming the fields of :meth:`input_schema` that ``instance`` lacks."""
        if not isinstance(instance, Mapping):
            raise InstanceError(
                f"an instance must be a JSON object, not {type(instance).__name__}",
                fix=f"send an object with {', '.join(self.input_schema())}",
            )
        missing = [k for k in self.input_schema() if k not in instance]
        if missing:
            raise InstanceError(
                f"instance lacks {', '.join(repr(m) for m in missing)}",
                fix=f"send every input field: {', '.join(self.input_schema())}",
            )
        return instance


def _default_rules(schema: Mapping[str, str]) -> dict[str, InputRule]:
    return {name: InputRule(kind if kind in KINDS else "any") for name, kind in schema.items()}


def rules_of(predictor: Predictor) -> dict[str, InputRule]:
    """The predictor's :meth:`~BasePredictor.input_rules`, or rules made from its
    ``input_schema()`` for a predictor that does not derive from :class:`BasePredictor`.

    Example:
        >>> class Bare:
        ...     def input_schema(self): return {"x": "number", "when": "moment"}
        >>> {k: r.kind for k, r in rules_of(Bare()).items()}
        {'x': 'number', 'when': 'any'}
    """
    own = getattr(predictor, "input_rules", None)
    return dict(own()) if callable(own) else _default_rules(predictor.input_schema())
