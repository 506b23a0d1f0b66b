"""Batch run of the distribution recipe on 1,000,000 rows with 4 categoricals: wall time and peak memory.

    python benchmarks/distribution_batch.py [--rows 1000000]

The data (synthetic trips: route, hour_band, vehicle_type, weekday) is written
to Parquet first; the recipe then runs in a fresh process (tracking off) so its
peak RSS is its own. Stage timings come from the run's manifest.
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
  - name: trips
    recipe: distribution
    source: {kind: file, path: trips.parquet}
    columns: {time: started_at, target: duration_min, categorical: [route, hour_band, vehicle_type, weekday]}
    params: {min_combination_size: 30, unit: min}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    writer = (
        "from opslens.synthetic.trips import make_trips\n"
        f"make_trips(n_rows={args.rows}, seed=0).trips.write_parquet(folder / 'trips.parquet')\n"
    )
    result = run_recipe(PROJECT, "trips", writer)
    print(f"distribution batch, {args.rows:,} rows x 4 categoricals")
    print(f"  wall time: {result['wall_s']:.1f} s   peak memory: {result['peak_mb']:.0f} MB")
    print("  stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in result["stages"].items()))  # type: ignore[union-attr]
    m: dict[str, float] = result["metrics"]  # type: ignore[assignment]
    print(
        f"  K={m['k']:.0f}  combinations={m['combinations']:.0f}  "
        f"held-out log score {m['log_score']:.3f} (own histogram {m['log_score_own']:.3f}, "
        f"global {m['log_score_global']:.3f}); 90% HDR coverage {m['coverage_90']:.3f}; "
        f"classifier on unseen combinations: accuracy {m['accuracy_unseen_combinations']:.3f}"
    )


if __name__ == "__main__":
    main()
