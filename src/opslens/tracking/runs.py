"""Run folders written atomically, and the ``latest`` pointer moved last.

A run writes into ``runs/<analysis>/.tmp-<run_id>/``; :meth:`RunWriter.commit`
renames it to ``runs/<analysis>/<run_id>/`` and only then replaces the
``latest`` file (a one-line text file naming the run, swapped with
``os.replace``). A process killed at any moment leaves either the old
``latest`` or the new one, never a half run that looks whole: temporary
folders start with a dot and hold no ``latest`` pointer.

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
import json
import math
import os
import secrets
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import joblib
import polars as pl

from opslens.errors import RunError

__all__ = [
    "LATEST",
    "RunView",
    "RunWriter",
    "jsonable",
    "list_runs",
    "new_run_id",
    "open_run",
    "write_json",
]

LATEST = "latest"


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
        self.analysis_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(self.analysis_dir)
        self.path = self.analysis_dir / f".tmp-{self.run_id}"
        self.path.mkdir()
        (self.path / ".pid").write_text(str(os.getpid()))
        for sub in ("tables", "plots", "model", "data"):
            (self.path / sub).mkdir()

    @property
    def final_path(self) -> Path:
        """Where the run will live once committed."""
        return self.analysis_dir / self.run_id

    def write_table(self, name: str, frame: pl.DataFrame) -> str:
        """Save a table as ``tables/<name>.parquet``; return that relative path."""
        relative = f"tables/{name}.parquet"
        frame.write_parquet(self.path / relative)
        return relative

    def write_json(self, relative: str, data: Any) -> None:
        """Save JSON at ``relative`` inside the run."""
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        write_json(target, data)

    def write_object(self, name: str, obj: Any) -> str:
        """Save a Python object (a fitted estimator, arrays) as ``data/<name>.joblib``."""
        relative = f"data/{name}.joblib"
        joblib.dump(obj, self.path / relative)
        return relative

    def write_plot(self, name: str, figure: Any) -> str:
        """Save a matplotlib Figure as ``plots/<name>.png``."""
        relative = f"plots/{name}.png"
        figure.savefig(self.path / relative, dpi=110, bbox_inches="tight")
        return relative

    def write_model(
        self, model: Any, input_example: pl.DataFrame, metadata: dict[str, Any]
    ) -> list[str]:
        """Save what the online side loads: ``model/model.joblib``, metadata, an input example."""
        joblib.dump(model, self.path / "model" / "model.joblib")
        write_json(self.path / "model" / "metadata.json", metadata)
        input_example.write_parquet(self.path / "model" / "input_example.parquet")
        return ["model/model.joblib", "model/metadata.json", "model/input_example.parquet"]

    def copy_in(self, source: Path, relative: str) -> None:
        """Copy a file of another run to ``relative`` in this one."""
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)

    def commit(self) -> Path:
        """Rename the temporary folder into place, then move ``latest`` to it."""
        (self.path / ".pid").unlink(missing_ok=True)
        os.replace(self.path, self.final_path)
        pointer = self.analysis_dir / (LATEST + ".part")
        pointer.write_text(self.run_id + "\n")
        os.replace(pointer, self.analysis_dir / LATEST)
        return self.final_path

    def abort(self) -> None:
        """Delete the temporary folder; the previous ``latest`` stays as it was."""
        shutil.rmtree(self.path, ignore_errors=True)


def _remove_stale_temporaries(analysis_dir: Path) -> None:
    for tmp in analysis_dir.glob(".tmp-*"):
        pid_file = tmp / ".pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text())
            if pid != os.getpid() and _alive(pid):
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
        return json.loads(target.read_text())

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
    path = analysis_dir / run_id
    if run_id.startswith(".") or "/" in run_id or not (path / "manifest.json").is_file():
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
    analysis_dir = Path(runs_root) / analysis
    if not analysis_dir.is_dir():
        return []
    runs = [
        RunView(p)
        for p in analysis_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / "manifest.json").is_file()
    ]
    return sorted(runs, key=lambda r: (str(r.manifest.get("finished", "")), r.run_id), reverse=True)
