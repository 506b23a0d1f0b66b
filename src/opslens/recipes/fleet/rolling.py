"""Rolling-window rare scores: the whole-window fingerprint ranking, checkpoint by checkpoint.

The app's lead-time view ranks the fleet on the window ending at each checkpoint, as the
rare stage ranks whole histories (the run itself evaluates lead time with the cheaper
warning rule of :mod:`~opslens.recipes.fleet.change`). Fingerprints come incrementally
(:class:`~opslens.features.fingerprints.RollingFingerprints`: only devices whose window
changed are recomputed), the same numbers as fingerprinting the slice.

Example:
    >>> from opslens.synthetic.fleet import make_fleet
    >>> from opslens.recipes.fleet.params import FleetParams, fingerprint_config
    >>> r = make_fleet(n_devices=8, n_points=120, n_failing=1, seed=0).readings
    >>> p = FleetParams.model_validate({"lead_time": {"window": "2d"}})
    >>> score = rolling_window_scorer(r, entity="device_id", time="timestamp",
    ...     metrics=["temperature"], params=p, config=fingerprint_config(p), random_state=0)
    >>> score(r["timestamp"].max()).height
    8
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import polars as pl

from opslens.detect.population import rank_rare_devices
from opslens.features.fingerprints import FingerprintConfig, RollingFingerprints
from opslens.recipes.fleet.params import FleetParams, analysed_features

__all__ = ["rolling_window_scorer"]


def rolling_window_scorer(
    readings: pl.DataFrame,
    *,
    entity: str,
    time: str,
    metrics: list[str],
    params: FleetParams,
    config: FingerprintConfig,
    random_state: int,
) -> Callable[[datetime], pl.DataFrame]:
    """Score the rolling window (``params.lead_time.window``) ending at ``t``: entity, score."""
    p = params
    rolling = RollingFingerprints(
        readings,
        entity=entity,
        time=time,
        metrics=metrics,
        window=p.lead_time.window,
        config=config,
        min_rows=max(p.min_readings, config.window),  # a window must hold enough data
    )

    def score(t: datetime) -> pl.DataFrame:
        fp = rolling.at(t)
        if fp.height < 3:
            return pl.DataFrame(
                {entity: [], "score": []}, schema={entity: pl.String, "score": pl.Float64}
            )
        ranked = rank_rare_devices(
            analysed_features(fp, p),
            entity=entity,
            top_n=1,
            random_state=random_state,
            methods=p.lead_time.methods,
        )
        return ranked.scores.select(entity, pl.col("combined").alias("score"))

    return score
