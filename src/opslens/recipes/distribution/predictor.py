"""What the distribution recipe's online side loads: classifier, patterns and combinations.

:class:`PatternPredictor` answers, for one instance (a dict, the stream) or a
frame (batch, MLflow pyfunc), "which distribution pattern will this instance
follow, with what probability, and what distribution of the target to expect":

* a **known combination** gets its own histogram blended with its pattern's
  (``w = n / (n + strength)``, ``strength`` chosen on the training period);
* a **new combination of known levels** gets the classifier's probabilities
  and their mixture of the patterns;
The answer holds the pattern (``cluster``, its ``median`` and HDRs, the
``probabilities``) and the ``prediction``: the instance's own predicted
distribution (bin ``edges`` and ``probabilities``, its median and HDRs, the
``basis`` it was made on). ``outside_hdr_90`` says whether a given target
value fell outside the predicted 90% HDR.

* an **unknown level** (never seen in training) is answered by the known
  combinations that share the instance's known attributes, weighted by their
  rows: probabilities are their row shares per pattern and the distribution is
  their average; the attribute is listed under ``unknown``.

Levels are normalised (``6``, ``6.0``, ``"6"`` are one level). Batch and
stream give the same probabilities bit for bit.

Example:
    >>> import numpy as np, polars as pl
    >>> from opslens.models.classifier import PatternClassifier
    >>> X = pl.DataFrame({"route": ["A", "B"] * 10})
    >>> clf = PatternClassifier(["route"], n_estimators=10).fit(X, np.array([0, 1] * 10))
    >>> profiles = [{"cluster": 0, "mean_histogram": [0.9, 0.1]}, {"cluster": 1, "mean_histogram": [0.1, 0.9]}]
    >>> p = PatternPredictor(clf, profiles, edges={"all": np.array([0.0, 10.0, 20.0])}, target="minutes",
    ...     combinations=[["A"], ["B"]], histograms=np.array([[1.0, 0.0], [0.0, 1.0]]),
    ...     counts=np.array([10.0, 10.0]), cluster_of=np.array([0, 1]), strength=10.0)
    >>> answer = p.predict_one({"route": "B"})
    >>> answer["cluster"], answer["unknown"], answer["prediction"]["probabilities"]
    (1, [], [0.05, 0.95])
    >>> p.predict_one({"route": "Z"})["probabilities"]
    {'0': 0.5, '1': 0.5}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from opslens.cluster.hdr import hdr_from_histogram
from opslens.core.frames import as_polars
from opslens.core.predictor import BasePredictor
from opslens.errors import DataError, InstanceError
from opslens.models.classifier import PatternClassifier, as_level

__all__ = ["PatternPredictor"]


class PatternPredictor(BasePredictor):
    """A fitted pattern classifier with the patterns, the combinations seen and their histograms."""

    recipe = "distribution"

    def __init__(
        self,
        classifier: PatternClassifier,
        profiles: Sequence[Mapping[str, Any]],
        *,
        edges: Mapping[str, np.ndarray],
        target: str,
        combinations: Sequence[Sequence[str]],
        histograms: np.ndarray,
        counts: np.ndarray,
        cluster_of: np.ndarray,
        strength: float,
        unit: str = "",
        group: str | None = None,
        coverages: Sequence[float] = (0.5, 0.9),
        support: tuple[float | None, float | None] = (None, None),
    ) -> None:
        self.classifier = classifier
        self.profiles = {int(p["cluster"]): dict(p) for p in profiles}
        self.edges = {str(k): np.asarray(v, dtype=float) for k, v in edges.items()}
        self.target = target
        self.unit = unit
        self.group = group
        self.coverages = tuple(coverages)
        self.support = support
        self.strength = float(strength)
        self.classes = [int(c) for c in classifier.classes_]
        self.levels = np.asarray([list(c) for c in combinations], dtype=object)
        self.index = {tuple(c): i for i, c in enumerate(combinations)}
        self.counts = np.asarray(counts, dtype=float)
        self.cluster_of = np.asarray(cluster_of, dtype=np.int64)
        centers = np.vstack([np.asarray(self.profiles[c]["mean_histogram"]) for c in self.classes])
        self.centers = centers
        n = self.counts
        w = np.zeros_like(n) if np.isinf(strength) else n / np.maximum(n + strength, 1e-12)
        pattern = centers[[self.classes.index(int(c)) for c in self.cluster_of]]
        self.dist = w[:, None] * np.asarray(histograms, dtype=float) + (1 - w)[:, None] * pattern
        g = self.inputs.index(group) if group else None
        self.segment = (
            self.levels[:, g].astype(str) if g is not None else np.full(len(self.index), "all")
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Load a predictor pickled by opslens 0.1 (classifier, profiles, one array of edges).

        It knows no combinations: every instance is answered from the classifier's
        probabilities and the patterns' mean histograms.
        """
        if "index" not in state:
            edges = np.asarray(state["edges"], dtype=float)
            centers = [state["profiles"][int(c)]["mean_histogram"] for c in state["classes"]]
            n_bins = len(centers[0])
            state = {
                **state,
                "edges": {"all": edges},
                "group": None,
                "coverages": (0.5, 0.9),
                "support": (None, None),
                "strength": float("inf"),
                "levels": np.empty((0, len(state["classifier"].categorical)), dtype=object),
                "index": {},
                "counts": np.zeros(0),
                "cluster_of": np.zeros(0, dtype=np.int64),
                "centers": np.asarray(centers, dtype=float),
                "dist": np.zeros((0, n_bins)),
                "segment": np.zeros(0, dtype=str),
            }
        self.__dict__.update(state)

    @property
    def inputs(self) -> list[str]:
        """The attributes an instance must carry."""
        return list(self.classifier.categorical)

    def input_schema(self) -> dict[str, str]:
        """The categorical attributes (text); the target, optional, is only drawn on the plot."""
        return {name: "string" for name in self.inputs}

    # ---- the answer --------------------------------------------------------------------
    def _matches(self, levels: Sequence[str | None], known: Sequence[bool]) -> np.ndarray:
        mask = np.ones(len(self.index), dtype=bool)
        for j, (level, ok) in enumerate(zip(levels, known, strict=True)):
            if ok:
                mask &= self.levels[:, j] == level
        return mask if mask.any() else np.ones(len(self.index), dtype=bool)

    def _unknown_probabilities(self, mask: np.ndarray) -> np.ndarray:
        """Row shares of each pattern among the matching combinations."""
        w = np.bincount(
            np.searchsorted(self.classes, self.cluster_of[mask]),
            weights=self.counts[mask],
            minlength=len(self.classes),
        )
        shares: np.ndarray = w / w.sum()
        return shares

    def _distribution(
        self, levels: Sequence[str | None], known: Sequence[bool], proba: np.ndarray
    ) -> tuple[str, np.ndarray, str]:
        """The segment, the predicted distribution over its bins, and how it was made."""
        g = self.inputs.index(self.group) if self.group else None
        if all(known) or not self.index:
            i = self.index.get(tuple(str(x) for x in levels))
            seg = str(levels[g]) if g is not None else "all"
            if i is not None:
                return seg, self.dist[i], "its own combination blended with its pattern"
            return seg, proba @ self.centers, "a new combination: the patterns by probability"
        mask = self._matches(levels, known)
        if g is not None and known[g]:
            seg = str(levels[g])
        else:
            segs, inv = np.unique(self.segment[mask], return_inverse=True)
            seg = str(segs[np.argmax(np.bincount(inv, weights=self.counts[mask]))])
        mask &= self.segment == seg
        w = self.counts[mask]
        dist = (self.dist[mask] * w[:, None]).sum(axis=0) / w.sum()
        return seg, dist, f"the {int(mask.sum())} known combinations sharing its known attributes"

    def _summary(self, seg: str, dist: np.ndarray) -> dict[str, Any]:
        e = self.edges[seg]
        p = np.asarray(dist[: e.size - 1], dtype=float)
        p = p / p.sum()
        cum = np.concatenate([[0.0], np.cumsum(p)])
        median = float(np.interp(0.5, cum, e))
        lo_s, hi_s = self.support
        out: dict[str, Any] = {"segment": seg, "median": median}
        for c in self.coverages:
            regions = hdr_from_histogram(p, e, c, partial=True)
            out[f"hdr_{round(c * 100)}"] = [
                [
                    max(lo, lo_s) if lo_s is not None else lo,
                    min(hi, hi_s) if hi_s is not None else hi,
                ]
                for lo, hi in regions
            ]
        out["edges"] = [float(x) for x in e]
        out["probabilities"] = [round(float(x), 6) for x in p]
        return out

    def _levels(self, instance: Mapping[str, Any]) -> list[str | None]:
        return [as_level(instance[c]) for c in self.inputs]

    def __getstate__(self) -> dict[str, Any]:
        """What is pickled: everything but the answers cached per combination."""
        return {k: v for k, v in self.__dict__.items() if k != "_answers"}

    def predict_one(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        """Pattern probabilities, the most likely pattern, and the predicted distribution's HDRs.

        Everything but the target check depends only on the instance's levels, so the
        answer of each combination is computed once and kept (up to 65,536 combinations).
        """
        for c in self.inputs:
            if c not in instance:  # the classifier's own refusal, before any level is read
                raise InstanceError(
                    f"instance has no attribute {c!r} (needs {self.inputs})",
                    fix=f"add {c!r} to every streamed instance",
                )
        levels = self._levels(instance)
        key = tuple(levels)
        answers: dict[tuple[str | None, ...], dict[str, Any]] = self.__dict__.setdefault(
            "_answers", {}
        )
        answer = answers.get(key)
        if answer is None:
            answer = self._answer(instance, levels)
            if len(answers) < 65_536:
                answers[key] = answer
        top = f"hdr_{round(self.coverages[-1] * 100)}"
        value = _number(instance.get(self.target))
        return {
            **answer,
            "unknown_levels": {c: instance[c] for c in answer["unknown"]},
            f"outside_{top}": (
                None
                if value is None
                else not any(lo <= value <= hi for lo, hi in answer["prediction"][top])
            ),
        }

    def _answer(self, instance: Mapping[str, Any], levels: list[str | None]) -> dict[str, Any]:
        """The answer for ``instance``'s combination of levels (no target check)."""
        proba, unknown = self.classifier.predict_proba_one(instance)
        known = [c not in unknown for c in self.inputs]
        if unknown and self.index:
            proba = self._unknown_probabilities(self._matches(levels, known))
        seg, dist, basis = self._distribution(levels, known, np.asarray(proba, dtype=float))
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
            "prediction": {"basis": basis, **self._summary(seg, dist)},
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
        X = frame.select(self.inputs)
        proba = self.classifier.predict_proba(X).astype(np.float64)
        known = self.classifier.known_levels(X)
        rows = np.flatnonzero(~known.all(axis=1)) if self.index else np.zeros(0, dtype=np.int64)
        for i in rows.tolist():  # rare: rows with an unseen level
            levels = self._levels(X.row(i, named=True))
            proba[i] = self._unknown_probabilities(self._matches(levels, known[i].tolist()))
        cols = {f"p_{c}": proba[:, i] for i, c in enumerate(self.classes)}
        best = np.asarray(self.classes)[proba.argmax(axis=1)]
        return pl.DataFrame({"cluster": best.astype(np.int64), **cols})

    def figure(self, instance: Mapping[str, Any], answer: Mapping[str, Any], title: str) -> Any:
        """The instance's value against its predicted distribution, with its attributes and flags."""
        from opslens.recipes.distribution.plots import plot_instance

        probs = [answer["probabilities"][str(c)] for c in self.classes]
        return plot_instance(
            _number(instance.get(self.target)),
            answer,
            probs,
            self.classes,
            title=title,
            attributes={c: instance.get(c) for c in self.inputs},
            target=self.target,
            unit=self.unit,
        )


def _number(raw: Any) -> float | None:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        try:
            value = float(raw)
        except OverflowError:
            return None
        return value if np.isfinite(value) else None
    return None
