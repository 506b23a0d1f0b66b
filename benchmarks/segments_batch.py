"""process_batch throughput (validation + assignment + both targets' predictions + metrics) of
today's code against the code before the global model was added to every segment's choice
(``--peer``, a git revision; default ``b2db443``), timed interleaved in one run.

Each side runs in its own worker process (the peer from ``git archive`` of that revision on
``PYTHONPATH``), trains once on 20,000 synthetic patient-days (default params) and then
scores the same batches (10k and 100k rows, seeds fixed) when asked: the sides take turns,
three rounds, and the medians (min–max) and the ratio are printed. A naive loop over
``predict_one`` (2,000 rows, today's code) is printed once for scale.

    python benchmarks/segments_batch.py [--sizes 10000,100000] [--peer b2db443] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = r"""
import json, sys, time
import opslens
from opslens.recipes.segments import SegmentPipeline, SegmentPredictor, SegmentsParams
from opslens.synthetic.patients import FEATURES, make_patient_batches, make_patients

config = {"model_features": ["score_lag1", "score_lag2"], "monitor": {"noise_threshold": 1.0}}
if sys.argv[2] != "-":
    config["model_choice"] = {"mode": sys.argv[2]}
params = SegmentsParams.model_validate(config)
train = make_patients(20_000, seed=0).frame
t0 = time.perf_counter()
pipe = SegmentPipeline(
    params, features=list(FEATURES), categorical=["ward"], series_target="next_score"
).fit(train, train["next_score"], train["resource_hours"])
fit_s = time.perf_counter() - t0
pipe.update_thresholds(alert={"memory_usage": 1e12, "processing_time": 1e9})
choices = {}
reg = pipe.model_.series
if hasattr(reg, "choices_"):
    for name, r in (("series", pipe.model_.series), ("resource", pipe.model_.resource)):
        choices[name] = {str(s): c["choice"] for s, c in r.choices_.items()}
naive = None
if sys.argv[1] == "ours" and sys.argv[2] == "-":
    rows = make_patient_batches(1, 2_000, seed=5)[0].frame.to_dicts()
    predictor = SegmentPredictor(pipe.model_)
    t0 = time.perf_counter()
    for row in rows:
        predictor.predict_one(row)
    naive = len(rows) / (time.perf_counter() - t0)
batches = {}
print(json.dumps({"ready": True, "file": opslens.__file__, "fit_s": fit_s, "naive": naive,
                  "choices": choices}), flush=True)
for line in sys.stdin:
    n = int(line)
    if n not in batches:
        batches[n] = make_patient_batches(1, n, seed=6)[0].frame.drop("next_score", "resource_hours")
    t0 = time.perf_counter()
    r = pipe.process_batch(batches[n], auto_retrain=False)
    s = time.perf_counter() - t0
    print(json.dumps({"n": n, "s": s, "noise": r.record["noise_ratio"],
                      "rss": r.record["peak_memory_mb"]}), flush=True)
"""


def _peer_src(revision: str, folder: Path) -> Path:
    """The ``src`` tree of ``revision`` extracted into ``folder``."""
    blob = subprocess.run(
        ["git", "archive", revision, "src"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


class Worker:
    """A process that trained once and times ``process_batch`` on request."""

    def __init__(self, side: str, pythonpath: Path | None, mode: str = "-") -> None:
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        if pythonpath is not None:
            env["PYTHONPATH"] = str(pythonpath)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, side, mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.info = self._read()

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        return dict(json.loads(self.proc.stdout.readline()))

    def time(self, n: int) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--peer", default="b2db443")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        workers = {"peer": Worker("peer", _peer_src(args.peer, Path(tmp)))}
        workers["ours"] = Worker("ours", None)  # the default: chosen per segment
        # the worst case: every row answered by the global model plus a correction
        workers["ours-blend"] = Worker("ours", None, "blend")
    for name, w in workers.items():
        print(f"{name}: {w.info['file']}, fit {w.info['fit_s']:.1f} s {w.info['choices'] or ''}")
    print(f"naive per-row loop (predict_one, ours): {workers['ours'].info['naive']:,.0f} rows/s")
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for n in sizes:
            for name, w in workers.items():
                times.setdefault((name, n), []).append(w.time(n)["s"])
    for n in sizes:
        med = {}
        print(f"process_batch {n:,} rows:")
        for name in workers:
            t = times[(name, n)]
            med[name] = statistics.median(t)
            ratio = "" if name == "peer" else f", {med['peer'] / med[name]:.2f}x the peer"
            print(
                f"  {name:<10} {n / med[name]:>9,.0f} rows/s (median of {len(t)}, "
                f"{n / max(t):,.0f}–{n / min(t):,.0f}){ratio}"
            )
    for w in workers.values():
        w.close()


if __name__ == "__main__":
    main()
