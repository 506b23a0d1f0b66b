"""One atomic writer: write a temporary file beside the target, fsync it, rename it, fsync the folder.

A reader (or a process restarted after a crash or a power cut) sees either the
old file or the new one, never half of one. Every file that must survive a crash
is written through :func:`atomic_write_bytes`, :func:`atomic_write_text` or, for
writers that want a path (``polars.DataFrame.write_parquet``, ``joblib.dump``,
``Figure.savefig``), :func:`atomic_path`.

Because the target is *replaced* (a new inode), never truncated, a file that is
hard-linked from another run folder is never changed through this run's name.

Example:
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "facts.json"
    >>> atomic_write_text(target, '{"rows": 4}')
    >>> target.read_text()
    '{"rows": 4}'
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("new")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('new', ['facts.json'])
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "fsync_folder", "fsync_tree"]


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk; a no-op where folders cannot be opened.

    Example:
        >>> import tempfile, pathlib
        >>> fsync_folder(pathlib.Path(tempfile.mkdtemp()))
    """
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform or file system without folder handles
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Flush every file and folder under ``folder`` to disk: before a folder written in place
    is renamed into view (a version of the folder registry), so the rename never shows a
    folder whose files a power cut would empty.

    Example:
        >>> import tempfile, pathlib
        >>> tmp = pathlib.Path(tempfile.mkdtemp()); _ = (tmp / "a.json").write_text("{}")
        >>> fsync_tree(tmp)
    """
    for path in sorted(Path(folder).rglob("*"), reverse=True):
        if path.is_file() and not path.is_symlink():
            _fsync_file(path)
        elif path.is_dir():
            fsync_folder(path)
    fsync_folder(Path(folder))


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it is fsynced and renamed to ``path``.

    On any error the temporary file is removed and ``path`` is left as it was.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "t.txt"
        >>> try:
        ...     with atomic_path(target) as tmp:
        ...         _ = tmp.write_text("half")
        ...         raise RuntimeError("killed")
        ... except RuntimeError:
        ...     pass
        >>> target.exists(), list(target.parent.iterdir())
        (False, [])
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.urandom(4).hex()}.part")
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_folder(target.parent)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename, fsync the folder).

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "b.bin"
        >>> atomic_write_bytes(target, b"\\x00\\x01"); target.read_bytes()
        b'\\x00\\x01'
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()


def atomic_write_text(path: Path | str, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`).

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "latest"
        >>> atomic_write_text(target, "run-1\\n"); atomic_write_text(target, "run-2\\n")
        >>> target.read_text()
        'run-2\\n'
    """
    atomic_write_bytes(path, text.encode(encoding))
