"""Compiled (numba) kernel behind :func:`opslens.features.events.sessionize`.

One pass over rows already sorted by key and time gives every per-row session
column at once (a numpy version needs a dozen full-length passes and
temporaries: at 10^7 rows those, not the sort, were the cost). Integer
arithmetic only, so the result does not depend on how it was compiled.

Example:
    >>> import numpy as np
    >>> cols = session_columns(np.array([True, False, False, True]), np.array([0, 5, 20, 21]), 10,
    ...                        np.array([False, True, False, False]), 0.5)
    >>> cols[0].tolist(), cols[3].tolist(), cols[5].tolist(), cols[6].tolist()
    ([0, 0, 1, 0], [2, 2, 1, 1], [0, 1, 0, 0], [2.5, 2.5, 0.0, 0.0])
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["session_columns"]

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
B = npt.NDArray[np.bool_]


@numba.njit(cache=True, nogil=True)
def session_columns(
    new_key: B, t: I64, gap: int, cart: B, per_unit: float
) -> tuple[I32, I64, I64, I32, I32, I32, npt.NDArray[np.float64]]:  # pragma: no cover
    """Per row: session index within its key, start, end, events, event number, carts so
    far and the session's length (``(end - start) * per_unit``, e.g. seconds).

    Rows are sorted by key and time; ``new_key`` flags each key's first row (and row 0); a
    session starts there or after a gap greater than ``gap`` (in ``t``'s unit); ``cart``
    flags add-to-carts.
    """
    n = t.size
    index = np.empty(n, np.int32)
    start = np.empty(n, np.int64)
    end = np.empty(n, np.int64)
    events = np.empty(n, np.int32)
    event = np.empty(n, np.int32)
    carts = np.empty(n, np.int32)
    length = np.empty(n, np.float64)
    first = 0  # the current session's first row
    k = 0
    c = 0
    for i in range(n):
        if i > 0 and (new_key[i] or t[i] - t[i - 1] > gap):
            for j in range(first, i):  # close the session [first, i)
                end[j] = t[i - 1]
                events[j] = i - first
                length[j] = (t[i - 1] - t[first]) * per_unit
            k = 0 if new_key[i] else k + 1
            first = i
            c = 0
        c += cart[i]
        index[i] = k
        start[i] = t[first]
        event[i] = i - first + 1
        carts[i] = c
    for j in range(first, n):
        end[j] = t[n - 1]
        events[j] = n - first
        length[j] = (t[n - 1] - t[first]) * per_unit
    return index, start, end, events, event, carts, length
