"""The fleet recipe's rare ranking at 10,000 devices: this checkout against an earlier revision.

    python benchmarks/fleet_same_answers.py [REV] [--devices 10000]

REV (default 4e9f507, the last revision before the 100k-device work: full
recomputation per lead-time checkpoint, unsampled Ward) is checked out into a
temporary git worktree and run with this venv on the same fleet and project as
``fleet_scaling.py``; both committed runs' ``rare_scores`` tables (every device's
score from every detector, and the combined rank) are compared exactly, and the
wall time of each run is printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from fleet_scaling import PART, PROJECT, WRITER
from polars.testing import assert_frame_equal

ROOT = Path(__file__).resolve().parents[1]


def run(folder: Path, src: Path, runs: str) -> tuple[pl.DataFrame, float]:
    """`opslens run` with the package at ``src``; the run's rare_scores table and wall time."""
    project = folder / f"{runs}.yaml"
    project.write_text(
        PROJECT.replace(
            "tracking: {enabled: false}", f"tracking: {{enabled: false}}\nruns_dir: {runs}"
        )
    )
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONWARNINGS": "ignore"}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "opslens.cli", "-q", "run", str(project)],
        check=True,
        env=env,
        cwd=folder,
    )
    wall = time.perf_counter() - t0
    latest = (folder / runs / "fleet" / "latest").read_text().strip()
    tables = folder / runs / "fleet" / latest / "tables"
    fp = pl.read_parquet(tables / "fingerprints.parquet")
    print(f"{runs}: fingerprints {fp.height} x {fp.width}, row-hash sum {fp.hash_rows().sum()}")
    return pl.read_parquet(tables / "rare_scores.parquet"), wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rev", nargs="?", default="4e9f507")
    ap.add_argument("--devices", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tree = folder / "reference"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), args.rev],
            check=True,
        )
        try:
            subprocess.run(
                [sys.executable, "-c", WRITER, tmp, str(args.devices), "1000", str(PART)],
                check=True,
            )
            ours, t_ours = run(folder, ROOT / "src", "ours")
            theirs, t_theirs = run(folder, tree / "src", "reference")
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True
            )
    print(f"devices={args.devices:,}: this checkout {t_ours:.1f} s, {args.rev} {t_theirs:.1f} s")
    key = ours.columns[0]
    ours, theirs = ours.sort(key), theirs.sort(key)
    for col in ours.columns[1:]:
        a, b = ours[col], theirs[col]
        same = a.equals(b)
        diff = "" if same or not a.dtype.is_numeric() else f", max |diff| {(a - b).abs().max():.3g}"
        print(f"  {col}: {'identical' if same else 'differs'}{diff}")
    top = (
        [set(f.sort("rank").head(50)[key]) for f in (ours, theirs)]
        if "rank" in ours.columns
        else None
    )
    if top:
        print(f"  top-50 overlap: {len(top[0] & top[1])}/50")
    assert_frame_equal(ours, theirs)
    print(f"rare_scores identical ({ours.height:,} devices, every detector's score and the rank)")


if __name__ == "__main__":
    main()
