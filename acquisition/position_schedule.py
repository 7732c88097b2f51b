"""PositionSchedule: during one recording, cycle through a list of stage positions.

Per visit: move the stage (x, y; and z when there is no lock), wait until it settled, re-acquire focus
(the lock's target = the reference target + the position's ``z_offset_um`` + what its image-based
refreshes found; wait until a lock sample *after* the move says LOCKED, within ``focus_timeout_s``);
with a lock target refresh configured (``[focus_lock] refresh_interval_s``), a position whose last
refresh is that old gets one now, and its correction is kept for its later visits; then open the position's visit window in the
:class:`~operascope.acquisition.position_router.PositionRouter` and wait for its ``dwell_bins`` bins.
A failed move (end of travel, link loss, timeout) skips the position for this cycle with an event; a
focus that does not come back marks it and it is retried next cycle; the others go on. Every visit is a
row of /entry/visits; the mean cycle period goes to /entry/positions at the end.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from typing import Any, Callable

from operascope.acquisition.position_router import PositionRouter
from operascope.acquisition.position_state import PositionState, PositionStatus, Visit, VisitStatus
from operascope.acquisition.positions import PositionList, StagePosition
from operascope.acquisition.worker import Worker
from operascope.devices.base import DeviceLost

log = logging.getLogger(__name__)

Emit = Callable[[str, str, str], Any]   # (level, source, message)


@dataclasses.dataclass(frozen=True)
class ScheduleTimeouts:
    """Rig-clock seconds the schedule waits for each step of a visit."""

    settle_s: float = 30.0       # stage move + settle
    focus_s: float = 10.0        # lock back to LOCKED after the move
    visit_slack_s: float = 10.0  # beyond the nominal dwell time for the frames of a visit
    poll_s: float = 0.005


class PositionSchedule:
    """Runs the visits in a worker thread; see the module docstring. ``start()`` once, ``stop()`` once."""

    def __init__(self, positions: PositionList, router: PositionRouter, rig: Any, focus: Any, use_lock: bool,
                 writer: Any, emit: Emit, frame_period_s: float, timeouts: ScheduleTimeouts | None = None,
                 refresher: Callable[[], Any] | None = None) -> None:
        self.positions = positions
        self.router = router
        self._rig = rig
        self._clock = rig.clock
        self._focus = focus
        self._use_lock = bool(use_lock)
        self._writer = writer
        self._emit = emit
        self.timeouts = timeouts or ScheduleTimeouts()
        self._visit_time_s = router.dwell_bins * router.bin_size * frame_period_s
        self._lock = threading.Lock()
        self._status = [PositionStatus(p.name, PositionState.WAITING) for p in positions.positions]
        self._t0_s = float(getattr(getattr(writer, "setup", None), "t0_s", 0.0))
        self.visits: list[Visit] = []
        self.cycle_durations_s: list[float] = []
        self._stage_lost = False
        self._base_offset_nm = 0.0
        self._z_reference_nm = math.nan
        self._refresher_of = refresher or (lambda: None)   # the recording's FocusRefresher, if any (late-bound)
        self.target_corrections_nm: dict[str, float] = {}  # per position: what its refreshes moved the target
        self._refreshed_at_s: dict[str, float] = {}
        self._worker = Worker("positions", self._loop, self._failed)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "PositionSchedule":
        lock = self._focus.existing_lock if self._focus is not None else None
        if self._use_lock and lock is not None:
            self._base_offset_nm = float(lock.offset_nm)
        elif any(p.z_offset_um for p in self.positions.positions):
            self._z_reference_nm = float(self._rig.stage.axis("z").position_nm())
        self._emit("info", "positions", f"multi-position run: {len(self.positions)} positions "
                                        f"({', '.join(self.positions.names())}), {self.router.dwell_bins} bin(s) per visit")
        self._worker.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> float:
        """End the cycle (the open visit's partial bin is left to the recording's end); the mean cycle period (s)."""
        self._worker.stop(timeout_s)
        period = self.cycle_period_s
        if math.isfinite(period):
            self._writer.write_cycle_period(period)
        return period

    @property
    def is_running(self) -> bool:
        return self._worker.is_alive()

    @property
    def cycle_period_s(self) -> float:
        """Mean measured duration of the completed cycles (NaN before the first one completed)."""
        d = self.cycle_durations_s
        return sum(d) / len(d) if d else math.nan

    def statuses(self) -> list[PositionStatus]:
        with self._lock:
            status = list(self._status)
        return [dataclasses.replace(s, visits=t.visits_recorded, bins=t.bins)
                for s, t in zip(status, self.router.targets)]

    def _failed(self, exc: BaseException) -> None:
        self._emit("error", "positions", f"position schedule failed: {type(exc).__name__}: {exc}; "
                                         f"no more positions are visited")

    def _set(self, index: int, **changes: Any) -> None:
        with self._lock:
            self._status[index] = dataclasses.replace(self._status[index], **changes)

    # ------------------------------------------------------------------ the cycle
    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            cycle_start_s = self._clock.now_s()
            recorded = 0
            for index, position in enumerate(self.positions.positions):
                if stop.is_set():
                    return
                recorded += self._visit(index, position, stop)
            if stop.is_set():
                return
            self.cycle_durations_s.append(self._clock.now_s() - cycle_start_s)
            if not recorded:   # every position failed (e.g. stage link down): wait a rig second, then retry
                resume_s = self._clock.now_s() + 1.0
                while not stop.is_set() and self._clock.now_s() < resume_s:
                    self._clock.sleep_s(self.timeouts.poll_s * 10)

    def _visit(self, index: int, position: StagePosition, stop: threading.Event) -> int:
        """One visit; returns 1 if it recorded bins."""
        visit = Visit(time_s=self._clock.now_s(), position_index=index)
        self._set(index, state=PositionState.MOVING)
        try:
            self._move(position)
        except Exception as exc:  # noqa: BLE001 - any device error: skip this position this cycle
            reason = f"{type(exc).__name__}: {exc}"
            self._stage_lost = isinstance(exc, DeviceLost)
            self._emit("warning", "positions", f"position {position.name}: move failed ({reason}); "
                                               f"skipped this cycle, the other positions go on")
            return self._end(index, visit, VisitStatus.MOVE_FAILED, PositionState.SKIPPED, reason)
        visit = dataclasses.replace(visit, settled_time_s=self._clock.now_s())
        self._set(index, state=PositionState.FOCUSING)
        problem = self._refocus(position, stop)
        if problem is not None:
            if stop.is_set():
                return self._end(index, visit, VisitStatus.SKIPPED, PositionState.WAITING, None)
            self._emit("warning", "positions", f"position {position.name}: focus not reacquired ({problem}); "
                                               f"retried next cycle")
            return self._end(index, visit, VisitStatus.FOCUS_NOT_REACQUIRED, PositionState.FAILED, problem)
        self._refresh_target(position)
        focus_s = self._clock.now_s()
        since_camera_ns = self._camera_time_now_ns()   # frames exposed from here on belong to this visit
        visit = dataclasses.replace(visit, focus_time_s=focus_s)
        self._set(index, state=PositionState.RECORDING, last_visit_time_s=focus_s - self._t0_s)
        done = self.router.open_visit(index, len(self.visits), focus_s, since_camera_ns)
        deadline_s = focus_s + self._visit_time_s + self.timeouts.visit_slack_s
        while not done.wait(0.01):
            if stop.is_set():   # the recording ends: its end bins this visit's last frames, then writes the row
                self.router.on_close = lambda bins, end_s: self._end(
                    index, dataclasses.replace(visit, n_bins=bins, end_time_s=end_s), VisitStatus.RECORDED,
                    PositionState.WAITING, None)
                return 0
            if self._clock.now_s() > deadline_s:
                bins, _ = self.router.close_visit()
                message = f"no frames for {self._visit_time_s + self.timeouts.visit_slack_s:.1f} s"
                self._emit("warning", "positions", f"position {position.name}: {message}; skipped this cycle")
                return self._end(index, dataclasses.replace(visit, n_bins=bins), VisitStatus.SKIPPED,
                                 PositionState.SKIPPED, message)
        bins, end_s = self.router.close_visit()
        self._end(index, dataclasses.replace(visit, n_bins=bins, end_time_s=end_s), VisitStatus.RECORDED,
                  PositionState.WAITING, None)
        return 1

    def _end(self, index: int, visit: Visit, status: VisitStatus, state: PositionState, error: str | None) -> int:
        if math.isnan(visit.end_time_s):
            visit = dataclasses.replace(visit, end_time_s=self._clock.now_s())
        visit = dataclasses.replace(visit, status=status.value)
        self.visits.append(visit)
        self._writer.write_visit(visit)
        target = self.router.targets[index]
        changes: dict[str, Any] = {"state": state, "visits": target.visits_recorded, "bins": target.bins}
        if status is not VisitStatus.RECORDED or error is not None:
            changes["last_error"] = error
        self._set(index, **changes)
        return 0

    def _refresh_target(self, position: StagePosition) -> None:
        """An image-based lock target refresh at this position when one is configured and due."""
        refresher = self._refresher_of() if self._use_lock else None
        interval_s = getattr(getattr(refresher, "settings", None), "interval_s", None)
        last_s = self._refreshed_at_s.get(position.name)
        if interval_s is None or last_s is not None and self._clock.now_s() - last_s < interval_s:
            return
        try:
            result = refresher.refresh_now()
        except Exception as exc:  # noqa: BLE001 - a failed check keeps the old target; the visit goes on
            self._emit("warning", "positions", f"position {position.name}: lock target refresh failed ({exc})")
            return
        finally:
            self._refreshed_at_s[position.name] = self._clock.now_s()
        correction = self.target_corrections_nm.get(position.name, 0.0) + (result.change_nm if result.applied else 0.0)
        self.target_corrections_nm[position.name] = correction
        self._emit("info", "positions", f"position {position.name}: lock target "
                                        f"{'moved' if result.applied else 'kept'} {result.change_nm:+.0f} nm by the "
                                        f"image-based refresh; its correction is now {correction:+.0f} nm")

    # ------------------------------------------------------------------ devices
    def _camera_time_now_ns(self) -> int | None:
        """The camera's latched time stamp (None: no latch, or the camera is away; the router estimates)."""
        try:
            return self._rig.camera.timestamp_now_ns()
        except Exception as exc:  # noqa: BLE001 - a lost camera shows in the capture; gate by estimate
            log.warning("camera time stamp not latched (%s): visit window from the rig clock estimate", exc)
            return None

    def _move(self, position: StagePosition) -> None:
        stage = self._rig.stage
        if self._stage_lost and hasattr(stage, "reconnect"):
            stage.reconnect()
            self._stage_lost = False
            self._emit("info", "positions", "stage link re-established")
        targets = {"x": position.x_um * 1000.0, "y": position.y_um * 1000.0}
        if math.isfinite(self._z_reference_nm):
            targets["z"] = self._z_reference_nm + position.z_offset_um * 1000.0
        stage.move_to(**targets)
        for axis in targets:
            stage.axis(axis).wait_settled(self.timeouts.settle_s, self._clock)

    def _refocus(self, position: StagePosition, stop: threading.Event) -> str | None:
        """Wait until the lock is LOCKED on this position's target; None when it is, else why not."""
        if not self._use_lock:
            return None
        lock = self._focus.existing_lock
        if lock is None or not lock.is_running:
            return f"the focus lock is not running (state {self._focus.state})"
        target_nm = (self._base_offset_nm + position.z_offset_um * 1000.0
                     + self.target_corrections_nm.get(position.name, 0.0))
        if abs(lock.offset_nm - target_nm) > 1e-6:
            try:
                self._focus.set_offset_nm(target_nm)
            except ValueError as exc:
                return str(exc)
        asked_s = self._clock.now_s()
        deadline_s = asked_s + self.timeouts.focus_s
        while not stop.is_set():
            sample = self._focus.latest_sample
            if sample is not None and sample.time_s > asked_s and str(sample.state) == "locked":
                return None
            if self._clock.now_s() > deadline_s:
                return f"not locked within {self.timeouts.focus_s:g} s (state {self._focus.state})"
            self._clock.sleep_s(self.timeouts.poll_s)
        return "stopped"
