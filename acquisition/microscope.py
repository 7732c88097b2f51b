"""Microscope: the headless engine API (notebooks, CLI, GUI).

    with Microscope.from_config(None, speed=10) as scope:
        summary = scope.record("run.h5", duration_s=60, protocol="charge", bin_size=20)

Opens every device on ``__enter__``; on ``__exit__`` stops in order: protocols -> focus lock ->
camera -> writer -> devices. No thread here calls Qt.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any, Callable

from operascope.acquisition.binner import Binner
from operascope.acquisition.echem_history import EchemHistory, EchemSample
from operascope.acquisition.events import Event, EventBus
from operascope.acquisition.housekeeping import DeviceLogger
from operascope.acquisition.live_differential import DifferentialFrame, LiveDifferential
from operascope.acquisition.pipeline import FramePipeline, RecordingSession
from operascope.acquisition.protocol_runner import ProtocolRunner
from operascope.acquisition.protocols import ProtocolSpec, ProtocolStep
from operascope.acquisition.rig import Rig, build_rig
from operascope.acquisition.run_writer import RunSetup, RunWriter
from operascope.acquisition.settings import check_bin_size, check_duration, config_with_overrides
from operascope.acquisition.status import MicroscopeStatus, RunSummary
from operascope.config.loader import to_toml
from operascope.config.schema import RigConfig
from operascope.devices.base import Frame, Roi

__all__ = ["Microscope", "MicroscopeStatus", "RunSummary"]

ProgressCallback = Callable[[MicroscopeStatus], None]
#: Upper bound of focus-lock loop iterations per wall second (matters only for fast simulations).
MAX_FOCUS_LOOP_WALL_HZ = 100.0


class Microscope:
    """The whole rig as one object. Use as a context manager."""

    def __init__(self, config: RigConfig, rig_factory: Callable[[RigConfig], Rig] | None = None,
                 queue_memory_mb: float = 512.0) -> None:
        """``rig_factory(config) -> Rig`` (unopened) replaces :func:`operascope.acquisition.rig.build_rig` (tests).

        Must-not-drop queues hold at most ``acquisition.queue_frames`` items and at most about
        ``queue_memory_mb`` MB of frames each (a full 1920x1200 frame is 4.6 MB as uint16).
        """
        if not queue_memory_mb > 0:
            raise ValueError(f"queue_memory_mb must be > 0, got {queue_memory_mb}")
        self.queue_memory_mb = float(queue_memory_mb)
        self.config = config
        self._rig_factory = rig_factory or build_rig
        self.rig: Rig | None = None
        self.events: EventBus = EventBus(self._now_s)
        acq = config.acquisition
        self._differential = LiveDifferential(acq.mask_threshold, acq.drift_correction, acq.fiducial_xy_px,
                                              acq.fiducial_box_px)
        self._pipeline: FramePipeline | None = None
        self._session: RecordingSession | None = None
        self._last_session: RecordingSession | None = None
        self._device_logger: DeviceLogger | None = None
        self._focus_lock: Any = None
        self._focus_subscribers: list[Callable[[Any], None]] = []
        self._latest_focus: Any = None
        self.echem = EchemHistory(config.sample.active_mass_mg)
        self._protocol: ProtocolRunner | None = None
        self._echem_lock = threading.Lock()
        self._echem_writer: RunWriter | None = None
        self._protocol_rows: list[tuple[ProtocolStep, float]] = []
        self._stop_request = threading.Event()
        self._stop_reason = ""
        self.autofocus_before_lock = False   # record(): autofocus after calibrating, before locking
        self._focus_services: Any = None     # record(): lock-fault monitor + refresh (focus_hooks.py)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config_or_path: RigConfig | str | Path | None = None, **overrides: Any) -> "Microscope":
        """Build from a validated config, a TOML path or None (the simulated rig).

        ``overrides`` are field names of the config sections (``speed=100``, ``bin_size=10``,
        ``roi=(0, 0, 64, 64)``, ``seed=1``, ...) or whole sections as dicts. Raises
        ``operascope.config.loader.ConfigError`` for unknown names or invalid values.
        """
        return cls(config_with_overrides(config_or_path, overrides))

    def __enter__(self) -> "Microscope":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Build and open the rig, configure the camera (first, so bad settings fail before anything
        else changes), then switch the LED on at the configured current."""
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
        self.rig = rig
        self.events.emit("info", "engine", "rig opened: " + ", ".join(
            f"{role}={getattr(self.config.devices, role).driver}" for role in rig.devices))

    def close(self) -> None:
        """Stop everything in order (protocols -> camera -> focus lock -> writer -> devices) and close."""
        if self.rig is None:
            return
        problems: list[str] = []
        for what, action in (("protocol", self.stop_protocol), ("camera", self._stop_capture),
                             ("focus lock", self._close_focus_lock), ("recording", self._end_session),
                             ("pipeline", self._stop_pipeline), ("laser", lambda: self.rig.laser.enable(False)),
                             ("led", lambda: self.rig.led.enable(False))):
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - keep closing the rest
                problems.append(f"{what}: {exc}")
        problems += self.rig.close()
        self.rig = None
        for problem in problems:
            self.events.emit("warning", "engine", f"while closing: {problem}")

    def _require_rig(self) -> Rig:
        if self.rig is None:
            raise RuntimeError("the microscope is not open; use it as a context manager (with ... as scope:)")
        return self.rig

    def _now_s(self) -> float:
        return self.rig.clock.now_s() if self.rig is not None else time.monotonic()

    # ------------------------------------------------------------------ devices
    @property
    def clock(self):
        return self._require_rig().clock

    @property
    def world(self) -> Any:
        """The simulated world (None on hardware)."""
        return self._require_rig().world

    @property
    def camera(self):
        return self._require_rig().camera

    @property
    def stage(self):
        return self._require_rig().stage

    @property
    def led(self):
        return self._require_rig().led

    @property
    def laser(self):
        return self._require_rig().laser

    @property
    def potentiostat(self):
        return self._require_rig().potentiostat

    # ------------------------------------------------------------------ focus lock
    @property
    def focus_lock(self) -> Any:
        """The focus lock (``operascope.acquisition.focus_lock.FocusLock``), created on first use."""
        rig = self._require_rig()
        if self._focus_lock is None:
            from operascope.acquisition.focus_lock import FocusLock

            lock_config = self.config.focus_lock
            if lock_config.rate_hz * rig.clock.speed > MAX_FOCUS_LOOP_WALL_HZ:
                # A simulation faster than real time would ask for thousands of loops per wall second.
                capped_hz = max(1.0, MAX_FOCUS_LOOP_WALL_HZ / rig.clock.speed)
                lock_config = lock_config.model_copy(update={"rate_hz": capped_hz})
                self.events.emit("info", "focus_lock", f"clock runs {rig.clock.speed:g}x real time: focus-lock rate "
                                                       f"capped at {capped_hz:.3g} Hz of rig time "
                                                       f"({MAX_FOCUS_LOOP_WALL_HZ:g} loops per wall second)")
            self._focus_lock = FocusLock(rig.focus_sensor, rig.stage.axis("z"), rig.clock, lock_config,
                                         on_sample=self._on_focus_sample, on_event=self._on_focus_event)
        return self._focus_lock

    def _on_focus_event(self, level: str, message: str) -> None:
        self.events.emit(level, "focus_lock", message)
        self._record_new_calibration()

    def _record_new_calibration(self) -> None:
        """Write the focus calibration to the run file when a new one appeared (GUI calibrations too)."""
        calibration = getattr(self._focus_lock, "calibration", None)
        session = self._session
        if session is None or calibration is None or calibration is session.calibration_written:
            return
        session.calibration_written = calibration
        data = _calibration_dict(self._focus_lock)
        if data is not None:
            session.writer.write_focus_calibration(self._now_s(), data)

    def _on_focus_sample(self, sample: Any) -> None:
        previous, self._latest_focus = self._latest_focus, sample
        if (previous is not None and previous.state == "locking" and sample.state == "locked"
                and self._session is None):
            # Live only: the reference may have been taken defocused (e.g. during the calibration
            # scan); start again in focus. Never during a recording, whose I_1 must not change.
            self._differential.reset()
            self.events.emit("info", "differential", "focus locked: live differential reference restarted")
        session = self._session
        if session is not None:
            session.writer.write_focus_sample(sample)
        for callback in list(self._focus_subscribers):
            try:
                callback(sample)
            except Exception:  # noqa: BLE001 - a subscriber must not break the lock loop
                pass

    def _close_focus_lock(self) -> None:
        if self._focus_lock is not None:
            self._focus_lock.close()
            self._focus_lock = None

    def _engage_focus_lock(self) -> None:
        """Laser on, calibrate (or load config.focus_lock.calibration_file), lock."""
        lock = self.focus_lock
        rig = self._require_rig()
        rig.laser.set_power(self.config.focus_lock.laser_power_w)
        rig.laser.enable(True)
        cal_file = self.config.focus_lock.calibration_file
        if cal_file and Path(cal_file).is_file():
            lock.load_calibration(cal_file)
            self.events.emit("info", "focus_lock", f"calibration loaded from {cal_file}")
        else:
            lock.calibrate()
            if cal_file:
                lock.save_calibration(cal_file)
        if self.autofocus_before_lock:   # hook: acquisition/autofocus.py (issue 15 item 1)
            self.autofocus()
        lock.lock()

    # ------------------------------------------------------------------ autofocus (hook)
    def autofocus(self, settings: Any = None) -> Any:
        """Image-based autofocus (operascope.acquisition.autofocus); returns its AutofocusResult."""
        from operascope.acquisition.focus_hooks import scope_autofocus

        return scope_autofocus(self, settings)

    def refresh_focus_target(self) -> Any:
        """On demand: an image-based check around the locked z that updates the lock offset (focus_refresh.py)."""
        from operascope.acquisition.focus_hooks import scope_refresh_now

        return scope_refresh_now(self)

    # ------------------------------------------------------------------ subscriptions
    def subscribe_events(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` (on engine threads) for every event; returns an unsubscribe function."""
        return self.events.subscribe(callback)

    def subscribe_focus_samples(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(FocusSample)`` (on the focus-lock thread) for every loop sample."""
        self._focus_subscribers.append(callback)
        return lambda: self._focus_subscribers.remove(callback) if callback in self._focus_subscribers else None

    # ------------------------------------------------------------------ live view
    @property
    def is_live(self) -> bool:
        return self._pipeline is not None and self._pipeline.is_live

    def start_live(self) -> None:
        """Start the camera stream, the binner/differential thread and the live view (idempotent)."""
        rig = self._require_rig()
        if self._pipeline is not None:
            return
        acq = self.config.acquisition
        roi = rig.camera.settings().roi
        pipeline = FramePipeline(rig.camera, self._differential, acq.bin_size,
                                 self._queue_capacity(roi.width * roi.height * 2), self.echem.at, self.events.emit,
                                 acq.read_timeout_s, acq.camera_lost_timeout_s)
        pipeline.start()
        self._pipeline = pipeline
        self.events.emit("info", "engine", "live view started")

    def stop_live(self) -> None:
        """Stop the camera and the live pipeline (ends a running protocol and recording first)."""
        self.stop_protocol()
        self._stop_capture()
        self._end_session("stopped")
        self._stop_pipeline()

    def _stop_capture(self) -> None:
        if self._pipeline is not None:
            self._pipeline.stop_capture()

    def _stop_pipeline(self) -> None:
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None

    def _queue_capacity(self, item_bytes: int, minimum: int = 4) -> int:
        """Items a must-not-drop queue may hold: queue_frames, capped by queue_memory_mb."""
        by_memory = int(self.queue_memory_mb * 1e6 // max(item_bytes, 1))
        return max(minimum, min(self.config.acquisition.queue_frames, by_memory))

    def latest_frame(self) -> Frame | None:
        """The newest camera frame (None before the first)."""
        return self._pipeline.live_frames.peek() if self._pipeline is not None else None

    def latest_differential(self) -> DifferentialFrame | None:
        """The newest live differential image (NaN outside :attr:`live_mask`)."""
        return self._pipeline.live_differentials.peek() if self._pipeline is not None else None

    @property
    def live_mask(self):
        """The frozen particle mask of the live differential (None before the reference)."""
        return self._differential.mask

    def set_fiducial(self, x_px: float, y_px: float) -> None:
        """Use the spot near (x_px, y_px) for drift correction; the live reference restarts."""
        self._differential.set_fiducial(x_px, y_px)
        self._differential.reset()

    # ------------------------------------------------------------------ recording
    @property
    def is_recording(self) -> bool:
        return self._session is not None

    def start_recording(self, out_path: str | Path, bin_size: int | None = None, save_raw: bool | None = None,
                        duration_s: float | None = None, title: str | None = None) -> None:
        """Create the run file and record binned (and optionally raw) frames until :meth:`stop_recording`.

        ``duration_s`` is only shown in the status (``record`` ends the run after it).
        """
        rig = self._require_rig()
        if self._session is not None:
            raise RuntimeError(f"already recording to {self._session.writer.setup.path}; stop that recording first")
        bin_size = check_bin_size(self.config.acquisition.bin_size if bin_size is None else bin_size)
        check_duration(duration_s)
        save_raw = self.config.acquisition.save_raw if save_raw is None else bool(save_raw)
        path = Path(out_path)
        if not path.parent.is_dir():
            raise FileNotFoundError(f"output folder {path.parent} does not exist")
        self.start_live()
        assert self._pipeline is not None
        writer = RunWriter(self._run_setup(path, bin_size, save_raw, title),
                           on_event=lambda level, message: self.events.emit(level, "writer", message))
        writer.start()
        try:
            earlier_events, unsubscribe = self.events.history_then_subscribe(writer.write_event)
            for event in earlier_events:   # what happened since the rig opened (calibration, faults, ...)
                writer.write_event(event)
            session = RecordingSession(writer, Binner(bin_size), save_raw, writer.setup.t0_s, duration_s,
                                       unsubscribe_events=unsubscribe,
                                       calibration_written=getattr(self._focus_lock, "calibration", None))
            with self._echem_lock:   # the protocol's points and steps so far, then every new one
                for sample in self.echem.samples():
                    writer.write_echem(sample)
                for step, start_s in self._protocol_rows:
                    writer.write_technique(step, start_s)
                self._echem_writer = writer
            self._session = self._last_session = session   # focus samples from now on
            self._pipeline.begin(session)                   # frames from the next one in the queue on
        except BaseException:
            self._session = None
            with self._echem_lock:
                self._echem_writer = None
            writer.close("error while starting the recording")
            raise
        self._device_logger = DeviceLogger(rig, writer, self.events.emit)
        self._device_logger.start()
        self.events.emit("info", "engine", f"recording to {path} (bin {bin_size}, raw {'on' if save_raw else 'off'})")

    def _run_setup(self, path: Path, bin_size: int, save_raw: bool, title: str | None) -> RunSetup:
        rig = self._require_rig()
        settings = rig.camera.settings()
        info = rig.camera.info()
        acq = self.config.acquisition
        return RunSetup(
            path=str(path), frame_shape=(settings.roi.height, settings.roi.width), t0_s=rig.clock.now_s(),
            config_toml=to_toml(self.config), title=title or f"operascope run {path.stem}", save_raw=save_raw,
            raw_compression=acq.raw_compression,
            camera={"model": info.model, "serial": info.serial, "exposure_time": settings.exposure_ms,
                    "frame_rate": settings.frame_rate_hz, "pixel_size": acq.pixel_size_nm,
                    "pixel_format": settings.pixel_format, "gain": settings.gain_db,
                    "roi": [settings.roi.x, settings.roi.y, settings.roi.width, settings.roi.height],
                    "bin_size": int(bin_size)},
            sample=self.config.sample.model_dump(),
            particle_geometry=rig.world.particle_geometry() if rig.world is not None else None,
            focus_calibration=_calibration_dict(self._focus_lock),
            flush_interval_s=acq.flush_interval_s,
            queue_capacity=self._queue_capacity(settings.roi.width * settings.roi.height * 4, minimum=16),
            program_version=_program_version(),
        )

    def stop_recording(self, reason: str = "stopped") -> RunSummary | None:
        """Flush the partial bin, close the run file and return its summary (None if not recording)."""
        return self._end_session(reason)

    def _end_session(self, reason: str = "stopped") -> RunSummary | None:
        session = self._session
        if session is None:
            return None
        if self._device_logger is not None:
            self._device_logger.stop()
            self._device_logger = None
        session.stop_reason = reason
        session.end_s = self._now_s()
        self.events.emit("info", "engine", f"recording stopped: {reason}")
        if self._pipeline is not None:
            self._pipeline.end(session)
        self._session = None
        with self._echem_lock:
            self._echem_writer = None
        if session.unsubscribe_events is not None:
            session.unsubscribe_events()
        writer = session.writer
        writer.close(reason, session.frames_in, session.binner.frames_dropped)
        pipeline_error = self._pipeline.error if self._pipeline is not None else None
        return RunSummary(
            path=writer.setup.path, frames_in=session.frames_in, frames_binned=session.binner.frames_in,
            frames_dropped=session.binner.frames_dropped,
            bins=session.binner.bins_out if writer.error is None else writer.bins_flushed,   # what the file holds
            partial_bins=session.partial_bins, raw_frames=session.raw_written,
            duration_s=session.end_s - session.t0_s, stop_reason=reason,
            protocol_end=self._protocol.end_reason if self._protocol is not None else None,
            errors=tuple(e for e in (writer.error, pipeline_error) if e))

    # ------------------------------------------------------------------ protocols
    def make_protocol(self, protocol: Any, duration_s: float | None = None) -> ProtocolSpec:
        """A :class:`ProtocolSpec` from a kind name ("charge", ...), a spec, or a request object with
        the same field names (the GUI's ProtocolRequest). Defaults come from the config."""
        if isinstance(protocol, ProtocolSpec):
            return protocol
        ec = self.config.electrochemistry
        base: dict[str, Any] = dict(
            kind=None, active_mass_mg=self.config.sample.active_mass_mg,
            specific_capacity_mah_g=ec.specific_capacity_mah_g, c_rate=ec.c_rate, v_min=ec.v_min, v_max=ec.v_max,
            duration_s=None, cycles=ec.cycles, gitt_current_ma_g=ec.gitt_current_ma_g, gitt_pulse_s=ec.gitt_pulse_s,
            gitt_rest_s=ec.gitt_rest_s, gitt_initial_rest_s=ec.gitt_initial_rest_s,
            record_interval_s=ec.record_interval_s)
        if isinstance(protocol, str):
            base["kind"] = protocol
            if protocol == "ocv":
                base["duration_s"] = duration_s
        else:
            for name in base:
                if hasattr(protocol, name):
                    base[name] = getattr(protocol, name)
        return ProtocolSpec(**base)

    def start_protocol(self, protocol: Any, duration_s: float | None = None) -> ProtocolRunner:
        """Start a protocol in its own thread (see :meth:`make_protocol`)."""
        rig = self._require_rig()
        spec = self.make_protocol(protocol, duration_s)
        if self._protocol is not None and self._protocol.is_running:
            raise RuntimeError(f"protocol {self._protocol.spec.kind} is still running; stop it first")
        with self._echem_lock:
            self._protocol_rows = []
        runner = ProtocolRunner(rig.potentiostat, rig.clock, spec, self.echem, on_point=self._on_echem_point,
                                on_step=self._on_protocol_step,
                                on_event=lambda level, message: self.events.emit(level, "protocol", message),
                                safety_margin_v=self.config.electrochemistry.safety_margin_v,
                                poll_wall_s=min(0.1, max(0.01, spec.record_interval_s / rig.clock.speed)))
        self._protocol = runner
        runner.start()
        return runner

    def stop_protocol(self) -> None:
        """Stop the running protocol (the cell is switched off). Idempotent."""
        if self._protocol is not None:
            self._protocol.stop()

    @property
    def protocol(self) -> ProtocolRunner | None:
        return self._protocol

    def _on_echem_point(self, sample: EchemSample) -> None:
        with self._echem_lock:
            if self._echem_writer is not None:
                self._echem_writer.write_echem(sample)

    def _on_protocol_step(self, step: ProtocolStep, start_s: float) -> None:
        with self._echem_lock:
            self._protocol_rows.append((step, start_s))
            if self._echem_writer is not None:
                self._echem_writer.write_technique(step, start_s)

    # ------------------------------------------------------------------ one-call recording
    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask a running :meth:`record` to stop cleanly (safe from signal handlers and other threads)."""
        self._stop_reason = reason
        self._stop_request.set()

    def record(self, out_path: str | Path, duration_s: float | None = None, protocol: Any = None,
               bin_size: int | None = None, progress: ProgressCallback | None = None,
               save_raw: bool | None = None, focus_lock: bool | None = None,
               progress_interval_s: float = 0.5) -> RunSummary:
        """Record until ``duration_s`` (rig seconds) has passed or the protocol ends, then close the file.

        ``protocol``: None, a kind ("ocv", "charge", "discharge", "cycle", "gitt") or a ProtocolSpec.
        ``focus_lock`` None = config.focus_lock.enabled. ``progress(status)`` is called about every
        ``progress_interval_s`` wall seconds. Ctrl-C (KeyboardInterrupt) or :meth:`request_stop` end
        the run cleanly; the file keeps every completed bin.
        """
        rig = self._require_rig()
        check_duration(duration_s)
        bin_size = check_bin_size(self.config.acquisition.bin_size if bin_size is None else bin_size)
        if duration_s is None and protocol is None:
            raise ValueError("give duration_s, a protocol, or both (otherwise the run would never end)")
        spec = self.make_protocol(protocol, duration_s) if protocol is not None else None
        use_lock = self.config.focus_lock.enabled if focus_lock is None else bool(focus_lock)
        if self.autofocus_before_lock and not use_lock:   # hook: autofocus without a lock
            self.autofocus()
        if self._stop_request.is_set():   # e.g. Ctrl-C while the rig was opening: do not start at all
            self._stop_request.clear()
            raise InterruptedError(f"{self._stop_reason or 'stop requested'} before the recording started")
        reason = "duration reached"
        started_live = not self.is_live
        try:
            if use_lock:
                self._engage_focus_lock()
            self.start_recording(out_path, bin_size=bin_size, save_raw=save_raw, duration_s=duration_s)
            if use_lock:   # hook: lock-fault monitor + lock target refresh (acquisition/focus_hooks.py)
                from operascope.acquisition.focus_hooks import RecordFocusServices

                self._focus_services = RecordFocusServices(self).start()
            if spec is not None:
                self.start_protocol(spec)
            reason = self._wait_until_done(rig, spec, duration_s, progress, progress_interval_s)
        except KeyboardInterrupt:
            reason = "interrupted (Ctrl-C)"
        except BaseException as exc:
            reason = f"error: {type(exc).__name__}: {exc}"
            raise
        finally:
            summary = self._finish_record(reason, started_live, use_lock)
            self._stop_request.clear()
        if summary is None:
            raise RuntimeError(f"recording did not start ({reason})")
        if progress is not None:
            progress(self.status())
        return summary

    def _wait_until_done(self, rig: Rig, spec: ProtocolSpec | None, duration_s: float | None,
                         progress: ProgressCallback | None, progress_interval_s: float) -> str:
        """Block until the run should end; return why."""
        t0 = self._session.t0_s if self._session is not None else rig.clock.now_s()
        next_progress = 0.0
        while True:
            if self._stop_request.wait(0.05):
                return self._stop_reason or "stop requested"
            if duration_s is not None and rig.clock.now_s() - t0 >= duration_s:
                return "duration reached"
            if spec is not None and self._protocol is not None and self._protocol.done.is_set():
                return f"protocol ended ({self._protocol.end_reason})"
            failure = self._failure()
            if failure:
                return f"error: {failure}"
            if progress is not None and time.monotonic() >= next_progress:
                progress(self.status())
                next_progress = time.monotonic() + progress_interval_s

    def _finish_record(self, reason: str, stop_live: bool, unlock: bool) -> RunSummary | None:
        """Ordered stop: protocol -> camera -> focus lock -> writer.

        The camera stops before the lock lets go, so no frame of the run is taken unlocked.
        """
        focus_summary = None
        if self._focus_services is not None:   # hook: acquisition/focus_hooks.py (refresh needs the camera)
            focus_summary, self._focus_services = self._focus_services.stop(), None
        try:
            self.stop_protocol()
        except Exception as exc:  # noqa: BLE001
            self.events.emit("warning", "engine", f"while stopping: {exc}")
        if stop_live:
            self._stop_capture()
        if unlock and self._focus_lock is not None:
            try:
                self._focus_lock.unlock()
            except Exception as exc:  # noqa: BLE001
                self.events.emit("warning", "engine", f"while stopping: {exc}")
        summary = self._end_session(reason)
        if stop_live:
            self._stop_pipeline()
        if summary is not None and focus_summary is not None:
            from operascope.acquisition.focus_hooks import with_focus_summary

            summary = with_focus_summary(summary, focus_summary)
        return summary

    def _failure(self) -> str | None:
        if self._pipeline is not None and self._pipeline.failure():
            return self._pipeline.failure()
        session = self._session
        if session is not None and session.writer.error:
            return session.writer.error
        return None

    # ------------------------------------------------------------------ status
    def status(self) -> MicroscopeStatus:
        """A snapshot of counts, queue depths, state, voltage and focus."""
        now = self._now_s()
        pipeline = self._pipeline
        capture = pipeline.capture_counts() if pipeline is not None else None
        session = self._session or self._last_session
        writer = session.writer if session is not None else None
        latest = self.echem.latest()
        focus = self._latest_focus
        consumers = pipeline.consumer_counts() if pipeline is not None else []
        if writer is not None:
            consumers.append(writer.queue.counts())
        proto = self._protocol
        if self.rig is None:
            state = "closed"
        else:
            state = "recording" if self._session is not None else ("live" if self.is_live else "idle")
        return MicroscopeStatus(
            state=state, clock_s=now,
            frames_in=capture.frames_in if capture else 0,
            frames_dropped=capture.frames_dropped if capture else 0,
            incomplete_frames=capture.incomplete if capture else 0,
            recording_path=writer.setup.path if writer is not None else None,
            record_elapsed_s=(((session.end_s if session.end_s is not None else now) - session.t0_s)
                              if session is not None else 0.0),
            record_duration_s=session.duration_s if session is not None else None,
            frames_recorded=session.frames_in if session is not None else 0,
            frames_dropped_in_run=session.binner.frames_dropped if session is not None else 0,
            bins_written=writer.bins_written if writer is not None else 0,
            raw_written=writer.raw_written if writer is not None else 0,
            binner_queue_depth=pipeline.binner_queue.counts().depth if pipeline is not None else 0,
            writer_queue_depth=writer.queue.counts().depth if writer is not None else 0,
            consumers=tuple(consumers),
            voltage_v=latest.voltage_v if latest else math.nan,
            current_a=latest.current_a if latest else math.nan,
            capacity_mAh_g=latest.capacity_mAh_g if latest else math.nan,
            protocol=proto.spec.kind if proto is not None else None,
            protocol_step=proto.current_step.index if proto is not None and proto.current_step is not None else None,
            protocol_running=bool(proto is not None and proto.is_running),
            focus_state=str(getattr(self._focus_lock, "state", "off")) if self._focus_lock is not None else "off",
            focus_error_nm=float(getattr(focus, "error_nm", math.nan)) if focus is not None else math.nan,
            error=self._failure(), alarms=pipeline.alarms if pipeline is not None else 0,
        )


def _calibration_dict(focus_lock: Any) -> dict | None:
    calibration = getattr(focus_lock, "calibration", None) if focus_lock is not None else None
    if calibration is None:
        return None
    try:
        return dict(calibration.to_dict())
    except Exception:  # noqa: BLE001 - a calibration that cannot be serialised is not stored
        return None


def _program_version() -> str:
    try:
        from importlib.metadata import version

        return version("operascope")
    except Exception:  # noqa: BLE001
        return "unknown"
