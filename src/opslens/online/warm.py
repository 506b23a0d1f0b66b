"""The online scorer of an analysis whose model answers from live events (propensity),
warm-started from the analysis's own events: its source read as a run reads it, with its
item table. Used by the service and the stream.

Example:
    >>> callable(warm_scorer)
    True
"""

from __future__ import annotations

import logging
from typing import Any

from opslens.config import ProjectConfig

__all__ = ["warm_scorer"]

log = logging.getLogger("opslens.online")


def warm_scorer(project: ProjectConfig, analysis: str, predictor: Any) -> Any:
    """``predictor.online_scorer`` with the state built from ``analysis``'s events."""
    from opslens.io.sources.files import read_file
    from opslens.runner.stages import load_input

    config = project.analysis(analysis)
    raw = load_input(config).frame
    items = getattr(getattr(config.params, "items", None), "path", None)
    scorer = predictor.online_scorer(config, raw, read_file(items) if items else None)
    log.info(
        "'%s': online state warm-started from %d events (%d without a user dropped)",
        analysis,
        scorer.state.events,
        scorer.dropped_events,
    )
    return scorer
