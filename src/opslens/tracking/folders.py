"""Committed run folders, read-only, and the ``latest`` pointer that names the newest.

:func:`open_run` resolves a run id (or ``latest``) inside the analysis folder, so
neither ``--run ../x`` nor a tampered ``latest`` reads outside it; :func:`list_runs`
and :func:`damaged_runs` scan the folder; :func:`repair_latest` points ``latest``
at the newest complete run when a kill left it behind. ``latest`` is moved
atomically (:func:`point_latest`) under the analysis folder's lock.

Example:
    >>> import tempfile, pathlib
    >>> list_runs(pathlib.Path(tempfile.mkdtemp()), "eta")
    []
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opslens.core.atomic import atomic_write_text
from opslens.errors import RunError

if (
    TYPE_CHECKING
):  # polars and joblib load when a table or object is read (`opslens runs` reads none)
    import polars as pl

__all__ = [
    "LATEST",
    "RUN_ID",
    "RunView",
    "damaged_runs",
    "list_runs",
    "lock_file",
    "locked",
    "moves_latest",
    "open_run",
    "point_latest",
    "repair_latest",
]

log = logging.getLogger("opslens.tracking")
LATEST = "latest"
RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-z]{4}$")


def moves_latest(manifest: dict[str, Any]) -> bool:
    """Whether a run may become ``latest``: a ``train`` run, or a run of another pipeline
    (``retrain``) whose model took the serving alias; never a scored batch.

    Example:
        >>> moves_latest({}), moves_latest({"pipeline": "batch"})
        (True, False)
        >>> moves_latest({"pipeline": "retrain", "promotion": {"moved": True}})
        True
    """
    if manifest.get("pipeline", "train") == "train":
        return True
    promotion = manifest.get("promotion")
    return isinstance(promotion, dict) and bool(promotion.get("moved"))


def point_latest(analysis_dir: Path, run_id: str) -> None:
    """Move ``latest`` of ``analysis_dir`` to ``run_id`` (atomically)."""
    atomic_write_text(analysis_dir / LATEST, run_id + "\n")


@contextlib.contextmanager
def locked(analysis_dir: Path) -> Iterator[None]:
    """Hold the analysis folder's lock while ``latest`` is read and moved."""
    import fcntl

    fd = os.open(analysis_dir, os.O_RDONLY)  # flock on the folder itself: no lock file
    try:
        with contextlib.suppress(OSError):  # a file system without locks: go on unlocked
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def lock_file(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (made if missing) until the block ends;
    another process asking for it waits. On a file system without locks: unlocked.

    Example:
        >>> import tempfile, pathlib
        >>> with lock_file(pathlib.Path(tempfile.mkdtemp()) / ".lifecycle.lock"):
        ...     pass
    """
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class RunView:
    """A committed run, read-only: manifest, facts, tables, objects, plots."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.run_id = path.name

    @property
    def manifest(self) -> dict[str, Any]:
        """The run's manifest.json."""
        manifest: dict[str, Any] = self.json("manifest.json")
        return manifest

    @property
    def status(self) -> str:
        """``complete``, or ``partial`` for a run of only some stages that has no results yet
        for the others (a first run of ``--stages``); runs before opslens 0.3 are complete."""
        return str(self.manifest.get("status") or "complete")

    @property
    def pipeline(self) -> str:
        """The pipeline the run executed (``train`` for runs before opslens 0.3)."""
        return str(self.manifest.get("pipeline") or "train")

    @property
    def facts(self) -> dict[str, Any]:
        """The run's facts.json (every number a report may state)."""
        facts: dict[str, Any] = self.json("facts.json")
        return facts

    def json(self, relative: str) -> Any:
        """Read a JSON file of the run; RunError if it is missing."""
        target = self.path / relative
        if not target.is_file():
            raise RunError(
                f"run {self.path} has no {relative}",
                fix="run `opslens run` again to produce a complete run",
            )
        try:
            return json.loads(target.read_text())
        except (ValueError, OSError) as e:
            raise RunError(
                f"{target} is damaged ({type(e).__name__}: {str(e).splitlines()[0][:80]})",
                fix=f"delete the run folder {self.path}, or run `opslens run` again",
            ) from None

    def table(self, name: str) -> pl.DataFrame:
        """Read ``tables/<name>.parquet`` (a file, or a folder of part files an engine wrote)."""
        target = self.path / "tables" / f"{name}.parquet"
        if not target.exists():
            raise RunError(
                f"run {self.path} has no table '{name}'", fix="run the stage that makes it"
            )
        import polars as pl

        if target.is_dir():
            return pl.read_parquet(target / "*.parquet")
        return pl.read_parquet(target)

    def object(self, name: str) -> Any:
        """Load ``data/<name>.joblib``."""
        target = self.path / "data" / f"{name}.joblib"
        if not target.is_file():
            raise RunError(
                f"run {self.path} has no saved '{name}'", fix="run the stage that makes it"
            )
        import joblib

        return joblib.load(target)

    def has(self, relative: str) -> bool:
        """Whether the run holds the file ``relative``."""
        return (self.path / relative).exists()

    def plots(self) -> list[Path]:
        """Every PNG in ``plots/``, sorted by name."""
        return sorted((self.path / "plots").glob("*.png"))

    def origin(self, relative: str) -> dict[str, str]:
        """Which stage and run produced ``relative`` (``status``: produced or reused)."""
        artifacts = self.manifest.get("artifacts") or {}
        found: dict[str, str] = artifacts.get(relative) or {
            "run_id": self.run_id,
            "status": "produced",
        }
        return found


def open_run(runs_root: Path, analysis: str, run_id: str = LATEST) -> RunView:
    """The run ``run_id`` of ``analysis`` (default: the one ``latest`` names); RunError if none.

    Example:
        >>> import tempfile, pathlib
        >>> open_run(pathlib.Path(tempfile.mkdtemp()), "eta")
        Traceback (most recent call last):
        ...
        opslens.errors.RunError: analysis 'eta' has no complete run yet; fix: run `opslens run` (or `opslens run --analysis eta`) first
    """
    analysis_dir = Path(runs_root) / analysis
    if run_id == LATEST:
        pointer = analysis_dir / LATEST
        if not pointer.is_file():
            raise RunError(
                f"analysis '{analysis}' has no complete run yet",
                fix=f"run `opslens run` (or `opslens run --analysis {analysis}`) first",
            )
        run_id = pointer.read_text().strip()
        if not RUN_ID.match(run_id):
            raise RunError(
                f"{pointer} names {run_id[:60]!r}, which is not a run id",
                fix="run `opslens runs` to point it at the newest complete run",
            )
    elif not RUN_ID.match(run_id):
        raise RunError(
            f"run {run_id[:60]!r} of analysis '{analysis}' is missing or incomplete: "
            "that is not a run id (like 20260102T030405Z-1a2b)",
            fix="run `opslens runs` to list the run ids",
        )
    path = analysis_dir / run_id
    inside = path.resolve().parent == analysis_dir.resolve()
    if not inside or not (path / "manifest.json").is_file():
        raise RunError(
            f"run '{run_id}' of analysis '{analysis}' is missing or incomplete",
            fix="run `opslens runs` to list complete runs",
        )
    return RunView(path)


def list_runs(runs_root: Path, analysis: str) -> list[RunView]:
    """Complete runs of ``analysis``, newest first.

    Example:
        >>> import tempfile, pathlib
        >>> list_runs(pathlib.Path(tempfile.mkdtemp()), "eta")
        []
    """
    return [view for view, _ in _scan(runs_root, analysis)[0]]


def damaged_runs(runs_root: Path, analysis: str) -> list[tuple[str, str]]:
    """Run folders of ``analysis`` whose manifest cannot be read: ``(run_id, why)`` pairs.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp()); bad = root / "eta" / "20260101T000000Z-aaaa"
        >>> bad.mkdir(parents=True); _ = (bad / "manifest.json").write_text("{half")
        >>> [run_id for run_id, _ in damaged_runs(root, "eta")], list_runs(root, "eta")
        (['20260101T000000Z-aaaa'], [])
    """
    return _scan(runs_root, analysis)[1]


def _scan(
    runs_root: Path, analysis: str
) -> tuple[list[tuple[RunView, dict[str, Any]]], list[tuple[str, str]]]:
    analysis_dir = Path(runs_root) / analysis
    if not analysis_dir.is_dir():
        return [], []
    good: list[tuple[RunView, dict[str, Any]]] = []
    damaged: list[tuple[str, str]] = []
    for p in analysis_dir.iterdir():
        if not p.is_dir() or p.name.startswith(".") or not (p / "manifest.json").is_file():
            continue
        view = RunView(p)
        try:
            manifest = view.manifest
            if not isinstance(manifest, dict):
                raise RunError(f"{p / 'manifest.json'} is damaged (not a JSON object)")
        except RunError as e:
            damaged.append((p.name, e.problem))
            continue
        good.append((view, manifest))
    good.sort(key=lambda vm: (str(vm[1].get("finished", "")), vm[0].run_id), reverse=True)
    return good, sorted(damaged)


def repair_latest(runs_root: Path, analysis: str) -> str | None:
    """Point ``latest`` at the newest complete run if it names an older, missing or bad one.

    A kill between a run's rename and its ``latest`` move leaves a complete run
    newer than ``latest``; this moves the pointer there. Returns the run id it
    moved ``latest`` to, or None when nothing needed repair.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp()); run = root / "eta" / "20260101T000000Z-aaaa"
        >>> run.mkdir(parents=True); _ = (run / "manifest.json").write_text("{}")
        >>> repair_latest(root, "eta"), (root / "eta" / "latest").read_text().strip()
        ('20260101T000000Z-aaaa', '20260101T000000Z-aaaa')
    """
    analysis_dir = Path(runs_root) / analysis
    if not analysis_dir.is_dir():
        return None
    with locked(analysis_dir):
        every = _scan(runs_root, analysis)[0]
        good = [(v, m) for v, m in every if moves_latest(m)]
        if not good:
            return None
        newest, manifest = good[0]
        pointer = analysis_dir / LATEST
        named = pointer.read_text().strip() if pointer.is_file() else ""
        # latest may name a promoted retraining (moved there by the life cycle): keep it
        current = next((m for v, m in every if v.run_id == named and RUN_ID.match(named)), None)
        newer = current is None or str(manifest.get("finished", "")) > str(
            current.get("finished", "")
        )
        if not newer or newest.run_id == named:
            return None
        point_latest(analysis_dir, newest.run_id)
    log.warning(
        "'%s': latest named %s; moved it to the newest complete run %s",
        analysis,
        repr(named) if named else "no run",
        newest.run_id,
    )
    return newest.run_id
