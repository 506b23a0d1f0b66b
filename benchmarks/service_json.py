"""The service's JSON in and out: orjson (today) against the standard library (before).

One distribution answer as the service sends it (the demo model's, with its stamp; numpy
scalars in it, as predictors return them) and one instance body as clients send it:

* out, ours:   ``dumpb`` (orjson, the stamp serialised once per version and joined)
* out, before: ``json.dumps(..., default=..., allow_nan=False).encode()`` of the whole answer
* in, ours:    ``parse`` (orjson; the depth walk only for a nested body)
* in, before:  ``json.loads`` with the non-finite hooks, then the walk of every value

Medians of 3 rounds (min-max) of 20,000 calls each, ours and before interleaved per round.

Run: ``.venv/bin/python benchmarks/service_json.py [--calls 20000]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np

from opslens.online.service.body import _finite, _NonFinite, _walk, parse
from opslens.online.service.state import _plain, dumpb

STAMP = {
    "analysis": "trip-eta",
    "recipe": "distribution",
    "version": "1",
    "alias": "champion",
    "run_id": "20261206T031213Z-f318",
}
EDGES = [8.88 + 4.02 * i for i in range(21)]
ANSWER = {
    "cluster": np.int64(1),
    "probability": np.float64(0.9978),
    "probabilities": {"0": 0.0012, "1": 0.9978, "2": 0.0010},
    "unknown": [],
    "median": 30.92,
    "hdr_50": [[14.26, 34.74]],
    "hdr_90": [[8.57, 60.96]],
    "prediction": {
        "basis": "its own combination blended with its pattern",
        "segment": "all",
        "median": 31.46,
        "hdr_50": [[11.81, 12.24], [15.44, 35.09]],
        "hdr_90": [[8.88, 66.21]],
        "edges": EDGES,
        "probabilities": [0.05] * 20,
    },
    "unknown_levels": {},
    "outside_hdr_90": None,
}
BODY = b'{"route": "R06", "hour_band": "midday", "vehicle_type": "bus"}'
HEAD = dumpb(STAMP)[:-1] + b',"answer":'


def out_ours() -> bytes:
    return HEAD + dumpb(ANSWER) + b"}"


def out_before() -> bytes:
    return json.dumps({**STAMP, "answer": ANSWER}, default=_plain, allow_nan=False).encode()


def in_ours() -> object:
    return parse(BODY)


def in_before() -> object:
    payload = json.loads(BODY, parse_constant=_NonFinite, parse_float=_finite)
    _walk(payload, 0, ())
    return payload


def _per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    assert json.loads(out_ours()) == json.loads(out_before())  # the same answer
    assert in_ours() == in_before()
    pairs = {"answer out": (out_ours, out_before), "instance in": (in_ours, in_before)}
    times: dict[str, list[float]] = {f"{k} {w}": [] for k in pairs for w in ("ours", "before")}
    for _ in range(3):
        for name, (ours, before) in pairs.items():
            times[f"{name} ours"].append(_per_call(ours, args.calls))
            times[f"{name} before"].append(_per_call(before, args.calls))
    for name in pairs:
        ours, before = times[f"{name} ours"], times[f"{name} before"]
        o, b = statistics.median(ours), statistics.median(before)
        print(
            f"{name:12s}: orjson {o * 1e6:6.1f} us ({min(ours) * 1e6:.1f}-{max(ours) * 1e6:.1f})"
            f"   standard library {b * 1e6:6.1f} us ({min(before) * 1e6:.1f}-"
            f"{max(before) * 1e6:.1f})   {b / o:5.1f}x faster"
        )


if __name__ == "__main__":
    main()
