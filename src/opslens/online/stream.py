"""Score a stream of JSON-lines instances with the latest run's model.

Each input line is one JSON object; each output line is one JSON object with
the line number, the prediction and, when plots are on, the plot's path. A
malformed line does not stop the stream: its output line carries ``error``
(one sentence) and it counts as rejected.

Example:
    >>> import io
    >>> lines = list(iter_instances(io.StringIO('{"route": "A"}\\nnot json\\n')))
    >>> lines[0], lines[1][0], type(lines[1][1]).__name__
    ((1, {'route': 'A'}), 2, 'InstanceError')
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from opslens.config import ProjectConfig
from opslens.errors import InstanceError, OpslensError, SourceError
from opslens.tracking.models import ModelSource, load_model

__all__ = ["StreamSummary", "iter_instances", "stream_instances"]

log = logging.getLogger("opslens.stream")


@dataclass(frozen=True)
class StreamSummary:
    """How many instances were scored and rejected, where the plots went, which model answered."""

    scored: int
    rejected: int
    plots_dir: Path | None
    origin: str = ""


def iter_instances(lines: IO[str]) -> Iterator[tuple[int, dict[str, Any] | InstanceError]]:
    """Yield ``(line_number, instance)`` or ``(line_number, InstanceError)``; blank lines skipped."""
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            yield (
                number,
                InstanceError(
                    f"line {number} is not JSON ({e.msg})", fix="send one JSON object per line"
                ),
            )
            continue
        if not isinstance(value, dict):
            yield (
                number,
                InstanceError(
                    f"line {number} is a JSON {type(value).__name__}, not an object",
                    fix='send objects such as {"route": "R01", "hour_band": "morning"}',
                ),
            )
            continue
        yield number, value


def stream_instances(
    project: ProjectConfig,
    analysis: str,
    *,
    input_path: Path | None = None,
    stdin: IO[str] | None = None,
    output: Path | None = None,
    plots: bool = True,
    plots_dir: Path | None = None,
    model_source: ModelSource = "latest",
) -> StreamSummary:
    """Predict every instance of ``input_path`` (or ``stdin``); write one JSON line each.

    Plots are drawn only by predictors that offer them (``supports("figure")``).
    """
    loaded = load_model(project, analysis, model_source)
    predictor = loaded.predictor
    log.info("scoring with the model from %s", loaded.origin)
    if input_path is not None and not input_path.is_file():
        raise SourceError(
            f"instances file {input_path} does not exist",
            fix="pass --input FILE.jsonl or - for stdin",
        )
    target_dir = None
    if plots and not predictor.supports("figure"):
        log.info("the %s model draws no per-instance plots", predictor.recipe)
        plots = False
    if plots:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target_dir = plots_dir or project.root / "stream" / analysis / stamp
        target_dir.mkdir(parents=True, exist_ok=True)
    scored = rejected = 0
    source: IO[str] = (
        input_path.open(encoding="utf-8") if input_path is not None else (stdin or sys.stdin)
    )
    sink: IO[str] = output.open("w", encoding="utf-8") if output is not None else sys.stdout
    try:
        for number, item in iter_instances(source):
            record: dict[str, Any] = {"line": number, "run_id": loaded.run_id}
            if isinstance(item, OpslensError):
                record["error"] = str(item)
                rejected += 1
            else:
                try:
                    answer = predictor.predict_one(item)
                except OpslensError as e:
                    record["error"] = str(e)
                    rejected += 1
                else:
                    record.update(answer)
                    scored += 1
                    if answer.get("unknown"):
                        log.warning(
                            "line %d: unknown value(s) for %s; answered from the other attributes",
                            number,
                            ", ".join(answer["unknown"]),
                        )
                    if target_dir is not None:
                        figure = predictor.figure(
                            item, answer, title=f"{analysis} · instance {number}"
                        )
                        path = target_dir / f"instance-{number:06d}.png"
                        figure.savefig(path, dpi=90, bbox_inches="tight")
                        record["plot"] = str(path)
            sink.write(json.dumps(record) + "\n")
            sink.flush()
    finally:
        if input_path is not None:
            source.close()
        if output is not None:
            sink.close()
    return StreamSummary(
        scored=scored, rejected=rejected, plots_dir=target_dir, origin=loaded.origin
    )
