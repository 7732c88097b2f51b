"""The one-call recording (``Microscope.record``): engage, record, wait, ordered stop."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from operascope.acquisition.protocols import ProtocolSpec
from operascope.acquisition.settings import check_bin_size, check_duration
from operascope.acquisition.status import MicroscopeStatus, RunSummary

if TYPE_CHECKING:
    from operascope.acquisition.microscope import Microscope

log = logging.getLogger(__name__)

ProgressCallback = Callable[[MicroscopeStatus], None]


def record(scope: "Microscope", out_path: str | Path, duration_s: float | None, protocol: Any,
           bin_size: int | None, progress: ProgressCallback | None, save_raw: bool | None,
           focus_lock: bool | None, progress_interval_s: float, overwrite: bool = False, positions: Any = None,
           dwell_bins: int = 1) -> RunSummary:
    """See :meth:`operascope.acquisition.microscope.Microscope.record`."""
    scope.require_rig()
    check_duration(duration_s)
    bin_size = check_bin_size(scope.config.acquisition.bin_size if bin_size is None else bin_size)
    if duration_s is None and protocol is None:
        raise ValueError("give duration_s, a protocol, or both (otherwise the run would never end)")
    spec = scope.make_protocol(protocol, duration_s) if protocol is not None else None
    use_lock = scope.config.focus_lock.enabled if focus_lock is None else bool(focus_lock)
    stop = scope.stop_request
    if stop.is_set():   # e.g. Ctrl-C while the rig was opening: do not start at all
        stop.clear()
        raise InterruptedError(f"{scope.stop_reason or 'stop requested'} before the recording started")
    reason = "duration reached"
    started_live = not scope.is_live
    try:
        if scope.autofocus_before_lock and not use_lock:   # autofocus without a lock
            scope.autofocus()
        if use_lock:
            scope.focus.engage(before_lock=scope.autofocus if scope.autofocus_before_lock else None)
        scope.start_recording(out_path, bin_size=bin_size, save_raw=save_raw, duration_s=duration_s,
                              ocv_when_idle=spec is None, overwrite=overwrite, positions=positions,
                              dwell_bins=dwell_bins)
        if use_lock:   # lock-fault monitor + lock target refresh (acquisition/focus_hooks.py)
            from operascope.acquisition.focus_hooks import RecordFocusServices

            scope.focus_services = RecordFocusServices(scope).start()
        if spec is not None:
            scope.start_protocol(spec)
        reason = _wait_until_done(scope, spec, duration_s, progress, progress_interval_s)
    except KeyboardInterrupt:
        reason = "interrupted (Ctrl-C)"
    except BaseException as exc:
        reason = f"error: {type(exc).__name__}: {exc}"
        raise
    finally:
        summary = _finish(scope, reason, started_live, use_lock)
        stop.clear()
    if summary is None:
        raise RuntimeError(f"recording did not start ({reason})")
    if progress is not None:
        progress(scope.status())
    return summary


def _wait_until_done(scope: "Microscope", spec: ProtocolSpec | None, duration_s: float | None,
                     progress: ProgressCallback | None, progress_interval_s: float) -> str:
    """Block until the run should end; return why."""
    clock = scope.require_rig().clock
    session = scope.recording.session
    t0 = session.t0_s if session is not None else clock.now_s()
    next_progress = 0.0
    while True:
        if scope.stop_request.wait(0.05):
            return scope.stop_reason or "stop requested"
        if duration_s is not None and clock.now_s() - t0 >= duration_s:
            return "duration reached"
        runner = scope.protocol
        if spec is not None and runner is not None and runner.done.is_set():
            return f"protocol ended ({runner.end_reason})"
        failure = scope.failure()
        if failure:
            return f"error: {failure}"
        if progress is not None and time.monotonic() >= next_progress:
            progress(scope.status())
            next_progress = time.monotonic() + progress_interval_s


def _finish(scope: "Microscope", reason: str, stop_live: bool, unlock: bool) -> RunSummary | None:
    """Ordered stop: protocol -> camera -> focus lock -> writer.

    The camera stops before the lock lets go, so no frame of the run is taken unlocked; the focus services
    (a refresh waits for frames) stop first.
    """
    focus_summary = None
    if scope.position_schedule is not None and scope.position_schedule.is_running:
        scope.position_schedule.stop()   # first: no visit starts or waits on a lock that is about to let go
    if scope.focus_services is not None:
        focus_summary, scope.focus_services = scope.focus_services.stop(), None
    try:
        scope.stop_protocol()
    except Exception as exc:  # noqa: BLE001
        scope.events.emit("warning", "engine", f"while stopping: {exc}")
    if stop_live:
        scope.live.stop_capture()
    if unlock:
        try:
            scope.focus.unlock()
        except Exception as exc:  # noqa: BLE001
            scope.events.emit("warning", "engine", f"while stopping: {exc}")
    summary = scope.stop_recording(reason)
    if stop_live:
        scope.live.stop()
    if summary is not None and focus_summary is not None:
        from operascope.acquisition.focus_hooks import with_focus_summary

        summary = with_focus_summary(summary, focus_summary)
    return summary
