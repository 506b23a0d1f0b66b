"""Typed request and response models per analysis, built from its predictor's ``input_schema()``.

Each served analysis gets its own pydantic models (named after it, so the
OpenAPI document shows one set per analysis): an instance
(``<Name>Instance``, the schema's fields; extra fields pass through to the
predictor), a batch (``<Name>Batch``: ``{"instances": [...]}``) and the
answers (``<Name>Answer``, ``<Name>Answers``) that name the version that
made them. Every schema field is required; ``null`` passes (the model answers
a missing value as it does in the library). Stateful predictors (``supports("step")``) add a required stream
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
    >>> m.single.model_validate({"route": 7, "hour band": "am", "minutes": 3}).model_dump(by_alias=True)
    {'route': '7', 'hour band': 'am', 'minutes': 3}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from opslens.core.predictor import Predictor

__all__ = ["STREAM_ID", "RequestModels", "model_prefix", "request_models"]

STREAM_ID = "stream_id"

_TYPES: dict[str, Any] = {
    "string": str,
    "number": float,
    "integer": int,
    "boolean": bool,
    "datetime": datetime,
    "list": list[Any],
    "object": dict[str, Any],
}


@dataclass(frozen=True)
class RequestModels:
    """The request and response models of one analysis."""

    single: type[BaseModel]
    batch: type[BaseModel]
    answer: type[BaseModel]
    answers: type[BaseModel]
    fields: tuple[str, ...]
    stream_key: str | None = None  # the stream id field of a stateful predictor

    @property
    def stateful(self) -> bool:
        """Whether answers depend on the stream's earlier samples."""
        return self.stream_key is not None

    def by_name(self) -> dict[str, type[BaseModel]]:
        """The four models by class name (for the OpenAPI components)."""
        return {m.__name__: m for m in (self.single, self.batch, self.answer, self.answers)}


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
    """Build the models of ``analysis`` from ``predictor.input_schema()``."""
    schema = predictor.input_schema()
    stateful = predictor.supports("step")
    prefix = model_prefix(analysis)
    fields: dict[str, Any] = {
        f"f{i}": (  # required, but null passes: the model answers missing values as it does offline
            _TYPES.get(kind, Any) | None,
            Field(alias=name, description=f"{kind} ({predictor.recipe})"),
        )
        for i, (name, kind) in enumerate(schema.items())
    }
    config = ConfigDict(extra="allow", coerce_numbers_to_str=True, populate_by_name=False)
    instance = create_model(f"{prefix}Instance", __config__=config, **fields)
    stream_key = str(getattr(predictor, "stream_field", STREAM_ID)) if stateful else None
    stream = (str, Field(alias=stream_key, min_length=1, description="the stream's id"))
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
    return RequestModels(single, batch, answer, answers, tuple(schema), stream_key)
