"""One row through a fitted LightGBM booster by LightGBM's own single-row fast path.

``Booster.predict`` on a one-row array spends most of its time in Python (a predictor
object, parameter strings, shape checks, the OpenMP team) before the trees run.
LightGBM's C API offers a fast path for exactly this case:
``LGBM_BoosterPredictForMatSingleRowFastInit`` sets the configuration up once and
``LGBM_BoosterPredictForMatSingleRowFast`` then scores one row on it, with the same
predictor underneath and so the same numbers as ``Booster.predict`` (tested).
:class:`SingleRowBooster` wraps that pair: the configuration is built on first use, kept
out of pickles (it is a C handle) and freed with the wrapper; a lock keeps concurrent
callers (the service's thread pool) off the shared input and output buffers.

Example:
    >>> import numpy as np
    >>> from lightgbm import LGBMRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = X[:, 0] + rng.normal(0, 0.1, 200)
    >>> booster = LGBMRegressor(n_estimators=20, verbose=-1).fit(X, y).booster_
    >>> one = SingleRowBooster(booster)
    >>> one(X[0]) == float(booster.predict(X[:1])[0])
    True
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np

__all__ = ["SingleRowBooster"]

_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL: the objective's transform applied, as predict()
_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class SingleRowBooster:
    """A fitted ``lightgbm.Booster`` answering one float64 row at a time (see the module)."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster
        self.n_features = int(booster.num_feature())
        self._lock = threading.Lock()
        self._config: ctypes.c_void_p | None = None
        self._shape = (self.n_features,)
        self._row = np.zeros(self.n_features, dtype=np.float64)
        self._row_ptr = self._row.ctypes.data
        self._out = np.zeros(1, dtype=np.float64)
        self._out_len = ctypes.c_int64(0)
        self._out_len_ref = ctypes.byref(self._out_len)

    def _setup(self) -> ctypes.c_void_p:
        from lightgbm import basic

        _LIB, _c_str, _safe_call = basic._LIB, basic._c_str, basic._safe_call  # type: ignore[attr-defined]
        config = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                self.booster._handle,
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),
                # what Booster.predict uses when num_iteration is None (0: every iteration)
                ctypes.c_int(int(self.booster.best_iteration or -1)),
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(self.n_features),
                _c_str("num_threads=1"),
                ctypes.byref(config),
            )
        )
        self._predict = _LIB["LGBM_BoosterPredictForMatSingleRowFast"]  # own copy: argtypes
        self._predict.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_int64),
            ctypes.POINTER(ctypes.c_double),
        ]
        self._predict.restype = ctypes.c_int
        self._check = _safe_call
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._config = config
        return config

    def __call__(self, row: np.ndarray) -> float:
        """The prediction for ``row``: a 1-D float64 array of the booster's width."""
        if row.shape != self._shape or row.dtype != np.float64:
            raise ValueError(
                f"a row of {self.n_features} float64 values is needed, not {row.dtype} {row.shape}"
            )
        with self._lock:
            config = self._config if self._config is not None else self._setup()
            self._row[:] = row  # into the buffer whose address the call takes (fixed, known)
            if self._predict(config, self._row_ptr, self._out_len_ref, self._out_ptr):
                self._check(-1)  # LightGBMError with the library's message
            return float(self._out[0])

    def close(self) -> None:
        """Free the C configuration (idempotent; the next call sets it up again)."""
        with self._lock:
            if self._config is not None:
                from lightgbm import basic

                basic._LIB.LGBM_FastConfigFree(self._config)  # type: ignore[attr-defined]
                self._config = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone
            pass

    def __getstate__(self) -> dict[str, Any]:
        return {"booster": self.booster}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["booster"])  # type: ignore[misc]
