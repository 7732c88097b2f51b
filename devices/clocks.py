"""Clocks shared by a rig: wall time on hardware, virtual time in simulation."""

from __future__ import annotations

import time
from typing import Protocol



class Clock(Protocol):
    """Time source shared by a rig: wall time on hardware, virtual time in simulation."""

    def now_s(self) -> float:
        """Seconds on this clock (monotonic)."""

    def sleep_s(self, duration_s: float) -> None:
        """Sleep for ``duration_s`` seconds of this clock."""

    @property
    def speed(self) -> float:
        """Clock seconds per wall second (1 for real hardware)."""


class WallClock:
    """The real clock: ``time.monotonic``."""

    speed = 1.0

    def now_s(self) -> float:
        return time.monotonic()

    def sleep_s(self, duration_s: float) -> None:
        if duration_s > 0:
            time.sleep(duration_s)
