"""A stream's recalibration through the shared life cycle: when a predictor's answer asks for
one (``recalibrate``: why), the stream's recent samples become a scored batch of the
analysis (``opslens batch``) and, unless that batch's monitoring retrained already, a
retraining with that reason (``opslens retrain``): the recalibrated version is registered
with its reason and made champion only if it wins its held-out comparison.

Only a stream that follows the registry (``opslens stream --from registry``) recalibrates;
one that serves the latest run says so in the event and goes on.

Example:
    >>> from opslens.online.recalibrate import not_followed
    >>> not_followed("scheduled: 500 samples")["done"]
    False
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from opslens.config import ProjectConfig
from opslens.errors import OpslensError

__all__ = ["not_followed", "recalibrate_stream"]

log = logging.getLogger("opslens.stream")


def not_followed(reason: str) -> dict[str, Any]:
    """The event of a due recalibration on a stream that serves the latest run's model."""
    return {
        "reason": reason,
        "done": False,
        "why": "this stream serves the latest run; recalibrations are versions of the "
        "registry: stream with --from registry",
    }


def recalibrate_stream(
    project: ProjectConfig,
    analysis: str,
    predictor: Any,
    instances: Sequence[Mapping[str, Any]],
    reason: str,
    stream: str,
) -> dict[str, Any]:
    """Recalibrate on ``instances`` (a stream's recent samples): the event for the output line
    (reason, version, promoted, the comparison's summary), also logged. A failure is logged
    and said in the event; the stream goes on with the model it has."""
    from opslens.lifecycle.registry import open_stores
    from opslens.runner.lifecycle import Deployment

    event: dict[str, Any] = {"reason": reason, "stream": stream, "samples": len(instances)}
    history = None
    try:
        history, registry = open_stores(project, analysis)
        life = Deployment(project, analysis, history, registry)
        outcome = life.batch(predictor.recalibration_frame(instances))
        done = outcome.retrained or life.retrain(f"stream {stream}: {reason}")
    except OpslensError as e:
        log.warning("stream %s: the recalibration (%s) failed: %s", stream, reason, e)
        return {**event, "done": False, "error": str(e)}
    finally:
        if history is not None:
            history.dispose()
    event |= {
        "done": True,
        "version": done.version,
        "champion_before": done.champion,
        "promoted": done.promoted,
        "summary": done.summary(),
    }
    log.info(
        "stream %s: recalibrated on its last %d samples (%s): version %s %s; %s",
        stream,
        len(instances),
        done.reason,
        done.version,
        "is champion" if done.promoted else "registered, champion kept",
        done.summary(),
    )
    return event
