"""Event-loop responsiveness: how late a repeating QTimer fires while the window works."""

from __future__ import annotations

import time

from PyQt5 import QtCore


class EventLoopLagProbe:
    """Records the lateness (ms) of each tick of a precise repeating timer.

    ``start()`` then let the event loop run (a test's ``qtbot.wait`` or a ``QEventLoop``), then
    ``stop()``; ``lags_ms`` excludes the first tick, which has no predecessor to measure against.
    """

    def __init__(self, interval_ms: int = 10) -> None:
        self.interval_ms = int(interval_ms)
        self._lags_ms: list[float] = []
        self._last_s = 0.0
        self._timer = QtCore.QTimer()
        self._timer.setTimerType(QtCore.Qt.PreciseTimer)
        self._timer.setInterval(self.interval_ms)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self._lags_ms.append(max(0.0, (now - self._last_s) * 1000.0 - self.interval_ms))
        self._last_s = now

    def start(self) -> None:
        self._lags_ms.clear()
        self._last_s = time.perf_counter()
        self._timer.start()

    def stop(self) -> list[float]:
        """Stop and return the lags in ms."""
        self._timer.stop()
        return self.lags_ms

    @property
    def lags_ms(self) -> list[float]:
        return list(self._lags_ms[1:])
