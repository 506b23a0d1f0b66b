"""The newest answers the service gave, per analysis: what a live view watches
(``GET /recent/{analysis}``; the app's Live page reads it).

Each answered instance of ``POST /predict/{analysis}`` is kept as one row — the instance's
fields, then the answer's (an answer's field wins a clash), the version that answered and
when — in a ring of the newest ``size`` rows per analysis, in this service process's
memory (several workers each keep their own). A field that holds a list or an object (a
fleet device's readings) is kept as its size, ``[239 items]``, not its values: a ring of
10,000 devices' histories would hold about 850 MB, and every full garbage collection of the
service would walk its millions of objects again.

Example:
    >>> recent = RecentAnswers(size=2)
    >>> for i in range(3):
    ...     recent.add("rig", [{"x": i, "stream": "s"}], [{"level": "ok"}], version="4")
    >>> [r["x"] for r in recent.newest("rig", 10)], recent.newest("rig", 1)[0]["version"]
    ([1, 2], '4')
    >>> recent.newest("rig", 10, stream="other")
    []
    >>> recent.add("fleet", [{"device": "d1", "readings": [{"v": 1}] * 239}], [{"score": 0.5}],
    ...            version="2")
    >>> recent.newest("fleet", 1)[0]["readings"]
    '[239 items]'
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["MAX_RECENT", "RecentAnswers"]

#: rows kept per analysis (and the most one request may ask for)
MAX_RECENT = 10_000
#: the field values a row keeps as their size
_NESTED = (list, tuple, dict)


def _shown(instance: Mapping[str, Any]) -> Mapping[str, Any]:
    """``instance`` as a row keeps it: itself when every field is a scalar (no copy), else a
    copy with each list or object field replaced by its size (``[3 items]``, ``{2 fields}``).

    Example:
        >>> _shown({"id": "d1", "readings": [1, 2, 3], "tags": {"a": 1, "b": 2}})
        {'id': 'd1', 'readings': '[3 items]', 'tags': '{2 fields}'}
    """
    for value in instance.values():  # a loop, not any() of a generator: a third of the cost
        if isinstance(value, _NESTED):
            return {k: _size(v) if isinstance(v, _NESTED) else v for k, v in instance.items()}
    return instance


def _size(value: list[Any] | tuple[Any, ...] | dict[str, Any]) -> str:
    """A list's or an object's size as a row shows it (see :func:`_shown`)."""
    return f"{{{len(value)} fields}}" if isinstance(value, dict) else f"[{len(value)} items]"


class RecentAnswers:
    """A ring of the newest answered instances per analysis (thread-safe)."""

    def __init__(self, size: int = MAX_RECENT) -> None:
        self.size = size
        #: (instance, answer, version, unix time) as answered; merged into rows when read
        self._rows: dict[str, deque[tuple[Mapping[str, Any], Mapping[str, Any], Any, float]]] = {}
        self._lock = threading.Lock()

    def add(
        self,
        analysis: str,
        instances: Sequence[Mapping[str, Any]],
        answers: Sequence[Mapping[str, Any]],
        *,
        version: str | None,
    ) -> None:
        """Keep each instance with its answer (the same order), the version and the time now.

        Nothing is copied here but an instance with a list or object field, kept as its size
        (:func:`_shown`; a request's instances and answers are not changed after they are
        answered); rows are built when :meth:`newest` reads them.
        """
        at = time.time()
        ring = self._rows.get(analysis)
        if ring is None:
            with self._lock:
                ring = self._rows.setdefault(analysis, deque(maxlen=self.size))
        if len(instances) == 1:
            ring.append((_shown(instances[0]), answers[0], version, at))  # append is atomic
            return
        with self._lock:
            ring.extend(
                (_shown(i), a, version, at) for i, a in zip(instances, answers, strict=False)
            )

    def newest(self, analysis: str, n: int, *, stream: str | None = None) -> list[dict[str, Any]]:
        """The newest ``n`` rows of ``analysis`` (of one ``stream`` when given), oldest first."""
        with self._lock:
            kept = list(self._rows.get(analysis, ()))
        if stream is not None:
            kept = [k for k in kept if str(k[1].get("stream", k[0].get("stream"))) == stream]
        if n <= 0:
            return []
        return [
            {
                **dict(i),
                **dict(a),
                "version": v,
                "answered_at": datetime.fromtimestamp(at, UTC).isoformat(),
            }
            for i, a, v, at in kept[-n:]
        ]
