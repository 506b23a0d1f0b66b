"""What the fleet recipe's online side loads: new devices' readings → rare score + nearest group.

:class:`RareDeviceScorer` scores fingerprints (it keeps the features the
detector was trained on and their training medians, so a new fingerprint is
cleaned exactly as the training ones were). :class:`FleetPredictor` takes a
device's *readings*, computes its fingerprint with the training run's
settings, scores it against the training fleet (``score`` is the mean rank
percentile among the training devices' scores: 0.97 means more unusual than
97% of them; ``is_rare`` uses the training threshold) and assigns the nearest
behaviour group (a k-nearest-neighbour vote among the training devices, in the
space the groups were found in).

Example:
    >>> import numpy as np, polars as pl
    >>> from opslens.detect.population import rank_rare_devices
    >>> X = np.random.default_rng(0).normal(size=(40, 3)); X[3] = [9.0, -9.0, 9.0]
    >>> fp = pl.DataFrame({"id": [f"d{i}" for i in range(40)], "a": X[:, 0], "b": X[:, 1], "c": X[:, 2]})
    >>> rare = rank_rare_devices(fp, entity="id", methods=("isolation_forest", "ecod"))
    >>> scorer = RareDeviceScorer.from_ranking(rare, fp, entity="id")
    >>> scorer.predict_frame(fp).sort("rank")["id"][0]
    'd3'
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping, Sequence
from datetime import timedelta
from itertools import chain, product
from operator import itemgetter
from typing import Any

import numba
import numpy as np
import polars as pl
from sklearn.neighbors import KNeighborsClassifier

from opslens.core.columns import MAX_MAGNITUDE, parse_time
from opslens.core.frames import as_polars
from opslens.core.predictor import BasePredictor, InputRule
from opslens.detect.population import RareDeviceDetector, RareDevices
from opslens.errors import DataError, InstanceError
from opslens.explain.text import plural
from opslens.features.fingerprints import (
    FingerprintConfig,
    feature_names,
    fleet_fingerprints,
    metric_fingerprints,
)

__all__ = ["FleetPredictor", "NearestGroup", "RareDeviceScorer"]


def _clean(frame: pl.DataFrame, features: Sequence[str], medians: np.ndarray) -> np.ndarray:
    X = frame.select(features).cast(pl.Float64).to_numpy().copy()
    bad = ~np.isfinite(X)
    X[bad] = np.broadcast_to(medians, X.shape)[bad]
    return X


def _float(value: Any) -> float:
    """A fingerprint value as the batch path's Float64 cast reads it (None: missing, NaN)."""
    return math.nan if value is None else float(value)


_EXACT = 2**53  # integers a float64 holds exactly
_ABSENT = object()
_NUMBERS = {float, int, type(None)}


#: byte templates of the plain ISO time forms, by length: (digit columns, other columns, their bytes)
_FORMS: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _form(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The byte template of ``text``'s plain ISO form (``2024-01-01T00:00:00``, optionally
    ``.`` and 1 to 6 digits, optionally ``Z``; a line ends in a newline), or None for another
    form."""
    key = len(text) * 2 + text.endswith("Z")
    got = _FORMS.get(key)
    if got is None:
        size = len(text) - text.endswith("Z")
        if size != 19 and not 21 <= size <= 26:
            return None
        shape = "dddd-dd-ddTdd:dd:dd" + ("." + "d" * (size - 20) if size > 19 else "")
        shape += "Z\n" if text.endswith("Z") else "\n"
        digits = np.array([i for i, c in enumerate(shape) if c == "d"], dtype=np.intp)
        others = np.array([i for i, c in enumerate(shape) if c != "d"], dtype=np.intp)
        got = _FORMS[key] = (digits, others, np.frombuffer(shape.encode(), np.uint8)[others])
    return got


def _stamps(texts: Sequence[Any]) -> np.ndarray | None:
    """Microseconds since 1970 of ISO times of one plain form (``2024-01-01T00:00:00``,
    optionally with 1 to 6 fractional digits and ``Z``; the same form for all, as a table's
    parser infers one), exactly the times ``datetime.fromisoformat`` reads; None for
    anything else (another form, a date that does not exist, hour 24, second 60, year 0),
    which the batch path reads, converts or refuses.

    Example:
        >>> _stamps(["1970-01-02T00:00:00.5", "1970-01-01T00:00:01.0"]).tolist()
        [86400500000, 1000000]
        >>> _stamps(["2023-02-29T00:00:00"]) is None, _stamps(["2024-01-01"]) is None
        (True, True)
    """
    count = len(texts)
    if not count or set(map(type, texts)) != {str}:
        return None
    first = texts[0]
    form = _form(first)
    joined = "\n".join(texts) + "\n"
    width = len(first) + 1
    if form is None or len(joined) != count * width or not joined.isascii():
        return None
    # every line the template: so no time holds a newline, and all have the same length
    lines = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(count, width)
    digits, others, expected = form
    if not ((lines[:, digits] - 48) < 10).all() or not (lines[:, others] == expected).all():
        return None
    if (lines[:, :4] == 48).all(axis=1).any():  # year 0: numpy reads it, Python's datetime not
        return None
    size = width - 1 - first.endswith("Z")
    text = np.ascontiguousarray(lines[:, :size]).view(f"S{size}").reshape(count)
    try:  # numpy refuses what fromisoformat refuses: month 13, 30 February, hour 24, second 60
        return text.astype("datetime64[us]").view(np.int64)
    except ValueError:
        return None


#: per predictor, where each model's features sit among one device's fingerprints
_PLANS: weakref.WeakKeyDictionary[Any, dict[str, np.ndarray]] = weakref.WeakKeyDictionary()


def _medians(frame: pl.DataFrame, features: Sequence[str]) -> np.ndarray:
    X = frame.select(features).cast(pl.Float64).to_numpy()
    X = np.where(np.isfinite(X), X, np.nan)
    return np.asarray(np.nanmedian(X, axis=0))


def _missing(frame: pl.DataFrame, names: Sequence[str]) -> None:
    missing = [f for f in names if f not in frame.columns]
    if missing:
        raise DataError(
            f"fingerprints lack {len(missing)} column(s) the model was trained on, e.g. '{missing[0]}'",
            fix="compute fingerprints with the same metrics and fingerprint params as the training run",
        )


class RareDeviceScorer:
    """A fitted rare-device detector with the feature list and medians it needs."""

    def __init__(
        self, detector: RareDeviceDetector, *, entity: str, features: list[str], medians: np.ndarray
    ) -> None:
        self.detector = detector
        self.entity = entity
        self.features = features
        self.medians = np.asarray(medians, dtype=float)

    @classmethod
    def from_ranking(
        cls, rare: RareDevices, fingerprints: pl.DataFrame, *, entity: str
    ) -> RareDeviceScorer:
        """Build the scorer from a fleet ranking and the fingerprints it was fitted on."""
        features = list(rare.feature_names)
        return cls(
            rare.detector,
            entity=entity,
            features=features,
            medians=_medians(fingerprints, features),
        )

    def score_one(self, fingerprint: Mapping[str, Any] | np.ndarray) -> dict[str, Any]:
        """One device's fingerprint (its features by name, or a vector in :attr:`features`'
        order) scored on numpy alone: ``score`` (the combined rank percentile), ``is_rare``
        and each method's score, the same numbers :meth:`predict_frame` gives for that row
        (tested). Missing values take the training medians, as in the batch path.

        Example:
            >>> import numpy as np, polars as pl
            >>> from opslens.detect.population import rank_rare_devices
            >>> X = np.random.default_rng(0).normal(size=(40, 2)); X[3] = [9.0, -9.0]
            >>> fp = pl.DataFrame({"id": [f"d{i}" for i in range(40)], "a": X[:, 0], "b": X[:, 1]})
            >>> scorer = RareDeviceScorer.from_ranking(
            ...     rank_rare_devices(fp, entity="id", methods=("ecod",)), fp, entity="id")
            >>> one = scorer.score_one({"a": 9.0, "b": -9.0})
            >>> one["is_rare"], one["score"] == scorer.predict_frame(fp[3])["combined"][0]
            (True, True)
        """
        if isinstance(fingerprint, np.ndarray):
            x = np.array(fingerprint, dtype=np.float64).reshape(-1)
        else:
            missing = [f for f in self.features if f not in fingerprint]
            if missing:
                _missing(pl.DataFrame(), missing)
            x = np.array([_float(fingerprint[f]) for f in self.features], dtype=np.float64)
        if x.shape != self.medians.shape:
            raise DataError(
                f"a fingerprint of {x.size} values for a model of {self.medians.size} features",
                fix="compute fingerprints with the same metrics and fingerprint params as the "
                "training run",
            )
        bad = ~np.isfinite(x)
        if bad.any():
            x[bad] = self.medians[bad]
        det = self.detector
        if not np.isfinite(x).all():  # a feature with no training median: refused as in batch
            norm = det.normalised_scores(x[None, :])
        else:
            norm = np.array([det.normalised_one((x - det.center_) / det.scale_)])
        combined = float(norm.mean(axis=1)[0])
        return {
            "score": combined,
            "is_rare": combined > det.threshold_,
            "methods": {m: float(norm[0, i]) for i, m in enumerate(det.methods)},
        }

    def predict_frame(self, fingerprints: pl.DataFrame) -> pl.DataFrame:
        """Scores of each device in ``fingerprints``: one per method, combined, rank, is_rare."""
        _missing(fingerprints, [self.entity, *self.features])
        X = _clean(fingerprints, self.features, self.medians)
        entities = fingerprints[self.entity].cast(pl.String).to_list()
        return self.detector.score_frame(X, entities).rename({"entity": self.entity})


class NearestGroup:
    """The behaviour group of a new fingerprint: a kNN vote among the training devices.

    Features are cleaned with the training medians and standardised with the
    training mean and std, as the groups were found.
    """

    def __init__(
        self,
        *,
        method: str,
        features: list[str],
        fingerprints: pl.DataFrame,
        labels: np.ndarray,
        n_neighbors: int = 5,
    ) -> None:
        self.method = method
        self.features = features
        self.medians = _medians(fingerprints, features)
        X = _clean(fingerprints, features, self.medians)
        self.mean = X.mean(axis=0)
        std = X.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        self.knn = KNeighborsClassifier(n_neighbors=min(n_neighbors, len(labels))).fit(
            (X - self.mean) / self.std, np.asarray(labels)
        )

    def predict_one(self, fingerprint: Mapping[str, Any]) -> tuple[int, float]:
        """The group of one fingerprint (features by name) and its vote share: :meth:`predict`
        of that row, on numpy (the same cleaning, scaling and vote)."""
        missing = [f for f in self.features if f not in fingerprint]
        if missing:
            _missing(pl.DataFrame(), missing)
        x = np.array([_float(fingerprint[f]) for f in self.features], dtype=np.float64)
        return self.predict_vector(x)

    def predict_vector(self, x: np.ndarray) -> tuple[int, float]:
        """:meth:`predict_one` of a fingerprint as a vector in :attr:`features`' order: the
        neighbours found by a direct distance to every training device, the vote counted as
        the classifier counts it (uniform weights: a class's share is its neighbours over
        ``k``; ties to the first class); when the ``k``-th and the next distance are within
        rounding (the classifier's own distances could order them otherwise), the classifier
        answers.

        Example:
            >>> import numpy as np, polars as pl
            >>> X = np.random.default_rng(0).normal(size=(30, 2))
            >>> fp = pl.DataFrame({"a": X[:, 0], "b": X[:, 1]})
            >>> near = NearestGroup(method="k", features=["a", "b"], fingerprints=fp,
            ...                     labels=(X[:, 0] > 0).astype(int))
            >>> near.predict_vector(X[3]) == near.predict_one({"a": X[3, 0], "b": X[3, 1]})
            True
        """
        x = np.array(x, dtype=np.float64)
        bad = ~np.isfinite(x)
        if bad.any():
            x[bad] = self.medians[bad]
        z = (x - self.mean) / self.std
        knn = self.knn
        fitted = getattr(knn, "_fit_X", None)
        codes = getattr(knn, "_y", None)
        k = int(knn.n_neighbors)
        if (
            knn.weights == "uniform"
            and isinstance(fitted, np.ndarray)
            and isinstance(codes, np.ndarray)
            and codes.ndim == 1
            and np.isfinite(z).all()
        ):
            d = fitted - z
            d2 = np.einsum("ij,ij->i", d, d)
            if k < d2.size:
                part = np.argpartition(d2, k)
                near, far = part[:k], part[k:]
                kth, nxt = float(d2[near].max()), float(d2[far].min())
                clear = nxt - kth > 1e-9 * nxt
            else:
                near, clear = np.arange(d2.size), True
            if clear:
                votes = np.bincount(codes[near], minlength=len(knn.classes_))
                best = int(votes.argmax())
                return int(knn.classes_[best]), float(votes[best] / float(votes.sum()))
        proba = knn.predict_proba(z[None, :])
        return int(knn.classes_[proba.argmax(axis=1)][0]), float(proba.max(axis=1)[0])

    def predict(self, fingerprints: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The group of each row and the share of neighbours that voted for it."""
        _missing(fingerprints, self.features)
        Z = (_clean(fingerprints, self.features, self.medians) - self.mean) / self.std
        proba = self.knn.predict_proba(Z)
        return self.knn.classes_[proba.argmax(axis=1)], proba.max(axis=1)


class FleetPredictor(BasePredictor):
    """A new device's readings → fingerprint → rare score against the fleet, nearest group.

    An instance is one device: ``{"device_id": "d1", "readings": [{"timestamp": ..., "temperature": ...}, ...]}``
    or, column-wise, ``{"device_id": "d1", "timestamp": [...], "temperature": [...]}``.
    """

    recipe = "fleet"

    def __init__(
        self,
        scorer: RareDeviceScorer,
        groups: NearestGroup | None,
        *,
        time: str,
        metrics: list[str],
        fingerprint: FingerprintConfig,
        exclude_features: Sequence[str] = (),
        min_readings: int = 3,
        window_scorer: RareDeviceScorer | None = None,
        window: timedelta | None = None,
    ) -> None:
        self.window_scorer = window_scorer
        self.window = window
        self.scorer = scorer
        self.groups = groups
        self.time = time
        self.metrics = list(metrics)
        self.fingerprint = fingerprint
        self.exclude_features = list(exclude_features)
        self.min_readings = min_readings

    @property
    def entity(self) -> str:
        """The device id column."""
        return self.scorer.entity

    @property
    def batch_key(self) -> str:  # type: ignore[override]
        """A device's readings are scored together (batch scoring splits between devices)."""
        return self.entity

    def input_schema(self) -> dict[str, str]:
        """The device id, and its readings: a list of {time, metrics...} records."""
        return {self.entity: "string", "readings": "list"}

    def input_rules(self) -> dict[str, InputRule]:
        """The device id (text) and at least ``min_readings`` readings, each an ISO time and
        one number (or null: a missing reading) per metric within ±1e100."""
        big = MAX_MAGNITUDE
        reading = {
            self.time: InputRule("datetime", False),
            **{m: InputRule("number", minimum=-big, maximum=big) for m in self.metrics},
        }
        return {
            self.entity: InputRule("string", False),
            "readings": InputRule("list", False, fields=reading, min_items=self.min_readings),
        }

    def fingerprints(self, readings: pl.DataFrame) -> pl.DataFrame:
        """The fingerprint of each device in ``readings`` (the training run's settings)."""
        readings = as_polars(readings, what="the readings")
        fp = fleet_fingerprints(
            readings.with_columns(pl.col(self.entity).cast(pl.String)),
            entity=self.entity,
            time=self.time,
            metrics=self.metrics,
            config=self.fingerprint,
        )
        drop = [c for c in fp.columns if "__" in c and c.split("__", 1)[1] in self.exclude_features]
        return fp.drop(drop)

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """One row per device of a readings frame: method scores, ``score``, ``is_rare``, ``group``."""
        frame = as_polars(frame, what="the readings")
        missing = [c for c in [self.entity, self.time, *self.metrics] if c not in frame.columns]
        if missing:
            raise DataError(
                f"the readings lack column(s) {', '.join(missing)}",
                fix=f"send {self.entity}, {self.time} and {', '.join(self.metrics)}",
            )
        frame = parse_time(frame, self.time, where="the readings")
        fp = self.fingerprints(frame)
        scores = self._scores(frame, fp)
        if self.groups is not None:
            group, share = self.groups.predict(fp)
            scores = scores.with_columns(
                pl.Series("group", group.astype(np.int64)), pl.Series("group_vote", share)
            )
        return scores

    def _scores(self, frame: pl.DataFrame, fp: pl.DataFrame) -> pl.DataFrame:
        """Whole histories against the training fleet; short ones against its recent windows.

        A device whose readings span at most 1.5 windows is compared with the training
        devices' fingerprints of ``window``-long windows (the same length), not with their
        whole histories; ``compared_with`` says which, and ``note`` when a device has
        less history than the window.
        """
        whole = self.scorer.predict_frame(fp).drop("rank").rename({"combined": "score"})
        whole = whole.with_columns(pl.lit("whole history").alias("compared_with"))
        if self.window_scorer is None or self.window is None:
            return whole.with_columns(pl.lit(None, pl.String).alias("note"))
        span = (
            frame.group_by(self.entity)
            .agg((pl.col(self.time).max() - pl.col(self.time).min()).alias("__span"))
            .with_columns(pl.col(self.entity).cast(pl.String))
        )
        fp = fp.join(span, on=self.entity, how="left", maintain_order="left")
        short = fp["__span"] <= self.window * 1.5
        if not short.any():
            return whole.with_columns(pl.lit(None, pl.String).alias("note"))
        days = self.window.total_seconds() / 86400
        recent = (
            self.window_scorer.predict_frame(fp.filter(short))
            .drop("rank")
            .rename({"combined": "score"})
            .with_columns(
                pl.lit(f"{days:g}-day windows of the training devices").alias("compared_with")
            )
        )
        both = pl.concat([whole.filter(~short), recent]).join(
            fp.select(self.entity, "__span"), on=self.entity, how="left"
        )
        note = (
            pl.when(pl.col("__span") < self.window)
            .then(
                pl.format(
                    "has {} days of readings, less than the {} days the model compares",
                    (pl.col("__span").dt.total_seconds() / 86400).round(1),
                    pl.lit(f"{days:g}"),
                )
            )
            .otherwise(None)
        )
        order = fp.select(self.entity).with_row_index("__order")
        return (
            both.with_columns(note.alias("note"))
            .join(order, on=self.entity)
            .sort("__order")
            .drop("__order", "__span")
        )

    def _frame(self, instance: Mapping[str, Any]) -> pl.DataFrame:
        if not isinstance(instance, Mapping):
            raise InstanceError(
                f"an instance must be a JSON object, not {type(instance).__name__}",
                fix=f'send {{"{self.entity}": "...", "readings": [...]}}',
            )
        device = instance.get(self.entity)
        if device is None:
            raise InstanceError(
                f"instance lacks the device id '{self.entity}'",
                fix=f'send {{"{self.entity}": "...", "readings": [...]}}',
            )
        readings = instance.get("readings")
        try:
            if readings is not None:
                if not isinstance(readings, list) or not all(isinstance(r, dict) for r in readings):
                    raise InstanceError(
                        "'readings' must be a list of objects",
                        fix=f'send "readings": [{{"{self.time}": "...", "{self.metrics[0]}": 1.0}}, ...]',
                    )
                wanted = [self.time, *self.metrics]  # other fields of a reading are not read
                frame = pl.DataFrame(
                    [{k: r[k] for k in wanted if k in r} for r in readings],
                    infer_schema_length=None,
                )
            else:
                frame = pl.DataFrame(
                    {k: instance[k] for k in [self.time, *self.metrics] if k in instance}
                )
        except (TypeError, ValueError, pl.exceptions.PolarsError) as e:
            raise InstanceError(
                f"the readings of device {device!r} cannot be read as a table ({e})",
                fix="send one number per metric and one timestamp per reading",
            ) from None
        if frame.height < self.min_readings:
            raise InstanceError(
                f"device {device!r} has {plural(frame.height, 'reading')}; the model needs at least {self.min_readings}",
                fix="send more readings of the device",
            )
        missing = [c for c in [self.time, *self.metrics] if c not in frame.columns]
        if missing:
            raise InstanceError(
                f"the readings of device {device!r} lack {', '.join(missing)}",
                fix=f"give every reading {self.time} and {', '.join(self.metrics)}",
            )
        # a metric null in every reading is a column of missing numbers, not of type Null
        numbers = [pl.col(m).cast(pl.Float64) for m in self.metrics if frame[m].dtype == pl.Null]
        return frame.with_columns(*numbers, pl.lit(str(device)).alias(self.entity))

    def _readings(self, instance: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
        """The times (microseconds since 1970) and values (one row per metric, NaN for null)
        of an instance's readings, in the order sent, when the single-device path reads them
        as the batch path would — ISO times of one plain form (:func:`_stamps`), numbers or
        null for every metric of every reading, at least ``min_readings`` of them — or None:
        anything else takes the batch path, which reads, converts or refuses it."""
        readings = instance.get("readings") if isinstance(instance, Mapping) else None
        if instance.get(self.entity) is None or type(readings) is not list:
            return None
        if len(readings) < self.min_readings or set(map(type, readings)) != {dict}:
            return None
        try:  # every reading's time and metrics, one tuple per field
            columns = list(zip(*map(itemgetter(self.time, *self.metrics), readings), strict=True))
        except KeyError:  # a reading without a metric: the batch path reads or refuses it
            return None
        stamps = _stamps(columns[0])
        if stamps is None:
            return None
        numbers = columns[1:]
        kinds = set(map(type, chain.from_iterable(numbers)))
        if not kinds <= _NUMBERS:  # text, a boolean, an object: the batch path
            return None
        if int in kinds and not all(
            -_EXACT <= v <= _EXACT for v in chain.from_iterable(numbers) if type(v) is int
        ):
            return None
        values = np.array(numbers, dtype=np.float64)  # null: NaN
        return stamps, values

    def _plan(self) -> dict[str, Any] | None:
        """Where each model's features sit in one device's fingerprints (metrics x
        :func:`feature_names`, flattened): index arrays, built once per predictor; None when a
        model wants a feature the fingerprints do not name (the dictionary path then refuses it)."""
        plan = _PLANS.get(self)
        if plan is None:
            names = feature_names(self.fingerprint)
            at = {f"{m}__{n}": i for i, (m, n) in enumerate(product(self.metrics, names))}
            plan = {}
            models = {"whole": self.scorer, "window": self.window_scorer, "groups": self.groups}
            for key, model in models.items():
                if model is None:
                    continue
                if any(f not in at for f in model.features):
                    plan = None
                    break
                plan[key] = np.array([at[f] for f in model.features], dtype=np.intp)
            _PLANS[self] = plan if plan is not None else {}
        return plan or None

    def predict_checked(self, instance: Any) -> dict[str, Any] | None:
        """:meth:`predict_one`'s answer when ``instance`` is one the service's request schema
        (built from :meth:`input_rules`) accepts and the single-device path reads — the
        device id text, at least ``min_readings`` readings, each an ISO time of the one plain
        form and every metric a number within ±1e100 or null — so the service need not
        validate it first; None for anything else (the service validates it, and
        :meth:`predict_one` answers or refuses it).

        Example:
            >>> # a fitted FleetPredictor: predictor.predict_checked({"device_id": 7}) is None
        """
        if type(instance) is not dict or type(instance.get(self.entity)) is not str:
            return None
        got = self._readings(instance)
        if got is None:
            return None
        values = got[1]
        with np.errstate(invalid="ignore"):
            if not (np.abs(values[~np.isnan(values)]) <= MAX_MAGNITUDE).all():
                return None  # beyond the schema's bounds (or not finite): refused there
        return self._predict_device(instance, got)

    def _predict_device(
        self,
        instance: Mapping[str, Any],
        got: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> dict[str, Any] | None:
        """:meth:`predict_one` on numpy alone: the device's fingerprints from its readings in
        time order (:func:`metric_fingerprints`: the batch path's kernels, every metric in one
        call, on this thread alone), its scores (:meth:`RareDeviceDetector.normalised_one`)
        and its group (:meth:`NearestGroup.predict_vector`); None when the batch path must
        answer (readings it reads differently, or a history shorter than the window, whose
        note it writes). ``got``: what :meth:`_readings` read, when read already."""
        got = self._readings(instance) if got is None else got
        if got is None:
            return None
        stamps, values = got
        span = timedelta(microseconds=int(stamps.max() - stamps.min()))
        window = self.window_scorer is not None and self.window is not None
        if window and self.window is not None and span < self.window:
            return None
        order = np.argsort(stamps, kind="stable")  # equal times keep their order
        values = values[:, order]
        # one device on this thread alone: the kernel's threads cost more to wake than the work
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return self._device_answer(instance, values, span)
        finally:
            numba.set_num_threads(threads)

    def _device_answer(
        self, instance: Mapping[str, Any], values: np.ndarray, span: timedelta
    ) -> dict[str, Any]:
        """The single-device answer from the readings' values in time order (one row per
        metric) and the time they span."""
        window = self.window_scorer is not None and self.window is not None
        matrix = metric_fingerprints(values, self.fingerprint)
        short = window and self.window is not None and span <= self.window * 1.5
        plan = self._plan()
        fp: Mapping[str, Any] | np.ndarray
        if plan is None:  # a model's feature not among the fingerprints: refused by name
            names = feature_names(self.fingerprint)
            fp = {
                f"{m}__{n}": v
                for j, m in enumerate(self.metrics)
                for n, v in zip(names, matrix[j].tolist(), strict=True)
            }
        else:
            fp = matrix.ravel()
        answer: dict[str, Any] = {self.entity: str(instance[self.entity])}
        if plan is None:
            answer |= self.score_fingerprint(fp, window=short)
        else:
            assert isinstance(fp, np.ndarray)
            answer |= self.score_fingerprint(fp[plan["window" if short else "whole"]], window=short)
        if self.groups is not None:
            if plan is None:
                assert not isinstance(fp, np.ndarray)
                group, share = self.groups.predict_one(fp)
            else:
                assert isinstance(fp, np.ndarray)
                group, share = self.groups.predict_vector(fp[plan["groups"]])
            answer.update(group=group, group_method=self.groups.method, group_vote=share)
        return answer

    def predict_one(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        """The device's score, whether it is rare, its nearest group, and per-method scores.

        Readings in one plain form take the single-device path on numpy
        (:meth:`_predict_device`: the same answer as the batch path, tested); anything else
        goes through the one-device table of :meth:`predict_frame`.
        """
        if isinstance(instance, Mapping):
            fast = self._predict_device(instance)
            if fast is not None:
                return fast
        return self._predict_via_table(instance)

    def _predict_via_table(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`predict_one` through the one-device table of :meth:`predict_frame`."""
        try:
            row = self.predict_frame(self._frame(instance)).row(0, named=True)
        except DataError as e:
            raise InstanceError(e.problem, fix=e.fix) from None
        answer: dict[str, Any] = {
            self.entity: row[self.entity],
            "score": float(row["score"]),
            "is_rare": bool(row["is_rare"]),
            "methods": {m: float(row[m]) for m in self.scorer.detector.methods},
            "compared_with": row["compared_with"],
        }
        if row["note"] is not None:
            answer["note"] = row["note"]
        if self.groups is not None:
            answer.update(
                group=int(row["group"]),
                group_method=self.groups.method,
                group_vote=float(row["group_vote"]),
            )
        return answer

    def score_fingerprint(
        self, fingerprint: Mapping[str, Any] | np.ndarray, *, window: bool = False
    ) -> dict[str, Any]:
        """A device's fingerprint (computed already, e.g. by :meth:`fingerprints`) → its rare
        score on numpy alone (:meth:`RareDeviceScorer.score_one`): against the training devices'
        whole histories, or with ``window`` against their ``window``-long windows (a short
        history, as :meth:`predict_frame` compares it).

        Example:
            >>> # see RareDeviceScorer.score_one; a fitted FleetPredictor answers
            >>> # predictor.score_fingerprint(predictor.fingerprints(readings).row(0, named=True))
        """
        if window and self.window_scorer is not None:
            answer = self.window_scorer.score_one(fingerprint)
            days = self.window.total_seconds() / 86400 if self.window is not None else 0.0
            return answer | {"compared_with": f"{days:g}-day windows of the training devices"}
        return self.scorer.score_one(fingerprint) | {"compared_with": "whole history"}

    def explain_one(self, instance: Mapping[str, Any], n: int = 5) -> dict[str, Any]:
        """The ``n`` fingerprint features that deviate most from the training fleet (robust z)."""
        fp = self.fingerprints(parse_time(self._frame(instance), self.time, where="the readings"))
        det = self.scorer.detector
        X = _clean(fp, self.scorer.features, self.scorer.medians)
        z = ((X - det.center_) / det.scale_)[0]
        order = np.argsort(-np.abs(z), kind="stable")[:n]
        return {
            self.entity: fp[self.entity][0],
            "deviating_features": [
                {"feature": self.scorer.features[j], "robust_z": round(float(z[j]), 2)}
                for j in order
            ],
        }
