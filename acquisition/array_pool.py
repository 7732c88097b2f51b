"""ArrayPool: output arrays reused once nobody else holds them (no fresh pages per bin).

A binned mean or a differential image goes to the writer queue, the live slot and perhaps a
client; it must not be overwritten while any of them still refers to it. The pool hands out an
array only when its reference count shows that the pool is its sole owner (CPython counts every
holder, views included: a view refers to its base). When every pooled array is in use, a new one
is allocated (kept if the pool has room), so a slow consumer costs memory, never a wait or a drop.

Reusing arrays matters on the live path: a fresh 9 MB array per bin is fresh memory from the
allocator (page faults and kernel zeroing, several ms of CPU per full frame), a reused one is not.
"""

from __future__ import annotations

import logging
import sys

import numpy as np

log = logging.getLogger(__name__)


def _refcount_when_free(arrays: list[np.ndarray]) -> int:
    """What ``sys.getrefcount`` says, in the loop of :meth:`ArrayPool.take`, of an array only ``arrays``
    refers to (3 on CPython 3.11: the list, the loop variable, getrefcount's argument). Measured with the
    same loop rather than assumed, so an interpreter counting borrowed references differently makes
    the pool reuse nothing instead of reusing an array still in use."""
    for arr in arrays:
        return sys.getrefcount(arr)
    raise ValueError("need one array to measure")


class ArrayPool:
    """Up to ``capacity`` arrays of one shape and dtype, each reused when only the pool refers to it."""

    def __init__(self, capacity: int = 4) -> None:
        if capacity < 0:
            raise ValueError(f"pool capacity must be >= 0 arrays, got {capacity}")
        self.capacity = int(capacity)
        self._arrays: list[np.ndarray] = []
        self._free_refcount = _refcount_when_free([np.empty(0)])
        self.allocated = 0      # arrays made (pooled or not), for tests and benchmarks
        self.reused = 0

    def take(self, shape: tuple[int, ...], dtype: np.dtype | type = np.float32) -> np.ndarray:
        """An array of ``shape``/``dtype`` with undefined content that nobody else refers to."""
        dtype = np.dtype(dtype)
        shape = tuple(shape)
        stale: list[np.ndarray] = []
        for arr in self._arrays:
            if sys.getrefcount(arr) != self._free_refcount:
                continue
            if arr.shape == shape and arr.dtype == dtype:
                self.reused += 1
                return arr
            stale.append(arr)
        if stale:   # free arrays of another shape (the ROI changed): let them go
            self._arrays = [a for a in self._arrays if not any(a is s for s in stale)]
            stale.clear()
        arr = np.empty(shape, dtype=dtype)
        self.allocated += 1
        if len(self._arrays) < self.capacity:
            self._arrays.append(arr)
        return arr
