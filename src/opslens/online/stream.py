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
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from opslens.config import ProjectConfig
from opslens.core.atomic import atomic_path
from opslens.errors import InstanceError, OpslensError, SourceError
from opslens.tracking.models import ModelSource, load_model

__all__ = [
    "Follower",
    "StreamSummary",
    "answer_instance",
    "iter_instances",
    "parse_instance",
    "stream_instances",
]

log = logging.getLogger("opslens.stream")


@dataclass(frozen=True)
class StreamSummary:
    """How many instances were scored and rejected, where the plots went, which model answered."""

    scored: int
    rejected: int
    plots_dir: Path | None
    origin: str = ""


_MAX_DIGITS = 300  # past this an integer is no float (1e308) and no id a model knows


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > _MAX_DIGITS:
        raise ValueError(f"an integer of {digits} digits is too long (at most {_MAX_DIGITS})")
    return int(text)


def parse_instance(number: int, line: str | bytes) -> dict[str, Any] | InstanceError | None:
    """One input line as an instance, an :class:`InstanceError` naming what is wrong, or None if blank.

    Any bytes give one of the three: invalid UTF-8, JSON nested past Python's
    recursion limit and a 5,000-digit number are errors of that line (``NaN``, which
    Python's json writes for a missing reading, is read as a number).

    Example:
        >>> parse_instance(3, b'{"route": "A"}'), parse_instance(4, "  ")
        ({'route': 'A'}, None)
        >>> print(parse_instance(5, b"\\xff{}"))
        line 5 is not UTF-8 text (byte 1 is 0xff); fix: send UTF-8 encoded JSON, one object per line
        >>> print(parse_instance(6, "[" * 100_000))
        line 6 nests JSON too deeply; fix: send flat JSON objects such as {"route": "R01"}
    """
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as e:
            return InstanceError(
                f"line {number} is not UTF-8 text (byte {e.start + 1} is 0x{line[e.start]:02x})",
                fix="send UTF-8 encoded JSON, one object per line",
            )
    text = line.strip().lstrip("\ufeff")
    if not text:
        return None
    try:
        value = json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as e:
        return InstanceError(
            f"line {number} is not JSON ({e.msg})", fix="send one JSON object per line"
        )
    except RecursionError:
        return InstanceError(
            f"line {number} nests JSON too deeply",
            fix='send flat JSON objects such as {"route": "R01"}',
        )
    except ValueError as e:  # an integer of too many digits
        return InstanceError(
            f"line {number} is not usable JSON ({e})",
            fix="send numbers of ordinary size (at most 300 digits)",
        )
    if not isinstance(value, dict):
        return InstanceError(
            f"line {number} is a JSON {type(value).__name__}, not an object",
            fix='send objects such as {"route": "R01", "hour_band": "morning"}',
        )
    return value


def iter_instances(
    lines: IO[str] | IO[bytes],
) -> Iterator[tuple[int, dict[str, Any] | InstanceError]]:
    """Yield ``(line_number, instance)`` or ``(line_number, InstanceError)``; blank lines skipped.

    A text file or stdin is read through its byte buffer, line by line, so an
    undecodable line is one error and the lines around it are still scored.
    """
    raw: IO[Any] = getattr(lines, "buffer", None) or lines
    for number, line in enumerate(raw, start=1):
        item = parse_instance(number, line)
        if item is not None:
            yield number, item


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
    refresh_seconds: float = 5.0,
) -> StreamSummary:
    """Predict every instance of ``input_path`` (or ``stdin``); write one JSON line each.

    Plots are drawn only by predictors that offer them (``supports("figure")``). With
    ``model_source="registry"`` the stream follows promotions: the alias ``champion`` is
    asked again every ``refresh_seconds`` and a newly promoted version answers from then on
    (each output line names the run that answered).
    """
    loaded = load_model(project, analysis, model_source)
    predictor = loaded.predictor
    log.info("scoring with the model from %s", loaded.origin)
    follow = (
        Follower(project, analysis, loaded, refresh_seconds) if model_source == "registry" else None
    )
    if input_path is not None and not input_path.is_file():
        what = "is a directory, not a file" if input_path.is_dir() else "does not exist"
        raise SourceError(
            f"instances file {input_path} {what}",
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
    states: dict[str, dict[str, Any]] = {}  # per stream, for predictors that step()
    recent: dict[str, deque[dict[str, Any]]] = {}  # per stream, the samples to recalibrate on
    if predictor.supports("online_scorer"):  # live events: the state from the analysis's events
        from opslens.online.warm import warm_scorer

        states[EVENTS] = {"scorer": warm_scorer(project, analysis, predictor)}
    source: IO[str] = (
        input_path.open(encoding="utf-8") if input_path is not None else (stdin or sys.stdin)
    )
    sink: IO[str] = output.open("w", encoding="utf-8") if output is not None else sys.stdout
    try:
        for number, item in iter_instances(source):
            fresh = follow.poll() if follow is not None else None
            if fresh is not None:
                loaded, predictor = fresh, fresh.predictor
            record: dict[str, Any] = {"line": number, "run_id": loaded.run_id}
            if isinstance(item, OpslensError):
                record["error"] = str(item)
                rejected += 1
            else:
                try:
                    answer = answer_instance(predictor, item, states)
                except OpslensError as e:
                    record["error"] = str(e)
                    rejected += 1
                else:
                    record.update(answer)
                    scored += 1
                    event = _recalibration(
                        project, analysis, predictor, item, answer, recent, model_source
                    )
                    if event is not None:
                        record["recalibration"] = event
                        if event.get("promoted"):  # the recalibrated version answers from now
                            loaded = load_model(project, analysis, "registry")
                            predictor = loaded.predictor
                            if follow is not None:
                                follow.loaded = loaded
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
                        with atomic_path(path) as tmp:
                            figure.savefig(tmp, dpi=90, bbox_inches="tight", format="png")
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


def _recalibration(
    project: ProjectConfig,
    analysis: str,
    predictor: Any,
    item: dict[str, Any],
    answer: dict[str, Any],
    recent: dict[str, deque[dict[str, Any]]],
    model_source: ModelSource,
) -> dict[str, Any] | None:
    """Keep the stream's recent samples (predictors that recalibrate) and, when the answer asks
    for it (``recalibrate``), recalibrate through the life cycle: the event, else None."""
    size = predictor.recalibration_window() if predictor.supports("recalibration_window") else 0
    if not size:
        return None
    stream = str(answer.get("stream") or "default")
    kept = recent.setdefault(stream, deque(maxlen=size))
    kept.append(item)
    reason = answer.get("recalibrate")
    if not reason:
        return None
    from opslens.online.recalibrate import not_followed, recalibrate_stream

    if model_source != "registry":
        log.warning("stream %s: a recalibration is due (%s); %s", stream, reason, "not done")
        return not_followed(str(reason))
    event = recalibrate_stream(project, analysis, predictor, list(kept), str(reason), stream)
    kept.clear()
    return event


class Follower:
    """Follows the registry alias of an analysis: asked at most every ``seconds``, it loads a
    newly promoted version (errors keep the loaded one, with a warning).

    Example:
        >>> class Loaded:
        ...     metadata = {"version": "1"}
        >>> f = Follower(None, "eta", Loaded(), seconds=3600.0)
        >>> f.poll() is None  # not due yet
        True
    """

    def __init__(self, project: Any, analysis: str, loaded: Any, seconds: float) -> None:
        self.project, self.analysis, self.seconds = project, analysis, seconds
        self.loaded = loaded
        self.checked = time.monotonic()

    def poll(self) -> Any | None:
        """The newly promoted version's loaded predictor, or None (not due, or unchanged)."""
        if time.monotonic() - self.checked < self.seconds:
            return None
        from opslens.online.service.served import ProjectModels

        self.checked = time.monotonic()
        version = str(self.loaded.metadata.get("version"))
        try:
            pointer = ProjectModels(self.project).pointer(self.analysis)
            if pointer is None or pointer == version:
                return None
            fresh = load_model(self.project, self.analysis, "registry")
        except OpslensError as e:  # keep answering with the loaded version
            log.warning("cannot follow the registry of '%s': %s", self.analysis, e)
            return None
        log.info("now scoring with the model from %s", fresh.origin)
        self.loaded = fresh
        return fresh


EVENTS = "__events__"  # the key of a live-events scorer in ``states``


def _event_or_score(
    predictor: Any, instance: dict[str, Any], states: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """A live event into the model's online state, or ``{"user", "items", "at"}`` scored."""
    held = states.get(EVENTS)
    if held is None:
        held = states[EVENTS] = {"scorer": predictor.online_scorer()}  # no warm start given
    elif held["scorer"].predictor is not predictor:  # a promoted version, the same state
        held["scorer"] = held["scorer"].with_predictor(predictor)
    scorer = held["scorer"]
    if "items" in instance:
        user = instance.get("user", instance.get("user_id"))
        if user is None:
            raise InstanceError(
                "a score line has no user", fix='send {"user": "u1", "items": ["i1", "i2"]}'
            )
        return dict(scorer.predict(str(user), instance["items"], instance.get("at")))
    scorer.ingest(instance)
    return {"event": "accepted", "events_in_state": scorer.state.events}


def answer_instance(
    predictor: Any, instance: dict[str, Any], states: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The predictor's answer; a stateful one (``supports("step")``) gets its stream's state;
    one that answers from live events (``supports("online_scorer")``) takes an event (a line
    with ``event_type``) into its state or scores ``{"user", "items", "at"}``.

    The stream id is the instance's ``stream`` field (``predictor.stream_field``),
    ``default`` when absent; ``states`` keeps one state per stream id between calls.

    Example:
        >>> class Counter:
        ...     def supports(self, what): return what == "step"
        ...     def step(self, instance, state):
        ...         n = (state or {"n": 0})["n"] + 1
        ...         return {"n": n}, {"n": n}
        >>> states = {}
        >>> [answer_instance(Counter(), {"x": i}, states)["n"] for i in range(2)]
        [1, 2]
        >>> list(states)
        ['default']
    """
    if predictor.supports("online_scorer") and ("event_type" in instance or "items" in instance):
        return _event_or_score(predictor, instance, states)
    if not predictor.supports("step"):
        return dict(predictor.predict_one(instance))
    value = instance.get(getattr(predictor, "stream_field", "stream"))
    stream = "default" if value is None else str(value)
    answer, states[stream] = predictor.step(instance, states.get(stream))
    return dict(answer)
