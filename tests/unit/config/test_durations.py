"""Durations in config accept 7d, 12h, 30m, 0.5d, 90s, 2w and ISO 8601; anything else is named."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from opslens.config import Duration
from opslens.recipes.fleet.params import FleetParams

TA: TypeAdapter[timedelta] = TypeAdapter(Duration)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("30min", timedelta(minutes=30)),
        ("0.5d", timedelta(hours=12)),
        ("90s", timedelta(seconds=90)),
        ("2w", timedelta(days=14)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        (3600, timedelta(hours=1)),
    ],
)
def test_duration_forms(text: object, expected: timedelta) -> None:
    assert TA.validate_python(text) == expected


def test_lead_time_takes_short_durations_and_refuses_bad_ones() -> None:
    p = FleetParams.model_validate(
        {"lead_time": {"window": "12h", "step": "30m", "horizon": "0.5d"}}
    )
    assert (p.lead_time.window, p.lead_time.step, p.lead_time.horizon) == (
        timedelta(hours=12),
        timedelta(minutes=30),
        timedelta(hours=12),
    )
    with pytest.raises(ValidationError, match="write it as 7d, 12h, 30m"):
        FleetParams.model_validate({"lead_time": {"window": "a week"}})
    with pytest.raises(ValidationError, match="step must be a positive duration"):
        FleetParams.model_validate({"lead_time": {"step": "0h"}})
