"""Lock target refresh: a small image-based focus check around the locked z, moving the lock's
offset when best focus has moved relative to the reflecting interface the lock follows (e.g. an
electrode swelling with state of charge). Qt-free.

One refresh steps the lock offset through ``planes`` planes ``step_nm`` apart around the current
offset (the lock moves z; excursion ≤ (planes−1)/2 · step), waits for the lock to settle at each,
scores the image (fiducial width² or variance, see :mod:`operascope.acquisition.autofocus`), fits a
parabola, and sets the offset to its vertex when it lies inside the scanned planes and moves by at
most ``max_change_nm`` (a vertex outside the planes re-centres the scan, at most ``max_rounds``
scans); otherwise the old offset is restored. :class:`FocusRefresher` runs one every
``interval_s`` of rig time while the lock is locked (and ``may_run()`` allows it), and on demand.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from operascope.acquisition.autofocus import (
    FrameSource,
    ParabolaFit,
    fiducial_width_sq_px2,
    fit_parabola,
    highpass_normalized_variance,
)
from operascope.acquisition.worker import Worker
from operascope.analysis.fiducial import locate_fiducial
from operascope.devices.base import Clock

log = logging.getLogger(__name__)

__all__ = ["FocusRefresher", "RefreshResult", "RefreshSettings", "refresh_lock_target"]

Emit = Callable[[str, str], None]   # (level, message)


@dataclass(frozen=True)
class RefreshSettings:
    """How often (rig s; None = only on demand) and how (planes, step, frames, bound on the change)."""

    interval_s: float | None = None
    planes: int = 5
    step_nm: float = 75.0
    frames_per_plane: int = 3
    max_change_nm: float = 200.0
    metric: str = "fiducial"
    settle_timeout_s: float = 60.0
    max_rounds: int = 3

    def __post_init__(self) -> None:
        if self.interval_s is not None and not (math.isfinite(self.interval_s) and self.interval_s > 0):
            raise ValueError(f"refresh_interval_s must be > 0 (or unset = off), got {self.interval_s}")
        if self.planes < 3 or self.planes % 2 == 0:
            raise ValueError(f"refresh planes must be an odd number >= 3, got {self.planes}")
        if not (self.step_nm > 0 and self.max_change_nm > 0):
            raise ValueError("refresh step_nm and max_change_nm must be > 0")


@dataclass(frozen=True)
class RefreshResult:
    """One refresh: offsets (nm) before/after, whether it was applied, the curve and the fit."""

    time_s: float
    old_offset_nm: float
    new_offset_nm: float
    applied: bool
    reason: str
    offsets_nm: tuple[float, ...]
    values: tuple[float, ...]
    fit: ParabolaFit | None
    duration_s: float

    @property
    def change_nm(self) -> float:
        return self.new_offset_nm - self.old_offset_nm

    def summary(self) -> str:
        if self.applied:
            return (f"focus refresh: offset {self.old_offset_nm:+.1f} -> {self.new_offset_nm:+.1f} nm "
                    f"(change {self.change_nm:+.1f} nm, ± {self.fit.z0_sigma_nm:.1f} nm, R² {self.fit.r2:.3f}; "
                    f"{len(self.offsets_nm)} planes in {self.duration_s:.1f} s)")
        return f"focus refresh: offset kept at {self.old_offset_nm:+.1f} nm ({self.reason})"


def _wait_settled(lock: Any, clock: Clock, min_iterations: int, timeout_s: float) -> None:
    """Block until the lock ran ``min_iterations`` more updates and reports ``locked``."""
    start = lock.loop_stats()["iterations"]
    deadline = clock.now_s() + timeout_s
    while lock.loop_stats()["iterations"] - start < min_iterations or lock.state != "locked":
        if lock.state in ("fault", "off", "lost"):
            raise RuntimeError(f"focus lock went to {lock.state!r} during the refresh")
        if clock.now_s() > deadline:
            raise RuntimeError(f"focus lock did not settle within {timeout_s:g} s (state {lock.state!r})")
        time.sleep(0.001)


def refresh_lock_target(lock: Any, clock: Clock, source: FrameSource, settings: RefreshSettings,
                        fiducial_xy_px: tuple[float, float] | None = None,
                        settle_iterations: int = 6) -> RefreshResult:
    """One refresh (see the module docstring). ``lock`` is a running FocusLock."""
    t0 = clock.now_s()
    base = float(lock.offset_nm)
    half = settings.planes // 2
    centre = base
    offsets = np.empty(0)
    values: list[float] = []
    fit: ParabolaFit | None = None
    guess = fiducial_xy_px
    applied, new, reason = False, base, ""
    try:
        for _round in range(settings.max_rounds):
            offsets = centre + settings.step_nm * np.arange(-half, half + 1)
            values = []
            for offset in offsets:
                lock.set_offset_nm(float(offset))
                _wait_settled(lock, clock, settle_iterations, settings.settle_timeout_s)
                image = source.grab(settings.frames_per_plane)
                if settings.metric == "fiducial":
                    guess = guess or locate_fiducial(image)
                    values.append(fiducial_width_sq_px2(image, guess))
                else:
                    values.append(highpass_normalized_variance(image))
            fit = fit_parabola(offsets, values)
            right_way = fit.a > 0 if settings.metric == "fiducial" else fit.a < 0
            if not right_way or not math.isfinite(fit.z0_nm):
                reason = "no focus peak in the scanned planes"
                break
            if abs(fit.z0_nm - base) > settings.max_change_nm:
                reason = f"change {fit.z0_nm - base:+.0f} nm exceeds max_change_nm {settings.max_change_nm:g}"
                break
            if offsets[0] <= fit.z0_nm <= offsets[-1]:
                applied, new = True, float(fit.z0_nm)
                break
            reason = f"best focus {fit.z0_nm - base:+.0f} nm is outside the scanned planes"
            centre = float(fit.z0_nm)   # re-centre (bounded by max_change_nm) and scan again
    except (RuntimeError, ValueError) as exc:
        reason = str(exc)
    finally:
        try:
            lock.set_offset_nm(new)
        except ValueError as exc:  # outside the window: keep the old target
            applied, new, reason = False, base, str(exc)
            lock.set_offset_nm(base)
    try:   # return in focus at the new offset (the last plane may be a step away)
        _wait_settled(lock, clock, settle_iterations, settings.settle_timeout_s)
    except RuntimeError as exc:
        reason = reason or str(exc)
    return RefreshResult(clock.now_s(), base, new, applied, reason, tuple(float(o) for o in offsets),
                         tuple(float(v) for v in values), fit, clock.now_s() - t0)


class FocusRefresher:
    """Runs :func:`refresh_lock_target` every ``settings.interval_s`` of rig time (and on demand).

    ``may_run()`` (optional) must return True for a scheduled refresh to start (e.g. only between
    bins); a refresh that is due waits for it. Every refresh is reported through ``emit(level, msg)``.
    """

    def __init__(self, lock: Any, clock: Clock, source: FrameSource, settings: RefreshSettings,
                 emit: Emit | None = None, may_run: Callable[[], bool] | None = None,
                 fiducial_xy_px: tuple[float, float] | None = None) -> None:
        self._lock, self._clock, self._source, self.settings = lock, clock, source, settings
        self._emit = emit or (lambda level, message: log.info(message))
        self._may_run = may_run or (lambda: True)
        self._fiducial = fiducial_xy_px
        self._busy = threading.Lock()
        self.results: list[RefreshResult] = []
        self._worker: Worker | None = None

    @property
    def is_refreshing(self) -> bool:
        """True while a refresh scan runs (its planes are defocused on purpose)."""
        return self._busy.locked()

    def refresh_now(self) -> RefreshResult:
        """One refresh now (blocks); also what the scheduler calls."""
        with self._busy:
            result = refresh_lock_target(self._lock, self._clock, self._source, self.settings, self._fiducial)
        self.results.append(result)
        self._emit("info" if result.applied else "warning", result.summary())
        return result

    def start(self) -> None:
        """Start the schedule (no-op when interval_s is None)."""
        if self.settings.interval_s is None or self._worker is not None:
            return
        self._worker = Worker("focus-refresh", self._loop,
                              on_error=lambda exc: self._emit("error", f"focus refresh stopped: {exc}"))
        self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop(timeout_s=30.0)
            self._worker = None

    def _loop(self, stop: threading.Event) -> None:
        next_s = self._clock.now_s() + self.settings.interval_s
        while not stop.is_set():
            if self._clock.now_s() >= next_s and self._lock.state == "locked" and self._may_run():
                self.refresh_now()
                next_s = self._clock.now_s() + self.settings.interval_s
            stop.wait(0.01)
