"""Microscope: the headless engine facade (notebooks, CLI, GUI); satisfies :class:`EngineAPI`.

    with Microscope.from_config(None, speed=10) as scope:
        summary = scope.record("run.h5", duration_s=60, protocol="charge", bin_size=20)

The work is done by small services that own their state: :class:`LiveView` (camera -> binner ->
differential), :class:`RecordingService` (sessions, writer, summaries), :class:`FocusService` (lock,
laser rule, calibration, published samples and profiles) and :class:`ProtocolService`. Opens every
device on ``__enter__``; ``__exit__`` stops protocols -> camera -> focus lock -> writer -> devices.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

from operascope.acquisition import record_loop
from operascope.acquisition.echem_history import EchemHistory
from operascope.acquisition.engine_commands import EngineCommands
from operascope.acquisition.events import Event, EventBus
from operascope.acquisition.focus_service import FocusService
from operascope.acquisition.live_differential import DifferentialFrame
from operascope.acquisition.live_view import LiveView
from operascope.acquisition.manual_control import ManualControl
from operascope.acquisition.protocol_runner import ProtocolRunner
from operascope.acquisition.protocol_service import ProtocolService
from operascope.acquisition.protocols import ProtocolSpec
from operascope.acquisition.recording import RecordingService
from operascope.acquisition.rig import Rig, build_rig
from operascope.acquisition.settings import check_bin_size, check_duration, config_with_overrides
from operascope.acquisition.status import MicroscopeStatus, RunSummary, build_status
from operascope.config.schema import RigConfig
from operascope.devices.base import Frame, Roi

__all__ = ["Microscope", "MicroscopeStatus", "RunSummary"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[MicroscopeStatus], None]


class Microscope(EngineCommands):
    """The whole rig as one object. Use as a context manager."""

    def __init__(self, config: RigConfig, rig_factory: Callable[[RigConfig], Rig] | None = None,
                 queue_memory_mb: float = 512.0) -> None:
        """``rig_factory(config) -> Rig`` (unopened) replaces :func:`operascope.acquisition.rig.build_rig` (tests).
        Must-not-drop queues hold at most ``acquisition.queue_frames`` items and about ``queue_memory_mb`` MB."""
        if not queue_memory_mb > 0:
            raise ValueError(f"queue_memory_mb must be > 0, got {queue_memory_mb}")
        self.queue_memory_mb = float(queue_memory_mb)
        self.config = config
        self._rig_factory = rig_factory or build_rig
        self.rig: Rig | None = None
        self.events: EventBus = EventBus(self._now_s)
        self.echem = EchemHistory(config.sample.active_mass_mg)
        self.focus = FocusService(config.focus_lock, self.events,
                                  on_calibration=lambda: self.recording.record_new_calibration(self._now_s()))
        self.recording = RecordingService(config, self.events, self.echem, self.focus, self._queue_capacity)
        self.live = LiveView(config.acquisition, self.events, self.echem, self._queue_capacity,
                             lambda: self.recording.is_recording)
        self.protocols = ProtocolService(config, self.events, self.echem, self.recording)
        self.focus.add_listener(self.recording.on_focus_sample)
        self.focus.add_listener(self.live.restart_reference_when_locked)
        self.stop_request = threading.Event()
        self.stop_reason = ""
        #: operator commands (stage moves, LED/laser, protocol) checked by the safety policy and logged as events
        self.manual = ManualControl(config.manual_control, self.require_rig, self._lock_is_active,
                                    lambda: self.is_recording, self.events.emit)
        self.autofocus_before_lock = False   # record(): autofocus after calibrating, before locking
        self.position_schedule: Any = None   # multi-position recordings (acquisition/position_schedule.py)
        self.position_timeouts: Any = None   # ScheduleTimeouts for them (None = defaults)
        self.focus_services: Any = None      # record(): lock-fault monitor + refresh (focus_hooks.py)

    def autofocus(self, settings: Any = None) -> Any:
        """Image-based autofocus (:mod:`operascope.acquisition.autofocus`); returns its AutofocusResult."""
        from operascope.acquisition.focus_hooks import scope_autofocus

        return scope_autofocus(self, settings)

    def refresh_focus_target(self) -> Any:
        """On demand: an image-based check around the locked z that updates the lock offset."""
        from operascope.acquisition.focus_hooks import scope_refresh_now

        return scope_refresh_now(self)

    def _lock_is_active(self) -> bool:
        lock = self.focus.existing_lock
        return bool(lock is not None and lock.is_running)

    @classmethod
    def from_config(cls, config_or_path: RigConfig | str | Path | None = None, **overrides: Any) -> "Microscope":
        """Build from a validated config, a TOML path or None (the simulated rig). ``overrides`` are
        config field names (``speed=100``, ``roi=(0, 0, 64, 64)``, ...) or whole sections as dicts;
        ``operascope.config.loader.ConfigError`` for unknown names or invalid values."""
        return cls(config_with_overrides(config_or_path, overrides))

    def __enter__(self) -> "Microscope":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Open the rig, configure the camera (first: bad settings fail before anything changes), LED on."""
        if self.rig is not None:
            return
        rig = self._rig_factory(self.config)
        rig.open()
        try:
            acq = self.config.acquisition
            roi = Roi(*acq.roi) if acq.roi is not None else None
            rig.camera.configure(acq.exposure_ms, acq.frame_rate_hz, roi, acq.pixel_format, acq.gain_db)
            rig.led.set_current(acq.led_current_a)
            rig.led.enable(True)
        except BaseException:
            rig.close()
            raise
        self.focus.attach(rig)
        self.rig = rig
        self.events.emit("info", "engine", "rig opened: " + ", ".join(
            f"{role}={getattr(self.config.devices, role).driver}" for role in rig.devices))

    def close(self) -> None:
        """Stop everything in order (protocols -> camera -> focus lock -> writer -> devices) and close."""
        rig = self.rig
        if rig is None:
            return
        problems: list[str] = []
        for what, action in (("protocol", self.protocols.stop), ("camera", self.live.stop_capture),
                             ("focus lock", self.focus.close), ("recording", self.stop_recording),
                             ("pipeline", self.live.stop), ("laser", lambda: rig.laser.enable(False)),
                             ("led", lambda: rig.led.enable(False))):
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - keep closing the rest
                log.warning("while closing the %s", what, exc_info=True)
                problems.append(f"{what}: {exc}")
        problems += rig.close()
        self.rig = None
        for problem in problems:
            self.events.emit("warning", "engine", f"while closing: {problem}")

    def require_rig(self) -> Rig:
        if self.rig is None:
            raise RuntimeError("the microscope is not open; use it as a context manager (with ... as scope:)")
        return self.rig

    def _now_s(self) -> float:
        return self.rig.clock.now_s() if self.rig is not None else time.monotonic()

    def _queue_capacity(self, item_bytes: int, minimum: int = 4) -> int:
        """Items a must-not-drop queue may hold: queue_frames, capped by queue_memory_mb."""
        by_memory = int(self.queue_memory_mb * 1e6 // max(item_bytes, 1))
        return max(minimum, min(self.config.acquisition.queue_frames, by_memory))

    # ------------------------------------------------------------------ devices (notebooks; clients use EngineCommands)
    clock = property(lambda self: self.require_rig().clock)
    world = property(lambda self: self.require_rig().world, doc="The simulated world (None on hardware).")
    camera = property(lambda self: self.require_rig().camera)
    stage = property(lambda self: self.require_rig().stage)
    led = property(lambda self: self.require_rig().led)
    laser = property(lambda self: self.require_rig().laser)
    potentiostat = property(lambda self: self.require_rig().potentiostat)
    focus_lock = property(lambda self: self.focus.lock, doc="The FocusLock, created on first use.")
    pipeline = property(lambda self: self.live.pipeline)

    # ------------------------------------------------------------------ subscriptions
    def subscribe_events(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` (on engine threads) for every event; returns an unsubscribe function."""
        return self.events.subscribe(callback)

    def subscribe_focus_samples(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(FocusSample)`` (on the focus-lock thread) for every loop sample."""
        return self.focus.subscribe_samples(callback)

    # ------------------------------------------------------------------ live view
    is_live = property(lambda self: self.live.is_live)
    live_mask = property(lambda self: self.live.mask, doc="The live differential's frozen mask (None before I_1).")
    live_reference = property(lambda self: self.live.differential.reference,
                              doc="The live differential's reference frame I_1 (None before the first bin).")

    def start_live(self) -> None:
        """Start the camera stream, the binner/differential thread and the live view (idempotent)."""
        self.live.start(self.require_rig().camera)

    def stop_live(self) -> None:
        """Stop the camera and the live pipeline (ends a running protocol and recording first)."""
        self.protocols.stop()
        self.live.stop_capture()
        self.stop_recording("stopped")
        self.live.stop()

    def latest_frame(self) -> Frame | None:
        return self.live.latest_frame()

    def latest_differential(self) -> DifferentialFrame | None:
        return self.live.latest_differential()

    def set_fiducial(self, x_px: float, y_px: float) -> None:
        """Use the spot near (x_px, y_px) for drift correction; the live reference restarts."""
        self.live.set_fiducial(x_px, y_px)

    # ------------------------------------------------------------------ recording and protocols
    is_recording = property(lambda self: self.recording.is_recording)

    def start_recording(self, out_path: str | Path, bin_size: int | None = None, save_raw: bool | None = None,
                        duration_s: float | None = None, title: str | None = None, ocv_when_idle: bool = True,
                        overwrite: bool = False, positions: Any = None, dwell_bins: int = 1) -> None:
        """Create the run file and record until :meth:`stop_recording` (``duration_s`` is shown only);
        with no protocol running (and ``ocv_when_idle``) the potentiostat records the open-circuit voltage.
        An existing file at ``out_path`` is refused unless ``overwrite``. ``positions`` (a PositionList or a
        TOML path): cycle through them, ``dwell_bins`` bins per visit, one record per position."""
        rig = self.require_rig()
        if self.recording.session is not None:
            raise RuntimeError(f"already recording to {self.recording.session.writer.setup.path}; stop it first")
        bin_size = check_bin_size(self.config.acquisition.bin_size if bin_size is None else bin_size)
        check_duration(duration_s)
        save_raw = self.config.acquisition.save_raw if save_raw is None else bool(save_raw)
        path = Path(out_path)
        if not path.parent.is_dir():
            raise FileNotFoundError(f"output folder {path.parent} does not exist")
        plist = router = None
        if positions is not None:
            from operascope.acquisition.position_recording import prepare_positions

            plist, router = prepare_positions(self, positions, bin_size, dwell_bins)
        elif dwell_bins != 1:
            raise ValueError(f"dwell_bins={dwell_bins!r} needs positions (a multi-position run)")
        if ocv_when_idle:   # before the first frame, so the first bin has a voltage too
            points_before = len(self.echem)
            self.protocols.start_background_ocv(rig)
            deadline = time.monotonic() + 2.0
            while self.protocols.is_running and len(self.echem) == points_before and time.monotonic() < deadline:
                time.sleep(0.005)
        try:
            self.recording.start(rig, self.live.start(rig.camera), path, bin_size, save_raw, duration_s, title,
                                 overwrite=overwrite, positions=plist, router=router)
        except BaseException:
            self.protocols.stop_background_ocv()
            raise
        if router is not None:
            from operascope.acquisition.position_recording import start_schedule

            self.position_schedule = start_schedule(self, plist, router, self.position_timeouts)

    def stop_recording(self, reason: str = "stopped") -> RunSummary | None:
        """Flush the partial bin, close the run file and return its summary (None if not recording)."""
        protocol_end = self.protocols.end_reason
        if self.position_schedule is not None and self.position_schedule.is_running:
            self.position_schedule.stop()   # no new visit; the open one's partial bin is flushed below
        self.protocols.stop_background_ocv()
        return self.recording.end(self.live.pipeline, self._now_s(), reason, protocol_end)

    def make_protocol(self, protocol: Any, duration_s: float | None = None) -> ProtocolSpec:
        """A :class:`ProtocolSpec` from a kind name, a spec or a request object (defaults from the config)."""
        return self.protocols.make(protocol, duration_s)

    def start_protocol(self, protocol: Any, duration_s: float | None = None) -> ProtocolRunner:
        """Start a protocol in its own thread (see :meth:`make_protocol`)."""
        return self.protocols.start(self.require_rig(), protocol, duration_s)

    def stop_protocol(self) -> None:
        """Stop the running protocol (the cell is switched off). Idempotent."""
        self.protocols.stop()

    protocol = property(lambda self: self.protocols.runner)

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask a running :meth:`record` to stop cleanly (safe from signal handlers and other threads)."""
        self.stop_reason = reason
        self.stop_request.set()

    def record(self, out_path: str | Path, duration_s: float | None = None, protocol: Any = None,
               bin_size: int | None = None, progress: ProgressCallback | None = None,
               save_raw: bool | None = None, focus_lock: bool | None = None,
               progress_interval_s: float = 0.5, overwrite: bool = False, positions: Any = None,
               dwell_bins: int = 1) -> RunSummary:
        """Record until ``duration_s`` (rig s) has passed or the protocol ("ocv", "charge", "discharge",
        "cycle", "gitt" or a ProtocolSpec) ends. ``focus_lock`` None = config.focus_lock.enabled;
        ``progress(status)`` about every ``progress_interval_s`` wall s. Ctrl-C or :meth:`request_stop`
        end the run cleanly; the file keeps every completed bin. An existing file is refused unless ``overwrite``.
        ``positions`` (PositionList or TOML path): cycle through them during the run, ``dwell_bins`` bins per
        visit, one record per position (see :mod:`operascope.acquisition.position_schedule`)."""
        return record_loop.record(self, out_path, duration_s, protocol, bin_size, progress, save_raw,
                                  focus_lock, progress_interval_s, overwrite=overwrite, positions=positions,
                                  dwell_bins=dwell_bins)

    # ------------------------------------------------------------------ status
    def position_statuses(self) -> list[Any]:
        """Each position's :class:`~operascope.acquisition.position_state.PositionStatus` (of the last
        multi-position recording; empty otherwise)."""
        schedule = self.position_schedule
        return schedule.statuses() if schedule is not None else []

    def failure(self) -> str | None:
        """Why the pipeline or the writer failed (None while all is well)."""
        return self.live.failure() or self.recording.writer_error()

    def status(self) -> MicroscopeStatus:
        """A snapshot of counts, queue depths, state, voltage and focus."""
        return build_status(self, self._now_s())
