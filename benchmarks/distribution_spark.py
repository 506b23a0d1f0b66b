"""The distribution recipe with ``engine: spark`` on a loopback cluster: the driver's memory
and time, against the local engine on the same file.

    python benchmarks/distribution_spark.py [--rows 5000000 20000000]
        [--engine spark|local] [--master cluster|local[2]|spark://h:p]

Trips of three planted duration shapes (opslens.synthetic.trips, 8 routes × 4 hour bands
× 3 vehicle types) are written as one Parquet file by another process, so the driver
never holds them. With ``engine: spark`` the executors read, check, label and filter the
rows, count the histograms and write the prepared rows; the driver holds counts and the
rows of ``params.max_rows`` (2,000,000 by default: a seeded uniform sample beyond it).
Per size, a fresh run (tracking off) reports the wall time, the driver Python's peak
(VmHWM) and per stage, the driver JVM's peak RSS and each worker's executors, sampled
every 0.5 s from outside — as benchmarks/fleet_spark.py does (the same options).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from fleet_spark import arguments, measure, report

PROJECT = """
engine: {engine}
spark: {spark}
tracking: {{enabled: false}}
analyses:
  - name: trips
    recipe: distribution
    source: {{kind: file, path: {path}}}
    columns: {{time: started_at, target: duration_min, categorical: [route, hour_band, vehicle_type]}}
    params: {{min_combination_size: 30, unit: min, support: [0, null]}}
"""

WRITER = """
import sys
from opslens.synthetic.trips import make_trips
folder, rows = sys.argv[1], int(sys.argv[2])
make_trips(n_rows=rows, seed=0).trips.write_parquet(f"{folder}/trips.parquet", row_group_size=500_000)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[5_000_000, 20_000_000])
    args = arguments(parser)
    for rows in args.rows:

        def write(folder: Path, rows: int = rows) -> None:
            subprocess.run([sys.executable, "-c", WRITER, str(folder), str(rows)], check=True)

        def project(folder: Path, spark: str) -> str:
            return PROJECT.format(engine=args.engine, spark=spark, path=folder / "trips.parquet")

        where = f"spark at {args.master}" if args.engine == "spark" else "local"
        report(f"{rows:,} trips, engine {where}", measure(write, project, "trips", args))


if __name__ == "__main__":
    main()
