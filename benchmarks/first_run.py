"""The first fleet run after an install against the second, with and without the warm-up.

numba keeps compiled kernels in its cache; a fresh install (or container) starts with
an empty one. For each mode, with a fresh empty ``NUMBA_CACHE_DIR``:

* cold:   nothing before the first run (what users paid before ``make``/the Docker image
          ran ``python -m opslens.features.warm``)
* warmed: ``python -m opslens.features.warm`` first, untimed (what ``make`` and the
          image build do after installing)

then ``opslens demo fleet`` twice in fresh processes, timed (CPU seconds of the child,
user + system, and wall). The modes alternate, three rounds; prints medians (min-max)
and the first/second ratio per mode (target: warmed ≤ 1.5×).

Run: ``.venv/bin/python benchmarks/first_run.py [--rounds 3]``
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _timed(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(CPU seconds of the child, wall seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(args, env=env, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cpu: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for mode in ("cold", "warmed"):
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                env = {**os.environ, "NUMBA_CACHE_DIR": str(folder / "numba")}
                if mode == "warmed":
                    _timed([sys.executable, "-m", "opslens.features.warm"], env, folder)
                for which in ("first", "second"):
                    demo = [str(BIN / "opslens"), "-q", "demo", "fleet", "--dir", f"demo-{which}"]
                    seconds, _wall = _timed(demo, env, folder)
                    cpu.setdefault((mode, which), []).append(seconds)
    for mode in ("cold", "warmed"):
        first, second = cpu[(mode, "first")], cpu[(mode, "second")]
        ratio = statistics.median(first) / statistics.median(second)
        print(
            f"{mode:>6}: first run {statistics.median(first):.1f} s CPU "
            f"({min(first):.1f}-{max(first):.1f}), second {statistics.median(second):.1f} s "
            f"({min(second):.1f}-{max(second):.1f}): first/second {ratio:.2f}x"
            + (" (target <= 1.5x)" if mode == "warmed" else "")
        )


if __name__ == "__main__":
    main()
