"""The promotion gate: whether a run's newly registered model version gets the serving alias.

A model that loses to one of its recipe's gating baselines on the held-out data
(:mod:`opslens.core.baselines`) is registered (a version in the registry) but the
alias ``champion`` does not move to it, and the run says so; ``promote=True``
(``opslens run --force``) moves it anyway, ``promote=False`` never moves it. A run
with no baseline scores moves the alias as before.

Example:
    >>> from opslens.core.baselines import BaselineScore, summarise
    >>> lost = summarise([BaselineScore(baseline="global", label="one global model",
    ...     metric="rmse_y", metric_label="RMSE of y", model=13.5, value=12.2,
    ...     higher_is_better=False, n=400)])
    >>> p = decide("3", lost, None)
    >>> p.moved, p.warning()
    (False, 'version 3 registered but not made champion: one global model is better on RMSE of y: 12.2 against 13.5 (400 held-out rows); pass --force to serve it anyway')
    >>> decide("3", lost, True).moved, decide("3", None, None).moved, decide(None, lost, True).moved
    (True, True, False)
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from opslens.core.baselines import BaselinesFacts
from opslens.errors import RunError
from opslens.tracking.runs import list_runs, open_run
from opslens.tracking.tracker import SERVING_ALIAS, Tracker

__all__ = ["PENDING", "Promotion", "decide", "repair_alias"]

log = logging.getLogger("opslens.run")
PENDING = "alias.pending.json"
"""Written into a run folder before its commit when the run moves the serving alias, removed
once the alias moved: a run folder holding it was killed between the two."""


@dataclass(frozen=True)
class Promotion:
    """Where the serving alias goes after a run: the version, whether it moved, and why."""

    alias: str
    version: str | None
    moved: bool
    why: str

    def warning(self) -> str | None:
        """What the run says when a registered version is withheld by the gate, else None."""
        if self.moved or self.version is None or not self.why.startswith("held back: "):
            return None
        return (
            f"version {self.version} registered but not made {self.alias}: "
            f"{self.why.removeprefix('held back: ')}; pass --force to serve it anyway"
        )

    def as_dict(self) -> dict[str, Any]:
        """The manifest's ``promotion`` section."""
        return asdict(self)

    def failed(self, error: str) -> Promotion:
        """This promotion after the alias could not be moved (the run stays committed)."""
        return Promotion(self.alias, self.version, False, f"the registry refused: {error}")


def decide(
    version: str | None, baselines: BaselinesFacts | None, promote: bool | None
) -> Promotion:
    """Whether the alias moves to ``version``: ``promote`` True forces, False withholds,
    None lets the baseline verdict decide (no baselines scored: it moves)."""
    if version is None:
        return Promotion(SERVING_ALIAS, None, False, "this run registered no new model version")
    if promote is False:
        return Promotion(SERVING_ALIAS, version, False, "promotion was turned off for this run")
    lost = baselines is not None and not baselines.model_wins
    if promote is True:
        why = f"forced: {baselines.verdict}" if lost and baselines is not None else "forced"
        return Promotion(SERVING_ALIAS, version, True, why)
    if baselines is None:
        return Promotion(SERVING_ALIAS, version, True, "no baseline was scored")
    if lost:
        return Promotion(SERVING_ALIAS, version, False, f"held back: {baselines.verdict}")
    return Promotion(SERVING_ALIAS, version, True, baselines.verdict)


def repair_alias(runs_root: Path, name: str, tracker: Tracker) -> str | None:
    """Move the serving alias a killed run left behind (its folder committed, the alias not
    moved yet: :data:`PENDING` still there); the version it moved to, or None.

    Only the ``latest`` run's pending move is made; older ones are stale and dropped.

    Example:
        >>> import tempfile
        >>> repair_alias(Path(tempfile.mkdtemp()), "eta", None) is None  # no run yet
        True
    """
    try:  # a runs folder that cannot be read is the run's to report, with its own fix
        latest = open_run(runs_root, name)
        others = [v for v in list_runs(runs_root, name) if v.run_id != latest.run_id]
        marker = latest.path / PENDING
        pending_move = marker.is_file()
    except (RunError, OSError):
        return None
    for view in others:
        with contextlib.suppress(OSError):
            (view.path / PENDING).unlink(missing_ok=True)
    if not pending_move:
        return None
    try:
        pending = json.loads(marker.read_text())
        model, version = str(pending["model"]), str(pending["version"])
    except (OSError, ValueError, KeyError, TypeError):
        marker.unlink(missing_ok=True)
        return None
    tracker.set_alias(model, version)
    marker.unlink(missing_ok=True)
    log.warning(
        "'%s': the serving alias was left behind by an interrupted run; moved it to "
        "version %s (run %s)",
        name,
        version,
        latest.run_id,
    )
    return version
