"""What the fleet recipe's online side loads: a rare-device scorer for new fingerprints.

It keeps the features the detector was trained on and their training medians,
so a new fingerprint frame is cleaned exactly as the training one was
(non-finite → median), then scored (higher = more unusual).

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

import numpy as np
import polars as pl

from opslens.detect.population import RareDeviceDetector, RareDevices
from opslens.errors import DataError

__all__ = ["RareDeviceScorer"]


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
        X = fingerprints.select(rare.feature_names).cast(pl.Float64).to_numpy()
        X = np.where(np.isfinite(X), X, np.nan)
        return cls(
            rare.detector,
            entity=entity,
            features=list(rare.feature_names),
            medians=np.nanmedian(X, axis=0),
        )

    def predict_frame(self, fingerprints: pl.DataFrame) -> pl.DataFrame:
        """Scores of each device in ``fingerprints``: one per method, combined, rank, is_rare."""
        missing = [f for f in [self.entity, *self.features] if f not in fingerprints.columns]
        if missing:
            raise DataError(
                f"fingerprints lack {len(missing)} column(s) the scorer was trained on, e.g. '{missing[0]}'",
                fix="compute fingerprints with the same metrics and fingerprint params as the training run",
            )
        X = fingerprints.select(self.features).cast(pl.Float64).to_numpy().copy()
        bad = ~np.isfinite(X)
        X[bad] = np.broadcast_to(self.medians, X.shape)[bad]
        entities = fingerprints[self.entity].cast(pl.String).to_list()
        return self.detector.score_frame(X, entities).rename({"entity": self.entity})
