"""The UI's Fleet page on 1,000 devices × 2,000 points: time from the click to fingerprints and
groups shown, and the time to show them again from the cache (the issue's targets: 15 s, 1 s).

Driven with Streamlit's AppTest (the page's own script, the session's data preset as the
Data page stores it); the numba kernels are compiled once before timing. There is no peer
app to compare with, so the figures are reported against the targets.

    python benchmarks/ui_fleet_page.py [--devices 1000] [--points 2000]
"""

from __future__ import annotations

import argparse
import time

from streamlit.testing.v1 import AppTest

from opslens.features.fingerprints import fleet_fingerprints
from opslens.synthetic.fleet import make_fleet
from opslens.ui.state import DATA, LoadedData

#: the fleet recipe's own page (``opslens.recipes.fleet.pages.fleet``), run as the app runs it
PAGE = "from opslens.recipes.fleet.pages.fleet import render\nrender()\n"
METRICS = ["temperature", "vibration", "current"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--points", type=int, default=2000)
    args = parser.parse_args()
    readings = make_fleet(seed=0, n_devices=args.devices, n_points=args.points).readings
    fleet_fingerprints(readings.head(5000), entity="device_id", time="timestamp", metrics=METRICS)
    at = AppTest.from_string(PAGE, default_timeout=600)
    at.session_state[DATA] = LoadedData(
        readings, "device_id", "timestamp", METRICS, f"{args.devices} devices"
    )
    at.run()
    t0 = time.perf_counter()
    at.button(key="compute_fleet").click().run()
    first = time.perf_counter() - t0
    assert not at.exception, at.exception
    shown = {m.label: m.value for m in at.metric}
    t0 = time.perf_counter()
    at.run()
    again = time.perf_counter() - t0
    print(
        f"Fleet page, {args.devices} devices x {args.points} points: fingerprints and groups shown "
        f"{first:.1f} s after the click; shown again from the cache in {again:.2f} s "
        f"(devices={shown.get('devices')}, rare devices={shown.get('rare devices')})"
    )
    print(
        f"targets: <= 15 s -> {'met' if first <= 15 else 'MISSED'}; "
        f"<= 1 s -> {'met' if again <= 1 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
