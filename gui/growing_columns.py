"""GrowingColumns: float64 columns appended row by row (the electrochemistry log the window plots)."""

from __future__ import annotations

import numpy as np


class GrowingColumns:
    """Float64 columns that grow by appending rows (amortised O(1)); views of the filled part."""

    def __init__(self, n_columns: int, capacity: int = 1024) -> None:
        self._data = np.empty((capacity, n_columns), dtype=np.float64)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def extend(self, rows) -> None:
        """Append rows (iterables of ``n_columns`` numbers)."""
        block = np.asarray(list(rows), dtype=np.float64).reshape(-1, self._data.shape[1])
        needed = self._n + len(block)
        if needed > len(self._data):
            grown = np.empty((max(needed, 2 * len(self._data)), self._data.shape[1]), dtype=np.float64)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n: needed] = block
        self._n = needed

    def columns(self) -> tuple[np.ndarray, ...]:
        """One read-only array per column, rows 0..len-1 (copies, safe to keep)."""
        return tuple(self._data[: self._n, k].copy() for k in range(self._data.shape[1]))
