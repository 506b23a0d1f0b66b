"""The file system side of run folders: fault checkpoints, writes that fail with a fix, JSON.

:func:`checkpoint` is the chaos tests' seam (``OPSLENS_FAULT_AT=name`` kills the
process at that named moment); :func:`writing` turns a failed write into a
:class:`~opslens.errors.RunError` naming the path and a fix; :func:`write_json`
writes atomically (:mod:`opslens.core.atomic`).

Example:
    >>> jsonable({"when": __import__("datetime").date(2026, 1, 2)})
    {'when': '2026-01-02'}
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import signal
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from opslens.core.atomic import atomic_write_text
from opslens.errors import RunError

__all__ = ["FAULT_ENV", "checkpoint", "jsonable", "new_run_id", "write_json", "writing"]

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


def _from_polars(error: BaseException) -> bool:
    """Whether ``error`` is one of polars' (checked by module: polars loads only when used)."""
    return any(c.__module__.split(".")[0] == "polars" for c in type(error).__mro__)


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
    except Exception as e:  # polars reports I/O failures as "os error N"
        found = _OS_ERROR.search(str(e)) if _from_polars(e) else None
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
    return (
        now.strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(2).hex()
    )  # secrets.token_hex(2), without its import


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
    """Write JSON atomically (:func:`opslens.core.atomic.atomic_write_text`): whole or not at all."""
    atomic_write_text(path, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")
