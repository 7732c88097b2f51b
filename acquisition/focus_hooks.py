"""Glue between the Microscope and the image-based focus tools (autofocus, lock target refresh,
lock-fault reactions). The Microscope keeps only one-line hooks that call these functions, so the
tools merge onto any version of the engine.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from operascope.acquisition.autofocus import (
    AutofocusResult,
    AutofocusSettings,
    CameraFrameSource,
    FrameSource,
    LiveFrameSource,
    run_autofocus,
)

log = logging.getLogger(__name__)

__all__ = ["frame_source_for", "scope_autofocus"]


def frame_source_for(scope: Any) -> FrameSource:
    """The live view's frames while the camera streams, else the camera read directly."""
    if scope.is_live:
        return LiveFrameSource(scope.latest_frame, latch=scope.camera.timestamp_now_ns)
    return CameraFrameSource(scope.camera)


#: Event text before the lock-fault summary JSON (read back by analysis/lock_fault_fields.py).
LOCK_SUMMARY_PREFIX = "lock fault summary "

#: Run-file event messages are stored in 512-byte fields: each result event stays below this.
EVENT_TEXT_LIMIT = 500


def result_event_texts(result: AutofocusResult) -> list[str]:
    """The autofocus result as compact JSON events (fit, fine curve, coarse curve), each < 500 chars."""
    fit = result.fit
    head = {"best_z_nm": round(result.best_z_nm, 1), "start_z_nm": round(result.start_z_nm, 1), "metric": result.metric,
            "z0_sigma_nm": round(fit.z0_sigma_nm, 2), "a": float(f"{fit.a:.5g}"), "c": float(f"{fit.c:.5g}"),
            "r2": round(fit.r2, 4), "planes": result.planes, "duration_s": round(result.duration_s, 2)}
    texts = ["autofocus fit " + json.dumps(head, separators=(",", ":"))]
    for name, z, values in (("fine", result.z_nm, result.values), ("coarse", result.coarse_z_nm, result.coarse_values)):
        if z:
            curve = {"z_nm": [round(v, 1) for v in z], "values": [float(f"{v:.4g}") for v in values]}
            texts.append(f"autofocus {name} curve " + json.dumps(curve, separators=(",", ":")))
    return [text[:EVENT_TEXT_LIMIT] for text in texts]


def scope_autofocus(scope: Any, settings: AutofocusSettings | None = None) -> AutofocusResult:
    """Autofocus the microscope's z axis; a running focus lock is released and re-engaged at best focus.

    Emits two events (source ``autofocus``): a one-line summary and the result as JSON.
    """
    lock = scope.focus.existing_lock
    was_locked = lock is not None and lock.is_running
    if was_locked:
        lock.unlock()
    fiducial = scope.config.acquisition.fiducial_xy_px
    try:
        result = run_autofocus(scope.stage.axis("z"), scope.clock, frame_source_for(scope), settings,
                               fiducial_xy_px=tuple(fiducial) if fiducial is not None else None)
    except Exception as exc:
        scope.events.emit("error", "autofocus", f"autofocus failed: {exc}")
        if was_locked:
            lock.lock()
        raise
    scope.events.emit("info", "autofocus", result.summary())
    for text in result_event_texts(result):
        scope.events.emit("info", "autofocus", text)
    for note in result.notes:
        scope.events.emit("warning", "autofocus", note)
    if was_locked:
        lock.lock()
    return result


class RecordFocusServices:
    """What runs beside the focus lock during ``Microscope.record``: the lock-fault monitor
    (acquisition/lock_faults.py) and the scheduled lock target refresh (acquisition/focus_refresh.py)."""

    def __init__(self, scope: Any) -> None:
        from operascope.acquisition.focus_refresh import FocusRefresher, RefreshSettings
        from operascope.acquisition.lock_faults import LockFaultMonitor

        self._scope = scope
        cfg = scope.config.focus_lock
        lock = scope.focus_lock
        emit_lock = lambda level, message: scope.events.emit(level, "focus_lock", message)  # noqa: E731
        self.monitor = LockFaultMonitor(lambda: lock.state, scope.clock.now_s, emit_lock, cfg.on_fault,
                                        request_stop=scope.request_stop, recentre=self._recentre,
                                        t0_s=scope.recording.session.t0_s if scope.recording.session is not None else 0.0)
        self.refresher = None
        if cfg.refresh_interval_s is not None:
            settings = RefreshSettings(interval_s=cfg.refresh_interval_s, planes=cfg.refresh_planes,
                                       step_nm=cfg.refresh_step_nm, max_change_nm=cfg.refresh_max_change_nm)
            fiducial = scope.config.acquisition.fiducial_xy_px
            self.refresher = FocusRefresher(
                lock, scope.clock, LiveFrameSource(scope.latest_frame, latch=scope.camera.timestamp_now_ns), settings,
                emit=lambda level, message: scope.events.emit(level, "focus_refresh", message),
                may_run=self._may_refresh if cfg.refresh_between_bins else self._single_position,
                fiducial_xy_px=tuple(fiducial) if fiducial is not None else None)
        self._unsubscribe = scope.subscribe_events(self._on_event)

    def _on_event(self, event: Any) -> None:
        if event.source == "focus_lock" and not event.message.startswith("FOCUS LOCK FAULT"):
            self.monitor.note_event(event.level, event.message)

    def _single_position(self) -> bool:
        """False during a multi-position run: a scheduled refresh would step the lock while the stage moves
        between fields (each position has its own lock target, set by the position schedule)."""
        schedule = getattr(self._scope, "position_schedule", None)
        return schedule is None or not schedule.is_running

    def _may_refresh(self) -> bool:
        return self._single_position() and self._between_bins()

    def _between_bins(self) -> bool:
        """True while the current bin holds at most one frame (a bin was just completed)."""
        session = self._scope.recording.session
        return session is not None and session.binner.frames_in % session.binner.bin_size <= 1

    def _recentre(self) -> None:
        self._scope.autofocus()
        self._scope.focus_lock.lock()

    def start(self) -> "RecordFocusServices":
        self.monitor.start()
        if self.refresher is not None:
            self.refresher.start()
        return self

    def stop(self) -> Any:
        """Stop both; returns the LockFaultSummary."""
        if self.refresher is not None:
            self.refresher.stop()
        summary = self.monitor.stop()
        self._unsubscribe()
        level = "warning" if summary.faults or summary.unlocked_s > 0 else "info"
        self._scope.events.emit(level, "focus_lock", summary.text())
        self._scope.events.emit("info", "focus_lock", LOCK_SUMMARY_PREFIX + json.dumps(summary.to_dict()))
        return summary


def with_focus_summary(summary: Any, focus: Any) -> Any:
    """The RunSummary with the lock faults and unlocked time, and the stop reason saying so."""
    import dataclasses

    faults = tuple(f"{time_s:.1f} s: {message}" for time_s, message in focus.faults)
    reason = summary.stop_reason
    if faults and "focus lock fault" not in reason:
        reason += f"; focus lock fault at {focus.faults[0][0]:.0f} s, unlocked {focus.unlocked_s:.0f} s"
    return dataclasses.replace(summary, focus_faults=faults, focus_unlocked_s=focus.unlocked_s, stop_reason=reason)


def scope_refresh_now(scope: Any) -> Any:
    """One lock target refresh now (on demand); the lock must be running. Returns the RefreshResult."""
    from operascope.acquisition.focus_refresh import FocusRefresher, RefreshSettings

    lock = scope.focus.existing_lock
    if lock is None or not lock.is_running:
        raise RuntimeError("a lock target refresh needs a running focus lock; lock first")
    services = scope.focus_services
    if services is not None and services.refresher is not None:
        return services.refresher.refresh_now()
    cfg = scope.config.focus_lock
    fiducial = scope.config.acquisition.fiducial_xy_px
    refresher = FocusRefresher(lock, scope.clock, frame_source_for(scope),
                               RefreshSettings(planes=cfg.refresh_planes, step_nm=cfg.refresh_step_nm,
                                               max_change_nm=cfg.refresh_max_change_nm),
                               emit=lambda level, message: scope.events.emit(level, "focus_refresh", message),
                               fiducial_xy_px=tuple(fiducial) if fiducial is not None else None)
    return refresher.refresh_now()
