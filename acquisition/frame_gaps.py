"""Frame-id gaps of a recording as events: every gap named, gaps close together coalesced into one line.

The binner counts frames missing between consecutive frame ids (``dropped``); this turns each gap into
an event in the run file (``/entry/events``, source ``camera``), at most one line per ``interval_s`` of
wall time, listing every gap of that interval (ranges of ids), so a burst cannot flood the log.
"""

from __future__ import annotations

import time
from typing import Callable

Emit = Callable[[str, str, str], object]   # (level, source, message)

#: Gaps listed one by one in a line; beyond this the line gives the first ones and the count.
MAX_LISTED = 20


class FrameGapLog:
    """Collects (first missing id, count) gaps and emits them as warning events."""

    def __init__(self, emit: Emit, interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._emit = emit
        self._interval_s = float(interval_s)
        self._clock = clock
        self._pending: list[tuple[int, int]] = []
        self._last_emit = -float("inf")
        self.gaps = 0
        self.frames = 0

    def add(self, first_missing_id: int, count: int) -> None:
        """One gap: ``count`` ids from ``first_missing_id`` missing. Emits when the interval has passed."""
        if count <= 0:
            return
        self._pending.append((int(first_missing_id), int(count)))
        self.gaps += 1
        self.frames += int(count)
        if self._clock() - self._last_emit >= self._interval_s:
            self.flush()

    def flush(self) -> None:
        """Emit the pending gaps now (one line), if any."""
        if not self._pending:
            return
        gaps, self._pending = self._pending, []
        self._last_emit = self._clock()
        ranges = [str(first) if n == 1 else f"{first}-{first + n - 1}" for first, n in gaps[:MAX_LISTED]]
        more = f" and {len(gaps) - MAX_LISTED} more gaps" if len(gaps) > MAX_LISTED else ""
        missing = sum(n for _, n in gaps)
        self._emit("warning", "camera", f"frame ids missing (frame-id gap): {', '.join(ranges)}{more} "
                                        f"({missing} frame{'s' if missing != 1 else ''})")
