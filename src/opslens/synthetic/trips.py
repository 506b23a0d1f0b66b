"""Synthetic trip durations with planted distribution shapes per combination.

Every (route, hour_band, vehicle_type) combination draws its ``duration_min``
from one of three planted shapes:

====  =======================  ================================================
id    name                     distribution (minutes)
====  =======================  ================================================
0     ``fast & tight``         lognormal around 12 (σ_log = 0.12)
1     ``slow & right-skewed``  8 + gamma(k=2, θ=13.5): median ≈ 30, mean ≈ 35, long tail
2     ``bimodal``              half N(15, 2), half N(45, 3.5)
====  =======================  ================================================

The shape is a deterministic function of the attributes: ``(route + hour_band)
mod 3`` (so no single column predicts it), except that the last vehicle type
(``tram``) is always ``fast & tight`` in the first hour band (``night``).
``weekday`` is derived from ``started_at`` and carries no signal. Each
combination's durations are scaled by a small seeded factor (``jitter``) so
combinations of one shape are alike, not identical. A rare extra route ``RX``
(``rare_share`` of the rows) gives combinations small enough to exercise a
minimum-size filter.

``scenario="delivery"`` plants five shapes of different scales instead, per
(zone, hour_band, vehicle_type, day_type): the vehicle decides, and trucks
change shape at the weekend:

====  =========================  ==============================================
id    name                       distribution (minutes)
====  =========================  ==============================================
0     ``bike``                   lognormal around 10 (σ_log = 0.2)
1     ``scooter``                lognormal around 22 (σ_log = 0.2)
2     ``van``                    10 + gamma(k=3, θ=15): median ≈ 50, long tail
3     ``truck``                  N(150, 15)
4     ``truck weekend``          bimodal: half N(100, 8), half N(220, 15)
====  =========================  ==============================================

A share ``outlier_share`` of the delivery rows is multiplied by 20 (a stuck
parcel), to test that a few extreme values do not shape the patterns.

``scenario="city"`` is built to look like a real year of trips rather than like the
algorithm's assumptions: five shapes, one of them small, per (route, hour_band,
vehicle_type), over ``n_days`` days from 2024-01-01:

====  =========================  ==============================================
id    name                       distribution (minutes)
====  =========================  ==============================================
0     ``express``                lognormal around 14 (σ_log = 0.12)
1     ``local``                  6 + gamma(k=2, θ=7): median ≈ 18, long tail
2     ``cross-town``             N(38, 5)
3     ``long-haul``              lognormal around 70 (σ_log = 0.2)
4     ``ferry link``             bimodal: half N(18, 2), half N(42, 3)
====  =========================  ==============================================

Regular routes ``R01..R12`` are unevenly popular (Zipf), their shape is the route's
(``index mod 4``) except that minibuses on the non-long-haul routes run ``local``;
the three ferry routes ``F1..F3`` run buses only, never at night: 9 combinations
holding about 1.15% of the rows (~460 of 40,000), the small bimodal shape. Calendar
effects: weekdays carry more trips, weekend trips are 8% faster, durations drift by
±4% over the year; 4% of the days are missing (collector outages), one route reports
nothing for ten days (a sensor fault), a share ``outlier_share`` of the rows is 5–20
times too long and as many are near zero (cancelled trips).

Example:
    >>> data = make_trips(n_rows=2_000, seed=1)
    >>> data.trips.columns
    ['trip_id', 'started_at', 'route', 'hour_band', 'vehicle_type', 'weekday', 'duration_min']
    >>> data.truth.height  # (8 routes + RX) x 4 hour bands x 3 vehicle types
    108
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from opslens.errors import DataError

__all__ = ["CITY_SHAPE_NAMES", "DELIVERY_SHAPE_NAMES", "SHAPE_NAMES", "TripData", "make_trips"]

SHAPE_NAMES: tuple[str, str, str] = ("fast & tight", "slow & right-skewed", "bimodal")
"""Names of the planted shapes, indexed by shape id."""

DELIVERY_SHAPE_NAMES: tuple[str, ...] = ("bike", "scooter", "van", "truck", "truck weekend")
"""Names of the five planted shapes of ``scenario="delivery"``, indexed by shape id."""

CITY_SHAPE_NAMES: tuple[str, ...] = ("express", "local", "cross-town", "long-haul", "ferry link")
"""Names of the five planted shapes of ``scenario="city"``, indexed by shape id."""

_ZONES = ("north", "south", "east", "west", "centre", "harbour", "airport", "campus")
_DELIVERY_VEHICLES = ("bike", "scooter", "van", "truck")

_HOUR_BANDS_4 = ("night", "morning", "midday", "evening")
_VEHICLES = ("bus", "van", "tram", "minibus", "coach", "ferry")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_START = np.datetime64("2024-01-01T00:00:00", "us")  # a Monday
_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class TripData:
    """Generated trips and the planted truth per combination.

    ``trips`` has one row per trip; ``truth`` has one row per
    (route, hour_band, vehicle_type) with ``shape`` (0, 1, 2), ``shape_name``
    and ``n_rows`` (how many trips the combination got).
    """

    trips: pl.DataFrame
    truth: pl.DataFrame
    columns: tuple[str, ...] = field(default=("route", "hour_band", "vehicle_type"))

    @property
    def combination_columns(self) -> list[str]:
        """The attributes that determine the shape.

        Example:
            >>> make_trips(n_rows=500).combination_columns
            ['route', 'hour_band', 'vehicle_type']
            >>> make_trips(n_rows=500, scenario="delivery").combination_columns
            ['zone', 'hour_band', 'vehicle_type', 'day_type']
        """
        return list(self.columns)


def _hour_band_names(n: int) -> list[str]:
    if n == 4:
        return list(_HOUR_BANDS_4)
    width = 24 / n
    return [f"h{round(i * width):02d}-{round((i + 1) * width):02d}" for i in range(n)]


def _shape_table(n_routes: int, n_hour_bands: int, n_vehicles: int) -> np.ndarray:
    """Shape id per (route, hour_band, vehicle) index, the rare route last."""
    r = np.arange(n_routes + 1)[:, None, None]
    h = np.arange(n_hour_bands)[None, :, None]
    table = np.broadcast_to((r + h) % 3, (n_routes + 1, n_hour_bands, n_vehicles)).copy()
    tram = min(2, n_vehicles - 1)
    table[:, 0, tram] = 0
    return table.astype(np.int8)


def _draw_durations(shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one duration per row from its planted shape (vectorised per shape)."""
    n = shape.shape[0]
    out = np.empty(n, dtype=np.float64)
    m0 = shape == 0
    out[m0] = rng.lognormal(mean=np.log(12.0), sigma=0.12, size=int(m0.sum()))
    m1 = shape == 1
    out[m1] = 8.0 + rng.gamma(shape=2.0, scale=13.5, size=int(m1.sum()))
    m2 = shape == 2
    k = int(m2.sum())
    upper = rng.random(k) < 0.5
    out[m2] = np.where(upper, rng.normal(45.0, 3.5, size=k), rng.normal(15.0, 2.0, size=k))
    return out


def make_trips(
    *,
    n_rows: int = 60_000,
    seed: int = 0,
    n_routes: int = 8,
    n_hour_bands: int = 4,
    n_vehicles: int = 3,
    n_days: int = 56,
    rare_share: float = 0.002,
    jitter: float = 0.04,
    scenario: str = "transit",
    n_zones: int = 6,
    outlier_share: float = 0.001,
) -> TripData:
    """Generate ``n_rows`` trips whose duration shape is planted per combination.

    Vectorised throughout: a million rows take about half a second.

    Example:
        >>> data = make_trips(n_rows=1_000, seed=0)
        >>> data.trips.height, sorted(data.truth["shape"].unique().to_list())
        (1000, [0, 1, 2])
    """
    if n_rows < 1:
        raise DataError(f"n_rows={n_rows} is too small", fix="ask for at least one row")
    if scenario == "delivery":
        return _make_deliveries(
            n_rows=n_rows,
            seed=seed,
            n_zones=n_zones,
            n_days=n_days,
            jitter=jitter,
            outlier_share=outlier_share,
        )
    if scenario == "city":
        return _make_city(
            n_rows=n_rows, seed=seed, n_days=n_days, jitter=jitter, outlier_share=outlier_share
        )
    if scenario != "transit":
        raise DataError(
            f"unknown trips scenario {scenario!r}",
            fix="set source.options.scenario to transit, delivery or city",
        )
    if n_routes < 1 or n_hour_bands < 1 or not 1 <= n_vehicles <= len(_VEHICLES):
        raise DataError(
            f"n_routes={n_routes}, n_hour_bands={n_hour_bands}, n_vehicles={n_vehicles} are out of range",
            fix=f"use n_routes >= 1, n_hour_bands >= 1 and 1 <= n_vehicles <= {len(_VEHICLES)}",
        )
    if not 0.0 <= rare_share < 1.0:
        raise DataError(f"rare_share={rare_share} is not in [0, 1)", fix="use e.g. 0.002")
    rng = np.random.default_rng(seed)
    route_names = [f"R{i + 1:02d}" for i in range(n_routes)] + ["RX"]
    band_names = _hour_band_names(n_hour_bands)
    vehicle_names = list(_VEHICLES[:n_vehicles])

    rare = rng.random(n_rows) < rare_share
    route = np.where(rare, n_routes, rng.integers(0, n_routes, n_rows))
    band = rng.integers(0, n_hour_bands, n_rows)
    vehicle = rng.integers(0, n_vehicles, n_rows)

    table = _shape_table(n_routes, n_hour_bands, n_vehicles)
    scale = np.exp(rng.normal(0.0, jitter, size=table.shape))
    shape = table[route, band, vehicle]
    duration = _draw_durations(shape, rng) * scale[route, band, vehicle]
    duration = np.maximum(duration, 1.0)

    day = rng.integers(0, n_days, n_rows)
    band_us = _DAY_US / n_hour_bands
    offset = day * _DAY_US + ((band + rng.random(n_rows)) * band_us).astype(np.int64)
    order = np.argsort(offset, kind="stable")

    def names(idx: np.ndarray, levels: list[str] | tuple[str, ...]) -> pl.Series:
        return pl.Series(list(levels), dtype=pl.String).gather(idx[order])

    trips = pl.DataFrame(
        {
            "trip_id": np.arange(1, n_rows + 1, dtype=np.int64),
            "started_at": _START + offset[order].astype("timedelta64[us]"),
            "route": names(route, route_names),
            "hour_band": names(band, band_names),
            "vehicle_type": names(vehicle, vehicle_names),
            "weekday": names(day % 7, _WEEKDAYS),
            "duration_min": duration[order],
        },
        schema={
            "trip_id": pl.Int64,
            "started_at": pl.Datetime("us"),
            "route": pl.String,
            "hour_band": pl.String,
            "vehicle_type": pl.String,
            "weekday": pl.String,
            "duration_min": pl.Float64,
        },
    )

    r_idx, h_idx, v_idx = np.meshgrid(
        np.arange(n_routes + 1), np.arange(n_hour_bands), np.arange(n_vehicles), indexing="ij"
    )
    counts = np.bincount(
        (route * n_hour_bands + band) * n_vehicles + vehicle, minlength=table.size
    ).reshape(table.shape)
    truth = pl.DataFrame(
        {
            "route": np.asarray(route_names, dtype=object)[r_idx.ravel()],
            "hour_band": np.asarray(band_names, dtype=object)[h_idx.ravel()],
            "vehicle_type": np.asarray(vehicle_names, dtype=object)[v_idx.ravel()],
            "shape": table.ravel().astype(np.int64),
            "shape_name": np.asarray(SHAPE_NAMES, dtype=object)[table.ravel()],
            "n_rows": counts.ravel().astype(np.int64),
        },
        schema={
            "route": pl.String,
            "hour_band": pl.String,
            "vehicle_type": pl.String,
            "shape": pl.Int64,
            "shape_name": pl.String,
            "n_rows": pl.Int64,
        },
    )
    return TripData(trips=trips, truth=truth)


def _draw_deliveries(shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One duration per row from its planted delivery shape (vectorised per shape)."""
    out = np.empty(shape.shape[0], dtype=np.float64)
    for sid, draw in enumerate(
        (
            lambda k: rng.lognormal(np.log(10.0), 0.2, k),
            lambda k: rng.lognormal(np.log(22.0), 0.2, k),
            lambda k: 10.0 + rng.gamma(3.0, 15.0, k),
            lambda k: rng.normal(150.0, 15.0, k),
            lambda k: np.where(
                rng.random(k) < 0.5, rng.normal(100.0, 8.0, k), rng.normal(220.0, 15.0, k)
            ),
        )
    ):
        mask = shape == sid
        out[mask] = np.asarray(draw(int(mask.sum())), dtype=np.float64)
    return out


def _make_deliveries(
    *, n_rows: int, seed: int, n_zones: int, n_days: int, jitter: float, outlier_share: float
) -> TripData:
    """The ``delivery`` scenario of :func:`make_trips` (five shapes of different scales)."""
    if not 1 <= n_zones <= len(_ZONES):
        raise DataError(
            f"n_zones={n_zones} is out of range", fix=f"use 1 <= n_zones <= {len(_ZONES)}"
        )
    rng = np.random.default_rng(seed)
    bands = list(_HOUR_BANDS_4)
    zone = rng.integers(0, n_zones, n_rows)
    band = rng.integers(0, len(bands), n_rows)
    vehicle = rng.integers(0, len(_DELIVERY_VEHICLES), n_rows)
    day = rng.integers(0, n_days, n_rows)
    weekend = (day % 7 >= 5).astype(np.int64)
    # shape: the vehicle (0..3), trucks at the weekend bimodal (4)
    table = np.broadcast_to(
        np.arange(len(_DELIVERY_VEHICLES))[None, None, :, None],
        (n_zones, len(bands), len(_DELIVERY_VEHICLES), 2),
    ).copy()
    table[:, :, 3, 1] = 4
    scale = np.exp(rng.normal(0.0, jitter, size=table.shape))
    shape = table[zone, band, vehicle, weekend]
    duration = _draw_deliveries(shape, rng) * scale[zone, band, vehicle, weekend]
    stuck = rng.random(n_rows) < outlier_share
    duration = np.where(stuck, duration * 20.0, np.maximum(duration, 1.0))
    band_us = _DAY_US / len(bands)
    offset = day * _DAY_US + ((band + rng.random(n_rows)) * band_us).astype(np.int64)
    order = np.argsort(offset, kind="stable")

    def names(idx: np.ndarray, levels: tuple[str, ...] | list[str]) -> pl.Series:
        return pl.Series(list(levels), dtype=pl.String).gather(idx[order])

    trips = pl.DataFrame(
        {
            "trip_id": np.arange(1, n_rows + 1, dtype=np.int64),
            "started_at": pl.Series(_START + offset[order].astype("timedelta64[us]")),
            "zone": names(zone, _ZONES[:n_zones]),
            "hour_band": names(band, bands),
            "vehicle_type": names(vehicle, _DELIVERY_VEHICLES),
            "day_type": names(weekend, ("weekday", "weekend")),
            "duration_min": duration[order],
        }
    )
    z, h, v, w = (a.ravel() for a in np.indices(table.shape))
    counts = np.bincount(
        np.ravel_multi_index((zone, band, vehicle, weekend), table.shape), minlength=table.size
    )
    truth = pl.DataFrame(
        {
            "zone": np.asarray(_ZONES, dtype=object)[z],
            "hour_band": np.asarray(bands, dtype=object)[h],
            "vehicle_type": np.asarray(_DELIVERY_VEHICLES, dtype=object)[v],
            "day_type": np.asarray(["weekday", "weekend"], dtype=object)[w],
            "shape": table.ravel().astype(np.int64),
            "shape_name": np.asarray(DELIVERY_SHAPE_NAMES, dtype=object)[table.ravel()],
            "n_rows": counts.astype(np.int64),
        },
        schema={
            "zone": pl.String,
            "hour_band": pl.String,
            "vehicle_type": pl.String,
            "day_type": pl.String,
            "shape": pl.Int64,
            "shape_name": pl.String,
            "n_rows": pl.Int64,
        },
    )
    return TripData(
        trips=trips, truth=truth, columns=("zone", "hour_band", "vehicle_type", "day_type")
    )


_CITY_BANDS = ("night", "morning", "midday", "evening")
_CITY_VEHICLES = ("bus", "tram", "minibus")
_CITY_FERRY_SHARE = 0.0115
"""Share of the rows on the three ferry routes (9 combinations): ~460 of 40,000."""


def _draw_city(shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One duration per row from its planted city shape (vectorised per shape)."""
    out = np.empty(shape.shape[0], dtype=np.float64)
    for sid, draw in enumerate(
        (
            lambda k: rng.lognormal(np.log(14.0), 0.12, k),
            lambda k: 6.0 + rng.gamma(2.0, 7.0, k),
            lambda k: rng.normal(38.0, 5.0, k),
            lambda k: rng.lognormal(np.log(70.0), 0.2, k),
            lambda k: np.where(
                rng.random(k) < 0.5, rng.normal(18.0, 2.0, k), rng.normal(42.0, 3.0, k)
            ),
        )
    ):
        mask = shape == sid
        out[mask] = np.asarray(draw(int(mask.sum())), dtype=np.float64)
    return out


def _city_table(n_regular: int) -> np.ndarray:
    """Shape id per (route, band, vehicle); -1 where no service runs (ferries: night, tram, minibus)."""
    table = np.empty((n_regular + 3, len(_CITY_BANDS), len(_CITY_VEHICLES)), dtype=np.int64)
    base = np.arange(n_regular) % 4
    table[:n_regular] = base[:, None, None]
    minibus = _CITY_VEHICLES.index("minibus")
    table[:n_regular, :, minibus] = np.where(base == 3, 3, 1)[:, None]
    table[n_regular:] = -1
    table[n_regular:, 1:, _CITY_VEHICLES.index("bus")] = 4
    return table


def _make_city(
    *, n_rows: int, seed: int, n_days: int, jitter: float, outlier_share: float
) -> TripData:
    """The ``city`` scenario of :func:`make_trips` (five shapes, one small and bimodal)."""
    rng = np.random.default_rng(seed)
    n_regular = 12
    routes = [f"R{i + 1:02d}" for i in range(n_regular)] + ["F1", "F2", "F3"]
    table = _city_table(n_regular)
    # days: weekdays busier, 4% of the days missing (outages)
    days = np.arange(n_days)
    weekend_day = days % 7 >= 5
    live = rng.random(n_days) >= 0.04
    weight = np.where(weekend_day, 0.7, 1.2) * live
    day = rng.choice(days, size=n_rows, p=weight / weight.sum())
    # combinations: Zipf-popular regular routes, ferries a fixed small share
    ferry = rng.random(n_rows) < _CITY_FERRY_SHARE
    popularity = 1.0 / np.arange(1, n_regular + 1) ** 0.8
    route = np.where(
        ferry,
        n_regular + rng.integers(0, 3, n_rows),
        rng.choice(n_regular, size=n_rows, p=popularity / popularity.sum()),
    )
    band_p = np.array([0.1, 0.35, 0.25, 0.3])
    band = np.where(
        ferry, 1 + rng.integers(0, 3, n_rows), rng.choice(len(_CITY_BANDS), n_rows, p=band_p)
    )
    vehicle = np.where(ferry, 0, rng.integers(0, len(_CITY_VEHICLES), n_rows))
    # a sensor fault: route R03 reports nothing for ten days
    fault = (route == 2) & (day >= n_days // 3) & (day < n_days // 3 + 10)
    keep = ~fault
    route, band, vehicle, day = route[keep], band[keep], vehicle[keep], day[keep]
    n = route.size
    shape = table[route, band, vehicle]
    scale = np.exp(rng.normal(0.0, jitter, size=table.shape))[route, band, vehicle]
    calendar = np.where(day % 7 >= 5, 0.92, 1.0) * (1.0 + 0.04 * np.sin(2 * np.pi * day / 365))
    duration = _draw_city(shape, rng) * scale * calendar
    u = rng.random(n)
    duration = np.where(u < outlier_share, duration * rng.uniform(5.0, 20.0, n), duration)
    duration = np.where(
        (u >= outlier_share) & (u < 2 * outlier_share), rng.uniform(0.1, 1.0, n), duration
    )
    duration = np.maximum(duration, 0.1)
    band_us = _DAY_US / len(_CITY_BANDS)
    offset = day * _DAY_US + ((band + rng.random(n)) * band_us).astype(np.int64)
    order = np.argsort(offset, kind="stable")

    def names(idx: np.ndarray, levels: tuple[str, ...] | list[str]) -> pl.Series:
        return pl.Series(list(levels), dtype=pl.String).gather(idx[order])

    trips = pl.DataFrame(
        {
            "trip_id": np.arange(1, n + 1, dtype=np.int64),
            "started_at": pl.Series(_START + offset[order].astype("timedelta64[us]")),
            "route": names(route, routes),
            "hour_band": names(band, _CITY_BANDS),
            "vehicle_type": names(vehicle, _CITY_VEHICLES),
            "weekday": names(day % 7, _WEEKDAYS),
            "duration_min": duration[order],
        }
    )
    r, h, v = (a.ravel() for a in np.indices(table.shape))
    counts = np.bincount(
        np.ravel_multi_index((route, band, vehicle), table.shape), minlength=table.size
    )
    served = table.ravel() >= 0
    truth = pl.DataFrame(
        {
            "route": np.asarray(routes, dtype=object)[r[served]],
            "hour_band": np.asarray(_CITY_BANDS, dtype=object)[h[served]],
            "vehicle_type": np.asarray(_CITY_VEHICLES, dtype=object)[v[served]],
            "shape": table.ravel()[served],
            "shape_name": np.asarray(CITY_SHAPE_NAMES, dtype=object)[table.ravel()[served]],
            "n_rows": counts[served].astype(np.int64),
        },
        schema={
            "route": pl.String,
            "hour_band": pl.String,
            "vehicle_type": pl.String,
            "shape": pl.Int64,
            "shape_name": pl.String,
            "n_rows": pl.Int64,
        },
    )
    return TripData(trips=trips, truth=truth)
