"""A cold CLI: CPU time of ``opslens --help`` and ``opslens runs`` in a fresh interpreter.

Each command runs as a child process; its CPU time is user + system from
``resource.getrusage(RUSAGE_CHILDREN)`` taken around it (the interpreter's start-up
included, as a user pays it). ``runs`` lists a demo project with a few runs: the
distribution demo's ``project.yaml`` (MLflow tracking on, as ``make demo`` writes it) on
6,000 generated trips, trained three times in a scratch folder before the timing (or
``--project``: a project folder of your own that has runs).

The peer (``--peer-src``, e.g. the ``src`` folder of a checkout of the previous version)
runs the same commands interleaved with this checkout's in each of 3 rounds; the figures
are medians of 3 with min-max, and the ratio ours/peer. Target: <= 0.25 s each.

On a shared machine the same command's CPU time varies by a quarter from run to run;
``--instructions`` also counts each command's instructions once with
``valgrind --tool=callgrind`` (the same count whatever else the machine runs), ours and
the peer's, and prints their ratio.

Run: ``.venv/bin/python benchmarks/cold_cli.py [--peer-src ../main/src] [--project DIR]
[--instructions]``
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "src"
DEMO = HERE / "opslens" / "recipes" / "distribution" / "demo" / "project.yaml"
TARGET = 0.25
CALLGRIND = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")


def _cpu(args: list[str], src: Path, cwd: Path) -> float:
    """User + system CPU seconds of one child running ``python -m opslens <args>``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode cached
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "opslens", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"opslens {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _instructions(args: list[str], src: Path, cwd: Path) -> int:
    """Instructions one child running ``python -m opslens <args>`` executes (callgrind)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(
        [*CALLGRIND, sys.executable, "-m", "opslens", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind on opslens {' '.join(args)} failed: {done.stderr[-500:]}")
    return int(found.group(1))


def _demo_project(folder: Path, runs: int) -> Path:
    text = DEMO.read_text(encoding="utf-8").replace("n_rows: 60000", "n_rows: 6000")
    (folder / "project.yaml").write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    for _ in range(runs):
        subprocess.run(
            [sys.executable, "-m", "opslens", "-q", "run", "project.yaml"],
            cwd=folder,
            env=env,
            check=True,
            capture_output=True,
        )
    return folder


def _line(name: str, values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s ({min(values):.3f}–{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peer-src", type=Path, help="the src folder of the version to compare")
    parser.add_argument("--project", type=Path, help="a project folder with runs (default: demo)")
    parser.add_argument("--runs", type=int, default=3, help="demo runs to list")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions (valgrind)"
    )
    args = parser.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install -y valgrind)")
    with tempfile.TemporaryDirectory(prefix="opslens-cold-") as tmp:
        project = args.project or _demo_project(Path(tmp), args.runs)
        commands = {"--help": ["--help"], "runs": ["runs", "-p", "project.yaml"]}
        sources = {"ours": HERE, **({"peer": args.peer_src.resolve()} if args.peer_src else {})}
        for src in sources.values():  # warm the bytecode caches: cold means a new process
            for command in commands.values():
                _cpu(command, src, project)
        times = {(s, c): [] for s in sources for c in commands}
        for _ in range(3):
            for command, argv in commands.items():
                for name, src in sources.items():
                    times[(name, command)].append(_cpu(argv, src, project))
        counts = {
            (name, command): _instructions(argv, src, project)
            for command, argv in commands.items()
            for name, src in sources.items()
            if args.instructions
        }
    print("CPU seconds (user + system) of one cold command, medians of 3 (min–max)")
    for command in commands:
        ours = times[("ours", command)]
        line = f"opslens {command:<7} ours {_line(command, ours)}"
        if "peer" in sources:
            peer = times[("peer", command)]
            ratio = statistics.median(ours) / statistics.median(peer)
            line += f"; peer {_line(command, peer)}; ours/peer {ratio:.2f}x"
        verdict = "meets" if statistics.median(ours) <= TARGET else "misses"
        print(f"{line}; {verdict} the {TARGET} s target")
    for command in commands if counts else ():
        line = f"opslens {command:<7} instructions: ours {counts[('ours', command)] / 1e6:,.0f} M"
        if "peer" in sources:
            peer_count = counts[("peer", command)]
            ratio = counts[("ours", command)] / peer_count
            line += f"; peer {peer_count / 1e6:,.0f} M; ours/peer {ratio:.2f}x"
        print(line)


if __name__ == "__main__":
    main()
