"""The whole fleet recipe at 1k, 3k and 10k devices × 1,000 points: wall time, peak memory, growth.

    python benchmarks/fleet_scaling.py [--devices 1000 3000 10000] [--points 1000]

Each size runs in a fresh process (tracking off) on a synthetic fleet with three
metrics, planted groups and 4% failing devices (failure list with dates, so the
lead-time stage runs too). Growth is the wall time per device relative to the
smallest size: near 1.0 means linear cost.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import run_recipe

PROJECT = """
tracking: {enabled: false}
analyses:
  - name: fleet
    recipe: fleet
    source: {kind: file, path: readings.parquet}
    columns: {entity: device_id, time: timestamp, metrics: [temperature, vibration, current]}
    params:
      failures: {path: failures.csv}
      lead_time: {window: 7d, step: 1d, horizon: 14d, top_k: 50}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--points", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    for n in args.devices:
        writer = (
            "import polars as pl\n"
            "from opslens.synthetic.fleet import make_fleet\n"
            f"d = make_fleet(n_devices={n}, n_points={args.points}, n_failing={max(3, n // 25)}, seed=0)\n"
            "d.readings.write_parquet(folder / 'readings.parquet')\n"
            "d.truth.filter(pl.col('failed')).select('device_id', 'failure_time').write_csv(folder / 'failures.csv')\n"
        )
        result = run_recipe(PROJECT, "fleet", writer)
        rows.append((n, result))
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in result["stages"].items())  # type: ignore[union-attr]
        print(
            f"{n:>6} devices: wall {result['wall_s']:.1f} s, peak {result['peak_mb']:.0f} MB  ({stages})",
            flush=True,
        )
    base_n, base = rows[0]
    print("\ndevices  wall_s  peak_MB  s_per_1k_devices  growth_vs_smallest")
    for n, r in rows:
        per = float(r["wall_s"]) / n * 1000  # type: ignore[arg-type]
        growth = per / (float(base["wall_s"]) / base_n * 1000)  # type: ignore[arg-type]
        print(f"{n:>7}  {r['wall_s']:>6.1f}  {r['peak_mb']:>7.0f}  {per:>16.2f}  {growth:>18.2f}")


if __name__ == "__main__":
    main()
