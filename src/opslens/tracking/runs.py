"""Run folders written atomically, and the ``latest`` pointer moved last.

A run writes into ``runs/<analysis>/.tmp-<run_id>/``; :meth:`RunWriter.commit`
renames it to ``runs/<analysis>/<run_id>/`` and only then replaces the
``latest`` file (a one-line text file naming the run, swapped with
``os.replace``). A process killed at any moment leaves either the old
``latest`` or the new one, never a half run that looks whole: temporary
folders start with a dot and hold no ``latest`` pointer.

The pointers heal themselves: a kill between the rename and the ``latest``
move leaves a complete run newer than ``latest``, which the next run (or
``opslens runs``) finds and points ``latest`` at (:func:`repair_latest`); a
temporary folder records its process's id *and start time*, so one whose pid
was reused by another process is still recognised as dead. Run ids are
checked against :data:`RUN_ID` and resolved inside the analysis folder, so
neither ``--run ../x`` nor a tampered ``latest`` reads outside it. A write
that fails (read-only folder, full disk, a file where a folder should be, a
name too long) is a :class:`~opslens.errors.RunError` naming the path.

Example:
    >>> import tempfile, pathlib, polars as pl
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> run = RunWriter(root, "eta")
    >>> run.write_table("scores", pl.DataFrame({"a": [1]}))
    'tables/scores.parquet'
    >>> run.write_json("manifest.json", {"status": "complete"})
    >>> folder = run.commit()
    >>> open_run(root, "eta").table("scores").height
    1
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import joblib
import polars as pl

from opslens.errors import RunError

__all__ = [
    "FAULT_ENV",
    "LATEST",
    "RUN_ID",
    "RunView",
    "RunWriter",
    "checkpoint",
    "damaged_runs",
    "jsonable",
    "list_runs",
    "new_run_id",
    "open_run",
    "process_alive",
    "process_start",
    "repair_latest",
    "write_json",
    "writing",
]

log = logging.getLogger("opslens.tracking")
LATEST = "latest"
RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-z]{4}$")
FAULT_ENV = "OPSLENS_FAULT_AT"
_OS_ERROR = re.compile(r"os error (\d+)")


def checkpoint(name: str) -> None:
    """A named moment of a run; with ``OPSLENS_FAULT_AT=name`` the process is SIGKILLed there.

    The fault-injection seam of the chaos tests: they kill a real run at named
    moments (``stage:<name>``, ``tracker:model``, ``commit:renamed``, ...) instead
    of guessing with sleeps.

    Example:
        >>> checkpoint("stage:prepare")  # no OPSLENS_FAULT_AT: nothing happens
    """
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _file_in_the_way(path: Path) -> Path | None:
    """The file (not folder) at ``path`` or above it, if there is one."""
    for p in (path, *path.parents):
        with contextlib.suppress(OSError):
            if p.exists() and not p.is_dir():
                return p
    return None


def _fs_message(e: OSError | None, code: int | None, path: Path) -> tuple[str, str]:
    where = Path(e.filename) if e is not None and e.filename else path
    why = (e.strerror if e is not None and e.strerror else None) or (
        os.strerror(code) if code else str(e)
    )
    if code == errno.ENOSPC or code == errno.EDQUOT:
        return (
            f"no space left on the device while writing {where}",
            "free disk space, or set runs_dir to a folder on another disk",
        )
    blocker = _file_in_the_way(where) if code in (errno.ENOTDIR, errno.EEXIST) else None
    if blocker is not None:
        return (
            f"{blocker} is a file, not a folder, so no run can be written there",
            "set runs_dir to a folder, or move the file away",
        )
    if code == errno.ENAMETOOLONG:
        return (
            f"the path {where} is too long for the file system",
            "use a shorter analysis name or a shorter runs_dir",
        )
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (
            f"cannot write {where} ({why})",
            "make the folder writable, or set runs_dir to a writable folder",
        )
    return (
        f"cannot write {where} ({why})",
        "check the folder and its disk, or set runs_dir to another folder",
    )


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn a failed write under ``path`` into a RunError naming the path and a fix.

    Example:
        >>> import tempfile, pathlib
        >>> blocker = pathlib.Path(tempfile.mkdtemp()) / "runs"; _ = blocker.write_text("")
        >>> with writing(blocker):
        ...     (blocker / "eta").mkdir(parents=True)
        Traceback (most recent call last):
        ...
        opslens.errors.RunError: ...runs is a file, not a folder, so no run can be written there; fix: set runs_dir to a folder, or move the file away
    """
    try:
        yield
    except OSError as e:
        message, fix = _fs_message(e, e.errno, path)
        raise RunError(message, fix=fix) from None
    except pl.exceptions.PolarsError as e:  # polars reports I/O failures as "os error N"
        found = _OS_ERROR.search(str(e))
        if found is None:
            raise
        message, fix = _fs_message(None, int(found.group(1)), path)
        raise RunError(message, fix=fix) from None


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: UTC time plus 4 random hex digits.

    Example:
        >>> from datetime import datetime, UTC
        >>> new_run_id(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))[:16]
        '20260102T030405Z'
    """
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars, paths, dates and non-finite floats made JSON-ready.

    Example:
        >>> import numpy as np
        >>> jsonable({"a": np.float64(1.5), "b": float("nan")})
        {'a': 1.5, 'b': None}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) > 0:  # numpy arrays
        return jsonable(value.tolist())
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data: Any) -> None:
    """Write JSON through a temporary file so readers never see half a file."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(jsonable(data), indent=2, sort_keys=False, allow_nan=False) + "\n")
    os.replace(tmp, path)


class RunWriter:
    """A run being written; nothing is visible as a run until :meth:`commit`."""

    def __init__(self, runs_root: Path, analysis: str, run_id: str | None = None) -> None:
        self.analysis_dir = Path(runs_root) / analysis
        self.run_id = run_id or new_run_id()
        self.path = self.analysis_dir / f".tmp-{self.run_id}"
        with writing(self.analysis_dir):
            self.analysis_dir.mkdir(parents=True, exist_ok=True)
            _remove_stale_temporaries(self.analysis_dir)
            repair_latest(runs_root, analysis)
            self.path.mkdir()
            (self.path / ".pid").write_text(str(os.getpid()))
            (self.path / ".pid-start").write_text(process_start(os.getpid()) or "")
            for sub in ("tables", "plots", "model", "data"):
                (self.path / sub).mkdir()

    @property
    def final_path(self) -> Path:
        """Where the run will live once committed."""
        return self.analysis_dir / self.run_id

    def write_table(self, name: str, frame: pl.DataFrame) -> str:
        """Save a table as ``tables/<name>.parquet``; return that relative path."""
        relative = f"tables/{name}.parquet"
        with writing(self.path / relative):
            frame.write_parquet(self.path / relative)
        return relative

    def write_json(self, relative: str, data: Any) -> None:
        """Save JSON at ``relative`` inside the run."""
        target = self.path / relative
        with writing(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            write_json(target, data)

    def write_object(self, name: str, obj: Any) -> str:
        """Save a Python object (a fitted estimator, arrays) as ``data/<name>.joblib``."""
        relative = f"data/{name}.joblib"
        with writing(self.path / relative):
            joblib.dump(obj, self.path / relative)
        return relative

    def write_plot(self, name: str, figure: Any) -> str:
        """Save a matplotlib Figure as ``plots/<name>.png``."""
        relative = f"plots/{name}.png"
        with writing(self.path / relative):
            figure.savefig(self.path / relative, dpi=110, bbox_inches="tight")
        return relative

    def write_model(
        self, model: Any, input_example: pl.DataFrame, metadata: dict[str, Any]
    ) -> list[str]:
        """Save what the online side loads: ``model/model.joblib``, metadata, an input example."""
        with writing(self.path / "model"):
            joblib.dump(model, self.path / "model" / "model.joblib")
            write_json(self.path / "model" / "metadata.json", metadata)
            input_example.write_parquet(self.path / "model" / "input_example.parquet")
        return ["model/model.joblib", "model/metadata.json", "model/input_example.parquet"]

    def copy_in(self, source: Path, relative: str) -> None:
        """Copy a file of another run to ``relative`` in this one."""
        target = self.path / relative
        with writing(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)

    def commit(self) -> Path:
        """Rename the temporary folder into place, then move ``latest`` to it."""
        with writing(self.final_path):
            (self.path / ".pid").unlink(missing_ok=True)
            (self.path / ".pid-start").unlink(missing_ok=True)
            os.replace(self.path, self.final_path)
            checkpoint("commit:renamed")
            with _locked(self.analysis_dir):
                _point_latest(self.analysis_dir, self.run_id)
        return self.final_path

    def abort(self) -> None:
        """Delete the temporary folder; the previous ``latest`` stays as it was."""
        shutil.rmtree(self.path, ignore_errors=True)


def _point_latest(analysis_dir: Path, run_id: str) -> None:
    pointer = analysis_dir / (LATEST + ".part")
    pointer.write_text(run_id + "\n")
    os.replace(pointer, analysis_dir / LATEST)


@contextlib.contextmanager
def _locked(analysis_dir: Path) -> Iterator[None]:
    """Hold the analysis folder's lock while ``latest`` is read and moved."""
    import fcntl

    fd = os.open(analysis_dir, os.O_RDONLY)  # flock on the folder itself: no lock file
    try:
        with contextlib.suppress(OSError):  # a file system without locks: go on unlocked
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), or None if unknown.

    Example:
        >>> import os
        >>> process_start(os.getpid()) == process_start(os.getpid())
        True
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def process_alive(pid: int, started: str | None = None) -> bool:
    """Whether ``pid`` runs, and is the process that started at ``started`` (not a reuse).

    Example:
        >>> import os
        >>> process_alive(os.getpid(), process_start(os.getpid())), process_alive(os.getpid(), "1")
        (True, False)
    """
    if not _alive(pid):
        return False
    now = process_start(pid)
    return not started or now is None or now == started


def _remove_stale_temporaries(analysis_dir: Path) -> None:
    for tmp in analysis_dir.glob(".tmp-*"):
        with contextlib.suppress(OSError, ValueError):
            pid = int((tmp / ".pid").read_text())
            start_file = tmp / ".pid-start"
            started = start_file.read_text().strip() if start_file.is_file() else None
            if pid != os.getpid() and process_alive(pid, started):
                continue
        shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        """Read ``tables/<name>.parquet``."""
        target = self.path / "tables" / f"{name}.parquet"
        if not target.is_file():
            raise RunError(
                f"run {self.path} has no table '{name}'", fix="run the stage that makes it"
            )
        return pl.read_parquet(target)

    def object(self, name: str) -> Any:
        """Load ``data/<name>.joblib``."""
        target = self.path / "data" / f"{name}.joblib"
        if not target.is_file():
            raise RunError(
                f"run {self.path} has no saved '{name}'", fix="run the stage that makes it"
            )
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
    with _locked(analysis_dir):
        good = _scan(runs_root, analysis)[0]
        if not good:
            return None
        newest, manifest = good[0]
        pointer = analysis_dir / LATEST
        named = pointer.read_text().strip() if pointer.is_file() else ""
        current = next((m for v, m in good if v.run_id == named and RUN_ID.match(named)), None)
        newer = current is None or str(manifest.get("finished", "")) > str(
            current.get("finished", "")
        )
        if not newer or newest.run_id == named:
            return None
        _point_latest(analysis_dir, newest.run_id)
    log.warning(
        "'%s': latest named %s; moved it to the newest complete run %s",
        analysis,
        repr(named) if named else "no run",
        newest.run_id,
    )
    return newest.run_id
