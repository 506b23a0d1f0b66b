"""Typed request and response models per analysis, built from its predictor's input rules.

Each served analysis gets its own pydantic models (named after it, so the
OpenAPI document shows one set per analysis): an instance
(``<Name>Instance``, the rules' fields; extra fields pass through to the
predictor), a batch (``<Name>Batch``: ``{"instances": [...]}``) and the
answers (``<Name>Answer``, ``<Name>Answers``) that name the version that
made them. The models are strict and say exactly what they take
(:class:`~opslens.core.predictor.InputRule`): text is text (a number is not
turned into text), a number is a finite number (not a boolean), a time is ISO
8601 text (or epoch seconds where the rule says so), a category is one seen in
training where the rule lists them; ``null`` passes where the rule says the model
answers a missing value. Stateful predictors (``supports("step")``) add a required stream
id to the single instance and to the batch, whose instances are then the
stream's next samples, in order: the field the predictor names as its
``stream_field`` (the residual recipe's ``stream``), else ``stream_id``.

Example:
    >>> from opslens.core.predictor import BasePredictor
    >>> class Eta(BasePredictor):
    ...     recipe = "distribution"
    ...     def input_schema(self): return {"route": "string", "hour band": "string"}
    ...     def predict_frame(self, frame): return frame
    ...     def predict_one(self, instance): return {}
    >>> m = request_models("trip-eta", Eta())
    >>> m.single.__name__, m.stateful, sorted(m.single.model_json_schema()["properties"])
    ('TripEtaInstance', False, ['hour band', 'route'])
    >>> m.single.model_validate({"route": "7", "hour band": "am", "minutes": 3}).model_dump(by_alias=True)
    {'route': '7', 'hour band': 'am', 'minutes': 3}
    >>> m.single.model_validate({"route": 7, "hour band": "am"})
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for TripEtaInstance
    route
      Input should be a valid string [type=string_type, input_value=7, input_type=int]
    ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictStr,
    WithJsonSchema,
    create_model,
)

from opslens.core.predictor import InputRule, Predictor, rules_of
from opslens.online.service.events import MAX_EVENTS

__all__ = [
    "STREAM_ID",
    "OnlineModels",
    "RequestModels",
    "model_prefix",
    "online_models",
    "request_models",
]

STREAM_ID = "stream_id"


def _iso(text: str) -> str:
    """``text`` if it is an ISO 8601 time (ValueError naming the fix otherwise)."""
    try:
        datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("not an ISO 8601 time; send text like 2025-09-01T00:00:00Z") from None
    return text


_ISO = Annotated[
    StrictStr, AfterValidator(_iso), WithJsonSchema({"type": "string", "format": "date-time"})
]


def _whole(value: Any) -> Any:
    """``value`` if it is a whole number (``3`` or ``3.0``, as JSON Schema's integer; not a
    boolean), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a whole number")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("not a whole number")
    return value


_INT = Annotated[int, PlainValidator(_whole), WithJsonSchema({"type": "integer"})]
_SIMPLE: dict[str, Any] = {
    "integer": _INT,
    "boolean": StrictBool,
    "datetime": _ISO,
    "object": dict[str, Any],
    "any": Any,
}


def _number(rule: InputRule) -> Any:
    return Annotated[
        float, Field(strict=True, allow_inf_nan=False, ge=rule.minimum, le=rule.maximum)
    ]


def _annotation(rule: InputRule, name: str) -> Any:
    """The pydantic type of a field that follows ``rule``."""
    kind: Any
    if rule.kind == "string":
        kind = Literal[rule.choices] if rule.choices else StrictStr  # type: ignore[valid-type]
    elif rule.kind == "number":
        kind = _number(rule)
    elif rule.kind == "time":
        kind = _ISO | _number(rule)
    elif rule.kind == "list":
        item: Any = Any
        if rule.fields is not None:
            item = create_model(
                f"{name}Item", __config__=ConfigDict(extra="allow"), **_fields(rule.fields, name)
            )
        kind = Annotated[list[item], Field(min_length=rule.min_items)]  # type: ignore[valid-type]
    else:
        kind = _SIMPLE[rule.kind]
    return kind | None if rule.nullable else kind


def _fields(rules: dict[str, InputRule] | Any, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, (name, rule) in enumerate(rules.items()):
        word = "".join(w[:1].upper() + w[1:] for w in re.split(r"[^0-9A-Za-z]+", name) if w)
        annotation = _annotation(rule, f"{prefix}{word}")
        default: Any = ... if rule.required else None
        out[f"f{i}"] = (annotation, Field(default, alias=name, description=_describe(rule)))
    return out


def _describe(rule: InputRule) -> str:
    said = {
        "time": "time (ISO 8601 text or epoch seconds)",
        "datetime": "time (ISO 8601 text)",
    }.get(rule.kind, rule.kind)
    if rule.nullable:
        said += "; null: a missing value"
    return said


@dataclass(frozen=True)
class RequestModels:
    """The request and response models of one analysis."""

    single: type[BaseModel]
    batch: type[BaseModel]
    answer: type[BaseModel]
    answers: type[BaseModel]
    fields: tuple[str, ...]
    stream_key: str | None = None  # the stream id field of a stateful predictor
    online: OnlineModels | None = None  # /events and /score, for a model that takes events

    @property
    def stateful(self) -> bool:
        """Whether answers depend on the stream's earlier samples."""
        return self.stream_key is not None

    def by_name(self) -> dict[str, type[BaseModel]]:
        """The models by class name (for the OpenAPI components)."""
        out = {m.__name__: m for m in (self.single, self.batch, self.answer, self.answers)}
        return out | (self.online.by_name() if self.online is not None else {})


def model_prefix(analysis: str) -> str:
    """A class-name prefix for ``analysis``.

    Example:
        >>> model_prefix("trip-eta"), model_prefix("3d_axes")
        ('TripEta', 'A3dAxes')
    """
    words = [w for w in re.split(r"[^0-9A-Za-z]+", analysis) if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Analysis"
    return name if name[0].isalpha() else "A" + name


def _stamp_fields(stream_key: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "analysis": (str, Field(description="the analysis that answered")),
        "recipe": (str, Field(description="its recipe")),
        "version": (str, Field(description="the model version that made the answer")),
        "alias": (str, Field(description="the registry alias the version was served under")),
        "run_id": (str, Field(description="the opslens run that trained the version")),
    }
    if stream_key is not None:
        fields["stream_id_"] = (str, Field(alias=stream_key, description="the samples' stream"))
    return fields


def request_models(analysis: str, predictor: Predictor) -> RequestModels:
    """Build the models of ``analysis`` from the predictor's input rules."""
    rules = rules_of(predictor)
    stateful = predictor.supports("step")
    prefix = model_prefix(analysis)
    fields = _fields(rules, prefix)
    config = ConfigDict(extra="allow", populate_by_name=False)
    instance = create_model(f"{prefix}Instance", __config__=config, **fields)
    stream_key = str(getattr(predictor, "stream_field", STREAM_ID)) if stateful else None
    stream = (StrictStr, Field(alias=stream_key, min_length=1, description="the stream's id"))
    single = instance
    batch_fields: dict[str, Any] = {
        "instances": (
            list[instance],  # type: ignore[valid-type]
            Field(min_length=1, description="instances, answered in order"),
        )
    }
    if stateful:
        single = create_model(f"{prefix}Sample", __base__=instance, stream_id_=stream)
        batch_fields["stream_id_"] = stream
    batch = create_model(f"{prefix}Batch", __config__=ConfigDict(extra="forbid"), **batch_fields)
    stamp = _stamp_fields(stream_key)
    answer = create_model(
        f"{prefix}Answer",
        **stamp,
        answer=(dict[str, Any], Field(description="the predictor's answer")),
    )
    answers = create_model(
        f"{prefix}Answers",
        **stamp,
        answers=(list[dict[str, Any]], Field(description="one answer per instance, in order")),
    )
    online = online_models(analysis, predictor)
    return RequestModels(single, batch, answer, answers, tuple(rules), stream_key, online)


_ID: Any = StrictStr | _INT
_EPOCH_S = Annotated[
    float, Field(strict=True, allow_inf_nan=False, ge=-62_135_596_800, le=253_402_300_799)
]


@dataclass(frozen=True)
class OnlineModels:
    """The request models of a model that takes live events (``/events`` and ``/score``)."""

    event: type[BaseModel]
    events: type[BaseModel]
    score: type[BaseModel]

    def by_name(self) -> dict[str, type[BaseModel]]:
        """The three models by class name (for the OpenAPI components)."""
        return {m.__name__: m for m in (self.event, self.events, self.score)}


def online_models(analysis: str, predictor: Predictor) -> OnlineModels | None:
    """The ``/events`` and ``/score`` request models of ``analysis``, or None when its model
    takes no events (no ``online_scorer``).

    Example:
        >>> class Shop:
        ...     event_kinds = ("view", "purchase")
        ...     def online_scorer(self): return None
        >>> m = online_models("shop", Shop())
        >>> m.event.model_validate({"user_id": "u", "item_id": 3, "event_type": "view",
        ...     "timestamp": "2024-08-01T10:00:00Z"}).model_dump(by_alias=True)["item_id"]
        3
        >>> sorted(m.by_name())
        ['ShopEvent', 'ShopEvents', 'ShopScore']
    """
    if not callable(getattr(predictor, "online_scorer", None)):
        return None
    prefix = model_prefix(analysis)
    kinds = tuple(getattr(predictor, "event_kinds", ())) or None
    kind: Any = Literal[kinds] if kinds else StrictStr  # type: ignore[valid-type]
    when: Any = _ISO | _EPOCH_S
    event = create_model(
        f"{prefix}Event",
        __config__=ConfigDict(extra="allow"),
        user_id=(_ID, Field(description="the user")),
        item_id=(_ID, Field(description="the item")),
        event_type=(kind, Field(description="what the user did")),
        timestamp=(when, Field(description="when: ISO 8601 text or epoch seconds")),
    )
    events = create_model(
        f"{prefix}Events",
        __config__=ConfigDict(extra="forbid"),
        events=(
            list[dict[str, Any]],
            Field(
                max_length=MAX_EVENTS,
                description="events, each checked on its own: a refused one is named in the "
                "answer (position and reason), the others are kept",
            ),
        ),
    )
    score = create_model(
        f"{prefix}Score",
        __config__=ConfigDict(extra="forbid"),
        user=(_ID, Field(description="the user")),
        items=(list[_ID], Field(min_length=1, description="the items to rank")),
        at=(when | None, Field(None, description="when (default: now)")),
    )
    return OnlineModels(event, events, score)
