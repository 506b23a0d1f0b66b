"""What the distribution recipe's online side loads: classifier + cluster profiles.

:class:`PatternPredictor` answers "which distribution pattern will this
instance follow, with what probability" for one instance (a dict, the stream)
or a frame (batch, MLflow pyfunc), from the same booster input, so both give
the same probabilities bit for bit.

Unknown categories: an attribute whose value was not seen in training gets an
all-zero one-hot block (the model then relies on the other attributes), the
probabilities are still returned, and the attribute is listed under
``unknown`` in the answer so a consumer can discount it.

Example:
    >>> import numpy as np, polars as pl
    >>> from opslens.models.classifier import PatternClassifier
    >>> X = pl.DataFrame({"route": ["A", "B"] * 10})
    >>> clf = PatternClassifier(["route"], n_estimators=10).fit(X, np.array([0, 1] * 10))
    >>> profiles = [{"cluster": 0, "median": 10.0, "hdr_50": [[8.0, 12.0]], "hdr_90": [[5.0, 15.0]]},
    ...             {"cluster": 1, "median": 30.0, "hdr_50": [[25.0, 35.0]], "hdr_90": [[20.0, 40.0]]}]
    >>> p = PatternPredictor(clf, profiles, edges=np.linspace(0, 50, 11), target="minutes")
    >>> answer = p.predict_one({"route": "B"})
    >>> answer["cluster"], answer["unknown"]
    (1, [])
    >>> p.predict_one({"route": "Z"})["unknown"]
    ['route']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from opslens.core.frames import as_polars
from opslens.core.predictor import BasePredictor
from opslens.errors import DataError
from opslens.models.classifier import PatternClassifier

__all__ = ["PatternPredictor"]


class PatternPredictor(BasePredictor):
    """A fitted pattern classifier bundled with the profiles of the patterns it predicts."""

    recipe = "distribution"

    def __init__(
        self,
        classifier: PatternClassifier,
        profiles: Sequence[Mapping[str, Any]],
        *,
        edges: np.ndarray,
        target: str,
        unit: str = "",
    ) -> None:
        self.classifier = classifier
        self.profiles = {int(p["cluster"]): dict(p) for p in profiles}
        self.edges = np.asarray(edges, dtype=float)
        self.target = target
        self.unit = unit
        self.classes = [int(c) for c in classifier.classes_]

    @property
    def inputs(self) -> list[str]:
        """The attributes an instance must carry."""
        return list(self.classifier.categorical)

    def input_schema(self) -> dict[str, str]:
        """The categorical attributes (text); the target, optional, is only drawn on the plot."""
        return {name: "string" for name in self.inputs}

    def predict_one(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        """Cluster probabilities, the most likely cluster and its HDRs for one instance."""
        proba, unknown = self.classifier.predict_proba_one(instance)
        best = int(np.argmax(proba))
        cluster = self.classes[best]
        profile = self.profiles.get(cluster, {})
        return {
            "cluster": cluster,
            "probability": float(proba[best]),
            "probabilities": {str(c): float(p) for c, p in zip(self.classes, proba, strict=True)},
            "unknown": unknown,
            "median": profile.get("median"),
            "hdr_50": profile.get("hdr_50"),
            "hdr_90": profile.get("hdr_90"),
        }

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """One row per input row: ``cluster`` and ``p_<cluster>`` for every cluster."""
        frame = as_polars(frame, what="the instances")
        missing = [c for c in self.inputs if c not in frame.columns]
        if missing:
            raise DataError(
                f"the instances lack column(s) {', '.join(missing)}",
                fix=f"give every instance {', '.join(self.inputs)}",
            )
        proba = self.classifier.predict_proba(frame.select(self.inputs))
        cols = {f"p_{c}": proba[:, i].astype(np.float64) for i, c in enumerate(self.classes)}
        best = np.asarray(self.classes)[proba.argmax(axis=1)]
        return pl.DataFrame({"cluster": best.astype(np.int64), **cols})

    def figure(self, instance: Mapping[str, Any], answer: Mapping[str, Any], title: str) -> Any:
        """The instance's value against its predicted cluster's distribution, with probability bars."""
        from opslens.recipes.distribution.plots import plot_instance

        raw = instance.get(self.target)
        value = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
        probs = [answer["probabilities"][str(c)] for c in self.classes]
        return plot_instance(
            value,
            self.profiles[int(answer["cluster"])],
            self.edges,
            probs,
            self.classes,
            title=title,
        )
