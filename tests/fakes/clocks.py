"""A virtual clock for loop tests: ``sleep_s`` advances time at once (and yields the CPU)."""

from __future__ import annotations

import threading
import time


class SteppingClock:
    """operascope.devices.base.Clock whose time only moves when someone sleeps on it."""

    speed = 1.0

    def __init__(self, yield_s: float = 0.0001) -> None:
        self._t = 0.0
        self._yield_s = yield_s
        self._lock = threading.Lock()

    def now_s(self) -> float:
        with self._lock:
            return self._t

    def sleep_s(self, duration_s: float) -> None:
        if duration_s > 0:
            with self._lock:
                self._t += duration_s
        time.sleep(self._yield_s)
