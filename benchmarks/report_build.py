"""How long report.html takes to build, and how large it is, for a run with 30+ plots.

A fleet run whose `inspect` stage draws the series of 26 devices (one or two figures each)
plus the fleet figures gives 30 or more plots; the report is written with the template
narrator several times and the median is printed with the file's size, against the
issue's targets (under 5 s, under 10 MB). There is no peer tool that writes this
report, so the figures are reported against the targets only.

    python benchmarks/report_build.py [--devices 120] [--points 600] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import opslens
from opslens.synthetic.fleet import make_fleet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=120)
    parser.add_argument("--points", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    readings = make_fleet(seed=0, n_devices=args.devices, n_points=args.points).readings
    with tempfile.TemporaryDirectory() as tmp:
        result = opslens.run(
            readings,
            recipe="fleet",
            name="report-bench",
            runs_dir=Path(tmp) / "runs",
            columns={
                "entity": "device_id",
                "time": "timestamp",
                "metrics": ["temperature", "vibration", "current"],
            },
            params={"inspect_top": 26, "rare": {"top_n": 30}},
        )
        n_plots = len(result.view.plots())
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            path = opslens.write_report(result)
            times.append(time.perf_counter() - t0)
        size_mb = path.stat().st_size / 1e6
    median = statistics.median(times)
    print(
        f"report with {n_plots} plots: median {median:.2f} s over {args.repeat} builds "
        f"(min {min(times):.2f}, max {max(times):.2f}); {size_mb:.1f} MB"
    )
    print(
        f"targets: < 5 s -> {'met' if median < 5 else 'MISSED'}; < 10 MB -> {'met' if size_mb < 10 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
