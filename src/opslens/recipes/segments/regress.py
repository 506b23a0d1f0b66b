"""One target's models: a global LightGBM always, and per segment its own model or a correction
of the global one only where that beats the global model on out-of-fold rows.

The global model is trained on all rows. For each segment with at least
``min_segment_rows`` training rows, three answers are compared on out-of-fold
predictions (``choice_folds`` shuffled folds of the training rows, seeded): the global
model, the segment's own model (trained on its rows only) and a *blend* — the global
prediction plus a per-segment correction (a LightGBM fitted to the global model's
residuals on the segment's rows). The segment keeps the global answer unless the better
of the other two has an out-of-fold RMSE at least ``min_gain`` (relative) below the
global model's and significantly lower squared errors (one-sided paired t-test,
p < ``ALPHA``); the choice, the three RMSEs and the p-value are kept in
:attr:`SegmentRegressor.choices_`.
The choice is made on the segment's clustered rows. Noise rows (placed by the kNN
fallback) get the global answer unless, by the same rule, their segments' own models (or
the blends) are better on the out-of-fold noise rows of all segments together (at least
``_MIN_NOISE_ROWS`` of them; one segment has too few to decide): :attr:`noise_choice_`.
Final models are refitted on all rows. :meth:`SegmentRegressor.predict_with_models` says per row which answered:
``segment``, ``blend`` or ``global`` (``none``: not scored — a segment too small or
unknown with ``graceful=False``). ``mode`` ``segment``, ``blend`` or ``global`` forces that
answer on every segment large enough (no comparison).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 2)); seg = np.repeat([0, 1, 2], 200); seg[-5:] = 3
    >>> y = np.where(seg == 0, 3 * X[:, 0], -X[:, 0]) + rng.normal(0, 0.1, 600)
    >>> m = SegmentRegressor(n_estimators=40, min_segment_rows=50).fit(X, y, seg)
    >>> sorted(m.choices_), m.choices_[0]["choice"] != "global"
    ([0, 1, 2], True)
    >>> m.predict_with_models(X[-6:], seg[-6:])[1].tolist()[1:]
    ['global', 'global', 'global', 'global', 'global']
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["CHOICES", "SegmentRegressor", "regression_metrics", "threads"]

_PARALLEL_ROWS = 20_000  # below this, threads cost more than they save
_MIN_NOISE_ROWS = 20
"""Out-of-fold noise rows needed before segment models may answer noise rows."""
ALPHA = 0.16
"""Significance a segment's own model (or the blend) needs to replace the global answer: about
one standard error (a one-sided t of 1), the 1-SE rule."""
CHOICES = ("global", "segment", "blend")
"""What answers a segment's rows: the global model, the segment's own, global + correction."""


def threads(n_rows: int) -> int:
    """Threads for predicting ``n_rows`` rows (rows are independent: same numbers either way).

    Example:
        >>> threads(1), threads(100_000)
        (1, 2)
    """
    return 2 if n_rows >= _PARALLEL_ROWS else 1


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² (R² NaN for fewer than two rows).

    Example:
        >>> regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))["mae"]
        0.3333333333333333
    """
    if len(y) == 0:
        return {"rmse": float("nan"), "mae": float("nan"), "r2": float("nan"), "n": 0.0}
    return {
        "rmse": float(np.sqrt(mean_squared_error(y, pred))),
        "mae": float(mean_absolute_error(y, pred)),
        "r2": float(r2_score(y, pred)) if len(y) > 1 else float("nan"),
        "n": float(len(y)),
    }


def _rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - pred) ** 2))) if len(y) else float("nan")


def _booster_predict(model: Any, X: np.ndarray) -> np.ndarray:
    """A fitted LGBMRegressor's predictions through its booster: the same numbers as its
    ``predict`` without the scikit-learn wrapper's per-call cost (most of a one-row answer)."""
    return np.asarray(model.booster_.predict(X, num_threads=threads(X.shape[0])))


def checked_array(estimator: Any, X: Any, *, allow_nan: bool) -> np.ndarray:
    """``X`` as scikit-learn's ``validate_data(..., reset=False)`` returns it; a float64
    C-ordered 2-D array of the fitted width (no inf, no NaN unless ``allow_nan``) passes
    without the call, which costs more than a one-row prediction.

    Example:
        >>> class Fitted:
        ...     n_features_in_ = 2
        >>> checked_array(Fitted(), np.zeros((1, 2)), allow_nan=False).shape
        (1, 2)
    """
    fitted = getattr(estimator, "n_features_in_", None)
    if (
        isinstance(X, np.ndarray)
        and X.dtype == np.float64
        and X.ndim == 2
        and X.shape[0] > 0
        and X.shape[1] == fitted
        and X.flags.c_contiguous
        and X.flags.writeable
        and not (np.isinf(X).any() if allow_nan else not np.isfinite(X).all())
    ):
        return X
    checked: np.ndarray = validate_data(
        estimator,
        X,
        dtype=np.float64,
        ensure_all_finite="allow-nan" if allow_nan else True,
        reset=False,
    )
    return checked


def _segments(segments: np.ndarray | None, n: int) -> np.ndarray:
    if segments is None:
        return np.zeros(n, dtype=np.int64)
    return np.asarray(segments, dtype=np.int64)


def _flags(noise: np.ndarray | None, n: int) -> np.ndarray:
    if noise is None:
        return np.zeros(n, dtype=bool)
    return np.asarray(noise, dtype=bool)


def gain_p_value(y: np.ndarray, pred: np.ndarray, base: np.ndarray) -> float:
    """One-sided paired t-test that ``pred``'s squared errors are below ``base``'s (1.0 when
    fewer than three rows or no difference).

    Example:
        >>> y = np.zeros(50); rng = np.random.default_rng(0)
        >>> gain_p_value(y, rng.normal(0, 0.5, 50), rng.normal(0, 2, 50)) < 0.01
        True
    """
    from scipy.stats import ttest_rel

    if len(y) < 3:
        return 1.0
    a, b = (y - pred) ** 2, (y - base) ** 2
    if np.allclose(a, b):
        return 1.0
    return float(ttest_rel(a, b, alternative="less").pvalue)


def pick(
    y: np.ndarray, preds: dict[str, np.ndarray], min_gain: float, alpha: float = ALPHA
) -> tuple[str, dict[str, float]]:
    """The choice for one segment's rows, and the RMSE of each answer (and ``p`` of the chosen
    one against the global): ``global`` unless ``segment`` or ``blend`` (the lower RMSE of the
    two) has an RMSE at least ``min_gain`` (relative) below the global model's and lower
    squared errors at significance ``alpha`` (:func:`gain_p_value`).

    Example:
        >>> rng = np.random.default_rng(0); y = rng.normal(size=300)
        >>> preds = {"global": np.zeros(300), "segment": y + rng.normal(0, 0.3, 300),
        ...     "blend": y + rng.normal(0, 0.5, 300)}
        >>> pick(y, preds, 0.01)[0], pick(y, {**preds, "segment": preds["global"],
        ...     "blend": preds["global"]}, 0.01)[0]
        ('segment', 'global')
    """
    rmse = {k: _rmse(y, preds[k]) for k in CHOICES}
    best = min(("segment", "blend"), key=lambda k: (rmse[k], k != "blend"))
    p = gain_p_value(y, preds[best], preds["global"]) if np.isfinite(rmse[best]) else 1.0
    figures = {**rmse, "p": p}
    if np.isfinite(rmse[best]) and rmse[best] < (1.0 - min_gain) * rmse["global"] and p < alpha:
        return best, figures
    return "global", figures


class SegmentRegressor(BaseEstimator):  # type: ignore[misc]
    """A global LightGBM plus, per segment where it helps, its own model or a correction."""

    def __init__(
        self,
        num_leaves: int = 15,
        learning_rate: float = 0.08,
        n_estimators: int = 100,
        lambda_l1: float = 0.0,
        lambda_l2: float = 0.0,
        min_child_samples: int = 10,
        min_segment_rows: int = 50,
        mode: str = "auto",
        choice_folds: int = 3,
        min_gain: float = 0.01,
        random_state: int = 0,
    ) -> None:
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.lambda_l1 = lambda_l1
        self.lambda_l2 = lambda_l2
        self.min_child_samples = min_child_samples
        self.min_segment_rows = min_segment_rows
        self.mode = mode
        self.choice_folds = choice_folds
        self.min_gain = min_gain
        self.random_state = random_state

    def _booster(self) -> Any:
        from lightgbm import LGBMRegressor

        return LGBMRegressor(
            num_leaves=self.num_leaves,
            learning_rate=self.learning_rate,
            n_estimators=self.n_estimators,
            reg_alpha=self.lambda_l1,
            reg_lambda=self.lambda_l2,
            min_child_samples=self.min_child_samples,
            random_state=self.random_state,
            n_jobs=1,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )

    def _out_of_fold(
        self, X: np.ndarray, y: np.ndarray, segments: np.ndarray, eligible: list[int]
    ) -> dict[str, np.ndarray]:
        """Out-of-fold predictions of the three answers for every row of an eligible segment."""
        n = X.shape[0]
        oof = {k: np.full(n, np.nan) for k in CHOICES}
        folds = KFold(self.choice_folds, shuffle=True, random_state=self.random_state)
        for tr, te in folds.split(X):
            g = self._booster().fit(X[tr], y[tr])
            oof["global"][te] = g.predict(X[te])
            fitted = g.predict(X[tr])
            for s in eligible:
                tr_s, te_s = tr[segments[tr] == s], te[segments[te] == s]
                if te_s.size == 0 or tr_s.size < 2:
                    continue
                own = self._booster().fit(X[tr_s], y[tr_s])
                oof["segment"][te_s] = own.predict(X[te_s])
                in_s = segments[tr] == s
                corr = self._booster().fit(X[tr_s], y[tr_s] - fitted[in_s])
                oof["blend"][te_s] = oof["global"][te_s] + corr.predict(X[te_s])
        return oof

    def _choose(
        self,
        y: np.ndarray,
        segments: np.ndarray,
        noise: np.ndarray,
        eligible: list[int],
        oof: dict[str, np.ndarray] | None,
    ) -> None:
        self.choices_: dict[int, dict[str, Any]] = {}
        edge_all = noise & np.isin(segments, eligible)
        self.noise_choice_: dict[str, Any] = {"choice": "global", "rows": int(edge_all.sum())}
        if oof is None:  # a forced mode: no comparison
            self.noise_choice_["choice"] = "global" if not eligible else self.mode
        elif edge_all.sum() >= _MIN_NOISE_ROWS:
            choice, figures = pick(
                y[edge_all], {k: v[edge_all] for k, v in oof.items()}, self.min_gain
            )
            self.noise_choice_ |= {"choice": choice} | {
                ("p_value" if k == "p" else f"rmse_{k}"): _finite(v) for k, v in figures.items()
            }
        for s in eligible:
            rows = segments == s
            entry: dict[str, Any] = {
                "rows": int(rows.sum()),
                "noise_rows": int((rows & noise).sum()),
            }
            entry["noise_choice"] = self.noise_choice_["choice"]
            if oof is None:
                entry |= {"choice": self.mode, "p_value": None}
                entry |= {f"rmse_{k}": None for k in CHOICES}
                entry |= {f"noise_rmse_{k}": None for k in CHOICES}
                self.choices_[s] = entry
                continue
            core, edge = rows & ~noise, rows & noise
            if not core.any():
                core = rows
            choice, figures = pick(y[core], {k: v[core] for k, v in oof.items()}, self.min_gain)
            entry |= {"choice": choice, "p_value": _finite(figures["p"])}
            entry |= {f"rmse_{k}": _finite(figures[k]) for k in CHOICES}
            entry |= {f"noise_rmse_{k}": _finite(_rmse(y[edge], oof[k][edge])) for k in CHOICES}
            self.choices_[s] = entry

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        segments: np.ndarray | None = None,
        noise: np.ndarray | None = None,
    ) -> SegmentRegressor:
        """Fit the global model on all rows, choose per large-enough segment (see the module
        docstring) and fit what was chosen (no ``segments``: every row in segment 0;
        ``noise``: the rows HDBSCAN left as noise)."""
        if self.mode not in ("auto", *CHOICES):
            raise ValueError(f"mode must be auto, segment, blend or global, not {self.mode!r}")
        # scikit-learn's own validation (ValueError): 2-D, real, no inf; NaN is LightGBM's missing
        X, y = validate_data(
            self, X, y, dtype=np.float64, ensure_all_finite="allow-nan", y_numeric=True
        )
        segments = _segments(segments, X.shape[0])
        noise = _flags(noise, X.shape[0])
        self.global_ = self._booster().fit(X, y)
        self.segment_rows_: dict[int, int] = {}
        for s in np.unique(segments):
            self.segment_rows_[int(s)] = int((segments == s).sum())
        eligible = [s for s, n in self.segment_rows_.items() if n >= self.min_segment_rows]
        oof = None
        if eligible and self.mode == "auto":
            oof = self._out_of_fold(X, y, segments, eligible)
        self._choose(y, segments, noise, eligible, oof)
        self.models_: dict[int, Any] = {}
        self.corrections_: dict[int, Any] = {}
        fitted = self.global_.predict(X) if self.mode in ("auto", "blend") else None
        for s, entry in self.choices_.items():
            rows = segments == s
            used = (entry["choice"], entry["noise_choice"])
            if "segment" in used:
                self.models_[s] = self._booster().fit(X[rows], y[rows])
            if "blend" in used and fitted is not None:
                self.corrections_[s] = self._booster().fit(X[rows], y[rows] - fitted[rows])
        return self

    def predict(
        self, X: np.ndarray, segments: np.ndarray | None = None, noise: np.ndarray | None = None
    ) -> np.ndarray:
        """Predictions (each row by what its segment chose)."""
        return self.predict_with_models(X, segments, noise)[0]

    def answers(
        self, segments: np.ndarray, noise: np.ndarray, *, graceful: bool = True
    ) -> np.ndarray:
        """Per row, which model answers: ``segment``, ``blend``, ``global`` or ``none``.

        Example:
            >>> r = SegmentRegressor(); r.choices_ = {0: {"choice": "segment",
            ...     "noise_choice": "global"}}
            >>> r.answers(np.array([0, 0, 5]), np.array([False, True, False])).tolist()
            ['segment', 'global', 'global']
        """
        used = np.full(segments.shape[0], "none" if not graceful else "global", dtype="<U7")
        choices = getattr(self, "choices_", None)
        if choices is None:  # fitted before the choice: every model of its own answers
            choices = {s: {"choice": "segment", "noise_choice": "segment"} for s in self.models_}
        for s, entry in choices.items():
            rows = segments == s
            if not rows.any():
                continue
            used[rows & ~noise] = entry["choice"]
            used[rows & noise] = entry["noise_choice"]
        return used

    def predict_with_models(
        self,
        X: np.ndarray,
        segments: np.ndarray | None = None,
        noise: np.ndarray | None = None,
        *,
        graceful: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and, per row, which model answered (``segment``/``blend``/``global``/
        ``none``: a segment without a choice of its own when ``graceful`` is off)."""
        check_is_fitted(self, "global_")
        n = len(X)
        segments = _segments(segments, n)
        used = self.answers(segments, _flags(noise, n), graceful=graceful)
        pred = np.full(n, np.nan)
        if n == 0:
            return pred, used
        X = self._checked(X)
        base = (used == "global") | (used == "blend")
        if base.any():
            pred[base] = _booster_predict(self.global_, X[base])
        for s, model in self.models_.items():
            rows = (segments == s) & (used == "segment")
            if rows.any():
                pred[rows] = _booster_predict(model, X[rows])
        for s, model in getattr(self, "corrections_", {}).items():
            rows = (segments == s) & (used == "blend")
            if rows.any():
                pred[rows] += _booster_predict(model, X[rows])
        return pred, used

    def predict_one(
        self,
        row: np.ndarray,
        segment: int,
        noise: bool,
        *,
        graceful: bool = True,
        checked: bool = False,
    ) -> tuple[float, str]:
        """One row's prediction and the model that answered, without arrays of rows: the same
        numbers as :meth:`predict_with_models` on that row alone (tested). ``row`` is a 1-D
        float64 array of the fitted width; each booster answers by its trees walked in a compiled
        kernel (:class:`~opslens.models.trees.TreeWalk`), or LightGBM's single-row fast path
        (:class:`~opslens.recipes.segments.single_row.SingleRowBooster`). ``checked``:
        the caller knows ``row`` has the fitted width and no infinity (skips that check).

        Example:
            >>> rng = np.random.default_rng(0)
            >>> X = rng.normal(size=(300, 2)); seg = np.repeat([0, 1], 150)
            >>> m = SegmentRegressor(n_estimators=20, min_segment_rows=50, mode="segment").fit(
            ...     X, X[:, 0] * seg, seg)
            >>> p, used = m.predict_one(X[0], 0, False)
            >>> used, p == float(m.predict_with_models(X[:1], seg[:1])[0][0])
            ('segment', True)
        """
        one = self.__dict__.get("_one")
        if one is None:
            check_is_fitted(self, "global_")
            one = self.__dict__["_one"] = {}
        key = (segment, noise, graceful)
        plan = one.get(key)
        if plan is None:
            plan = one[key] = self._plan(segment, noise, graceful)
        used, models = plan
        if not models:
            return float("nan"), used
        if not checked and (
            row.shape != (self.n_features_in_,)
            or (not math.isfinite(row @ row) and np.isinf(row).any())
        ):
            # what the batch path refuses, refused the same way (scikit-learn's ValueError)
            self._checked(row[None, :] if row.ndim == 1 else row)
        pred = models[0](row)
        for model in models[1:]:
            pred += model(row)
        return pred, used

    def _plan(self, segment: int, noise: bool, graceful: bool) -> tuple[str, list[Any]]:
        """Which model answers a row of ``segment`` (noise or not) and the single-row boosters
        whose predictions add up to its answer (global, then the correction, for a blend)."""
        from opslens.models.trees import TreeWalk
        from opslens.recipes.segments.single_row import SingleRowBooster

        boosters = self.__dict__.setdefault("_single", {})

        def fast(key: Any, model: Any) -> Any:
            # the trees walked by a compiled kernel (LightGBM's number, checked when built),
            # else LightGBM's own single-row fast path
            if key not in boosters:
                walk = TreeWalk.from_lightgbm(model.booster_)
                boosters[key] = walk if walk is not None else SingleRowBooster(model.booster_)
            return boosters[key]

        used = str(self.answers(np.array([segment]), np.array([noise]), graceful=graceful)[0])
        if used in ("global", "blend"):
            models = [fast("global", self.global_)]
            correction = getattr(self, "corrections_", {}).get(segment)
            if used == "blend" and correction is not None:
                models.append(fast(("correction", segment), correction))
        elif used == "segment" and segment in self.models_:
            models = [fast(("segment", segment), self.models_[segment])]
        else:
            models = []
        return used, models

    def __getstate__(self) -> dict[str, Any]:
        """The fitted state without the single-row caches (C handles, rebuilt on first use)."""
        state = dict(super().__getstate__())
        state.pop("_one", None)
        state.pop("_single", None)
        return state

    def predict_global(self, X: np.ndarray) -> np.ndarray:
        """The global model's predictions for every row (the baseline)."""
        check_is_fitted(self, "global_")
        if len(X) == 0:
            return np.empty(0)
        return _booster_predict(self.global_, self._checked(X))

    def _checked(self, X: np.ndarray) -> np.ndarray:
        """``X`` validated as in fit, with the fitted number of features (ValueError)."""
        return checked_array(self, X, allow_nan=True)

    def __sklearn_tags__(self) -> Any:
        """NaN features are LightGBM's missing values: accepted (inf is not)."""
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def importance(self, names: list[str]) -> dict[str, dict[str, float]]:
        """Gain importance per model (``global``, each segment's own model, ``<s>-correction``),
        shares summing to 1."""
        check_is_fitted(self, "global_")
        out = {}
        models = [
            ("global", self.global_),
            *((str(s), m) for s, m in self.models_.items()),
            *((f"{s}-correction", m) for s, m in getattr(self, "corrections_", {}).items()),
        ]
        for key, model in models:
            gain = model.booster_.feature_importance(importance_type="gain").astype(float)
            total = gain.sum() or 1.0
            out[key] = {n: float(g / total) for n, g in zip(names, gain, strict=True)}
        return out


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
