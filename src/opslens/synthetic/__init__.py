"""Bundled deterministic generators, one per domain, by name (``source: {kind: synthetic}``).

Each generator takes ``seed`` and keyword options and returns the frame an
analysis reads; its module also returns the planted truth for tests.

Example:
    >>> generate("trips", seed=0, options={"n_rows": 500}).height
    500
    >>> {"fleet", "trips", "turbines"} <= set(GENERATORS)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from opslens.errors import ConfigError, DataError

__all__ = ["GENERATORS", "generate"]


def _trips(seed: int, **options: Any) -> pl.DataFrame:
    from opslens.synthetic.trips import make_trips

    return make_trips(seed=seed, **options).trips


def _fleet(seed: int, **options: Any) -> pl.DataFrame:
    from opslens.synthetic.fleet import make_fleet

    return make_fleet(seed=seed, **options).readings


def _turbines(seed: int, **options: Any) -> pl.DataFrame:
    from opslens.synthetic.turbines import make_turbines

    return make_turbines(seed=seed, **options).readings


def _patients(seed: int, **options: Any) -> pl.DataFrame:
    from opslens.synthetic.patients import make_patients

    return make_patients(seed=seed, **options).frame


def _axes(seed: int, **options: Any) -> pl.DataFrame:
    from opslens.synthetic.axes import make_axes

    return make_axes(seed=seed, **options).frame


def _pump(seed: int, **options: Any) -> pl.DataFrame:
    from opslens.synthetic.pump import make_pump

    return make_pump(seed=seed, **options).frame


GENERATORS: dict[str, Callable[..., pl.DataFrame]] = {
    "trips": _trips,
    "axes": _axes,
    "pump": _pump,
    "fleet": _fleet,
    "turbines": _turbines,
    "patients": _patients,
    "clickstream": lambda seed, **o: __import__(  # lazy, like the others
        "opslens.synthetic.clickstream", fromlist=["clickstream_frame"]
    ).clickstream_frame(seed, **o),
}


def generate(name: str, *, seed: int = 0, options: Mapping[str, Any] | None = None) -> pl.DataFrame:
    """The frame of generator ``name``; ConfigError for an unknown name or option."""
    make = GENERATORS.get(name)
    if make is None:
        raise ConfigError(
            f"there is no synthetic generator '{name}'",
            fix=f"set source.generator to one of: {', '.join(GENERATORS)}",
        )
    try:
        return make(seed, **dict(options or {}))
    except TypeError as e:
        raise DataError(
            f"source.options for the synthetic {name} generator are invalid: {e}",
            fix="use only the generator's documented keyword arguments",
        ) from None
