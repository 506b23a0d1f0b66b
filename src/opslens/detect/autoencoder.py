"""Autoencoder outlier detector: rows the network cannot reconstruct are rare.

Higher score = more anomalous.

The input is standardised (mean 0, standard deviation 1 per feature; constant
features get scale 1), then a small scikit-learn ``MLPRegressor`` (tanh,
L-BFGS) with a narrow middle layer learns to reproduce it. A row's score is its
mean squared reconstruction error in standardised units.

Training uses at most ``max_samples`` rows (a seeded random subset; all rows
are scored) and one BLAS thread: these matrices are small, and a
multi-threaded BLAS made L-BFGS ~20× slower on 2 cores. Training is
deterministic for a given ``random_state``; a run that stops at ``max_iter``
before converging is accepted silently (the score ranks rows, nothing more).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(80, 1))
    >>> X = np.hstack([z, 2 * z, -z]) + rng.normal(scale=0.05, size=(80, 3))
    >>> X = np.vstack([X, [[1.0, -2.0, 1.0]]])
    >>> det = AutoencoderDetector(hidden=(4, 1, 4), random_state=0).fit(X)
    >>> int(np.argmax(det.score_samples(X)))
    80
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted
from threadpoolctl import threadpool_limits

__all__ = ["AutoencoderDetector"]


class AutoencoderDetector(BaseEstimator):  # type: ignore[misc]
    """Score rows by the reconstruction error of a small MLP autoencoder.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(1).normal(size=(40, 4))
        >>> det = AutoencoderDetector(max_iter=50, random_state=0).fit(X)
        >>> det.score_samples(X).shape
        (40,)
    """

    def __init__(
        self,
        hidden: tuple[int, ...] | None = None,
        *,
        max_iter: int = 200,
        alpha: float = 1.0,
        max_samples: int = 2000,
        random_state: int = 0,
    ) -> None:
        self.hidden = hidden
        self.max_iter = max_iter
        self.alpha = alpha
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: object = None) -> AutoencoderDetector:
        """Standardise ``X`` and train the network to reproduce it.

        Example:
            >>> import numpy as np
            >>> AutoencoderDetector(max_iter=20).fit(np.eye(5)).n_features_in_
            5
        """
        X = check_array(X, dtype=np.float64)
        self.scaler_ = StandardScaler().fit(X)
        Z = self.scaler_.transform(X)
        if Z.shape[0] > self.max_samples:
            rng = np.random.default_rng(self.random_state)
            Z = Z[np.sort(rng.choice(Z.shape[0], size=self.max_samples, replace=False))]
        d = X.shape[1]
        hidden = self.hidden or (min(16, max(2, d)), max(1, min(4, d // 3)), min(16, max(2, d)))
        net = MLPRegressor(
            hidden_layer_sizes=tuple(hidden),
            activation="tanh",
            solver="lbfgs",
            alpha=self.alpha,
            max_iter=self.max_iter,
            random_state=self.random_state,
        )
        with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
            warnings.simplefilter("ignore", category=ConvergenceWarning)
            net.fit(Z, Z[:, 0] if Z.shape[1] == 1 else Z)  # 1-D target for one feature
        self.network_ = net
        self.n_features_in_ = X.shape[1]
        return self

    def score_one(self, x: np.ndarray) -> np.ndarray:
        """:meth:`score_samples` of one row (1-D, finite) without the input checks and the BLAS
        thread limit (milliseconds to set; one row's products run on one thread anyway): the
        network's forward pass written out as scikit-learn's (the same products, sums and
        ``tanh`` on the same one-row arrays, so the same numbers); an array of one score.

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(2).normal(size=(30, 3))
            >>> det = AutoencoderDetector(max_iter=30).fit(X)
            >>> bool(det.score_one(X[4])[0] == det.score_samples(X[4:5])[0])
            True
        """
        scaler = self.scaler_
        Z = x[None, :].astype(np.float64)
        if scaler.with_mean:
            Z -= scaler.mean_
        if scaler.with_std:
            Z /= scaler.scale_
        net = self.network_
        if net.activation != "tanh" or net.out_activation_ != "identity":
            return self.score_samples(x[None, :])  # a network this class does not build
        layers = list(zip(net.coefs_, net.intercepts_, strict=True))
        activation = Z
        for i, (weights, bias) in enumerate(layers):  # MLPRegressor._forward_pass_fast
            activation = activation @ weights
            activation += bias
            if i != len(layers) - 1:
                np.tanh(activation, out=activation)
        recon = activation.reshape(Z.shape)
        return np.asarray(np.mean((Z - recon) ** 2, axis=1))

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Mean squared reconstruction error per row (higher = more anomalous).

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(2).normal(size=(30, 3))
            >>> s = AutoencoderDetector(max_iter=30).fit(X).score_samples(X)
            >>> bool((s >= 0).all())
            True
        """
        check_is_fitted(self, "network_")
        X = check_array(X, dtype=np.float64)
        Z = self.scaler_.transform(X)
        with threadpool_limits(1, user_api="blas"):
            recon = np.asarray(self.network_.predict(Z)).reshape(Z.shape)
        return np.asarray(np.mean((Z - recon) ** 2, axis=1))
