"""Re-acquiring a lost focus lock by a bounded z search (``[focus_lock] recover = true``).

When the lock is ``lost`` (the line failed the quality gate, e.g. the focus laser went off) it holds
z. If the signal comes back with the line still inside the calibrated range, the lock re-acquires
by itself. If focus moved on meanwhile, the line comes back outside the calibrated range (or off
the sensor) and the lock would stay lost for good. With ``recover`` on, the lock then searches:
planes at held z ± k·step (nearest first, alternating sides) up to ±range, never outside the
travel window, reading the sensor at each; the first plane where the line passes the gate inside
the calibrated range becomes the new z and control resumes from there. No plane: z goes back to
the held value, and the search is tried again ``retry_s`` later. A search starts only while
``signal_expected()`` says the signal should be there (the focus laser is on): searching with the
laser off would only move the sample about.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Callable

from operascope.analysis.focus_signal import ProfileMeasurement
from operascope.devices.base import Clock, Positioner

log = logging.getLogger(__name__)

__all__ = ["LockRecovery", "RecoverSettings", "search_offsets_nm"]


@dataclass(frozen=True)
class RecoverSettings:
    """Search half-range and step (nm), rig seconds between tries, settle after each move."""

    range_nm: float
    step_nm: float
    retry_s: float
    settle_s: float = 0.05


def search_offsets_nm(range_nm: float, step_nm: float) -> list[float]:
    """+step, −step, +2·step, −2·step, … up to ±range (the held plane itself is what the loop reads)."""
    if not (step_nm > 0 and range_nm > 0):
        raise ValueError(f"recover search needs range_nm > 0 and step_nm > 0, got {range_nm!r}, {step_nm!r}")
    offsets: list[float] = []
    for k in range(1, int(math.floor(range_nm / step_nm + 1e-9)) + 1):
        offsets += [k * step_nm, -k * step_nm]
    return offsets


class LockRecovery:
    """When a lost lock may search, and the search itself (run on the lock's loop thread)."""

    def __init__(self, settings: RecoverSettings, signal_expected: Callable[[], bool] | None = None) -> None:
        self.settings = settings
        self._signal_expected = signal_expected
        self._last_try_s = -math.inf
        self.searches = 0
        self.recovered = 0

    def reset(self) -> None:
        """Forget the last try (a new lock)."""
        self._last_try_s = -math.inf

    def due(self, now_s: float) -> bool:
        """True when the retry interval has passed and the signal should be there."""
        if now_s - self._last_try_s < self.settings.retry_s:
            return False
        if self._signal_expected is not None:
            try:
                if not self._signal_expected():
                    return False
            except Exception as exc:  # noqa: BLE001 - a failing laser query means "do not search", said in the log
                log.warning("recover: cannot tell whether the focus signal is on (%s); no search", exc)
                return False
        return True

    def search(self, axis: Positioner, clock: Clock, hold_nm: float, limits_nm: tuple[float, float],
               step_nm: float, measure: Callable[[], ProfileMeasurement], accept: Callable[[ProfileMeasurement], bool],
               stop: threading.Event) -> float | None:
        """Visit the planes; the z (nm) where ``accept(measure())`` first holds, else None with z back at ``hold_nm``.

        Raises DeviceError when a move fails (the caller faults).
        """
        self._last_try_s = clock.now_s()
        self.searches += 1
        low, high = limits_nm
        for offset in search_offsets_nm(self.settings.range_nm, step_nm):
            if stop.is_set():
                break
            z_nm = hold_nm + offset
            if not low <= z_nm <= high:
                continue
            axis.move_to(z_nm)
            clock.sleep_s(self.settings.settle_s)
            if accept(measure()):
                self.recovered += 1
                return z_nm
        axis.move_to(hold_nm)
        return None


def recovery_from_config(config, signal_expected: Callable[[], bool] | None = None) -> LockRecovery | None:
    """A :class:`LockRecovery` when ``config.recover`` is on, else None."""
    if not config.recover:
        return None
    return LockRecovery(RecoverSettings(config.recover_range_nm, config.recover_step_nm, config.recover_retry_s,
                                        config.recover_settle_s), signal_expected)

