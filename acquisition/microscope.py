"""Microscope: the headless engine API (notebooks, CLI, GUI).

    with Microscope.from_config(None, speed=100) as scope:
        summary = scope.record("run.h5", duration_s=60, protocol="charge", bin_size=20)

Opens every device on ``__enter__``; on ``__exit__`` stops in order: protocols -> focus lock ->
camera -> writer -> devices. No thread here calls Qt.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from acquisition.binner import BinnedFrame, Binner
from acquisition.capture import CaptureThread
from acquisition.echem_history import EchemHistory, EchemSample
from acquisition.events import Event, EventBus
from acquisition.live_differential import DifferentialFrame, LiveDifferential
from acquisition.protocol_runner import ProtocolRunner
from acquisition.protocols import ProtocolSpec, ProtocolStep
from acquisition.queues import ConsumerCounts, MustNotDropQueue, NewestOnlySlot
from acquisition.rig import Rig, build_rig
from acquisition.run_writer import RunSetup, RunWriter
from acquisition.settings import config_with_overrides
from config.loader import to_toml
from config.schema import RigConfig
from devices.base import Frame, Roi

ProgressCallback = Callable[["MicroscopeStatus"], None]
#: Upper bound of focus-lock loop iterations per wall second (matters only for fast simulations).
MAX_FOCUS_LOOP_WALL_HZ = 100.0


@dataclass(frozen=True)
class RunSummary:
    """What a recording produced. Counts are frames of the camera; times in rig seconds."""

    path: str
    frames_in: int
    frames_binned: int
    frames_dropped: int
    bins: int
    partial_bins: int
    raw_frames: int
    duration_s: float
    stop_reason: str
    protocol_end: str | None = None
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class MicroscopeStatus:
    """A plain snapshot of the engine for progress displays and the GUI."""

    state: str                          # "closed", "idle", "live", "recording"
    clock_s: float
    frames_in: int
    frames_dropped: int
    incomplete_frames: int
    recording_path: str | None
    record_elapsed_s: float
    record_duration_s: float | None
    frames_recorded: int
    frames_dropped_in_run: int
    bins_written: int
    raw_written: int
    binner_queue_depth: int
    writer_queue_depth: int
    consumers: tuple[ConsumerCounts, ...]
    voltage_v: float
    current_a: float
    capacity_mAh_g: float
    protocol: str | None
    protocol_step: int | None
    protocol_running: bool
    focus_state: str
    focus_error_nm: float
    error: str | None = None
    alarms: int = 0


@dataclass
class _Session:
    """One recording: its writer and the counts of frames it received."""

    writer: RunWriter
    binner: Binner
    save_raw: bool
    t0_s: float
    duration_s: float | None
    ended: threading.Event = field(default_factory=threading.Event)
    raw_written: int = 0
    partial_bins: int = 0
    stop_reason: str = "running"
    end_s: float | None = None
    unsubscribe_events: Callable[[], None] | None = None
    calibration_written: Any = None


class Microscope:
    """The whole rig as one object. Use as a context manager."""

    def __init__(self, config: RigConfig, rig_factory: Callable[[RigConfig], Rig] | None = None,
                 queue_memory_mb: float = 512.0) -> None:
        """``rig_factory(config) -> Rig`` (unopened) replaces :func:`acquisition.rig.build_rig` (tests).

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
        self._focus_subscribers: list[Callable[[Any], None]] = []
        self._focus_lock: Any = None
        self._capture: CaptureThread | None = None
        self._binner_queue: MustNotDropQueue[Any] | None = None
        self._binner_thread: threading.Thread | None = None
        self._pipeline_stop = threading.Event()
        self._live_frames: NewestOnlySlot[Frame] = NewestOnlySlot("live view")
        self._live_diffs: NewestOnlySlot[DifferentialFrame] = NewestOnlySlot("live differential")
        self._differential = LiveDifferential(config.acquisition.mask_threshold, config.acquisition.drift_correction,
                                              config.acquisition.fiducial_xy_px, config.acquisition.fiducial_box_px)
        self._live_binner = Binner(config.acquisition.bin_size)
        self._session: _Session | None = None
        self._session_lock = threading.Lock()
        self._last_session: _Session | None = None
        self._protocol: ProtocolRunner | None = None
        self.echem = EchemHistory(config.sample.active_mass_mg)
        self._echem_lock = threading.Lock()
        self._echem_writer: RunWriter | None = None
        self._protocol_rows: list[tuple[ProtocolStep, float]] = []
        self._housekeeping: threading.Thread | None = None
        self._housekeeping_stop = threading.Event()
        self._stop_request = threading.Event()
        self._stop_reason = ""
        self._latest_focus: Any = None
        self._error: str | None = None
        self._alarms = 0

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config_or_path: RigConfig | str | Path | None = None, **overrides: Any) -> "Microscope":
        """Build from a validated config, a TOML path or None (the simulated rig).

        ``overrides`` are field names of the config sections (``speed=100``, ``bin_size=10``,
        ``roi=(0, 0, 64, 64)``, ``seed=1``, ...) or whole sections as dicts. Raises
        ``config.loader.ConfigError`` for unknown names or invalid values.
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
        self.rig = rig
        try:
            acq = self.config.acquisition
            roi = Roi(*acq.roi) if acq.roi is not None else None
            rig.camera.configure(acq.exposure_ms, acq.frame_rate_hz, roi, acq.pixel_format, acq.gain_db)
            rig.led.set_current(acq.led_current_a)
            rig.led.enable(True)
        except BaseException:
            self.rig = None
            rig.close()
            raise
        self.events.emit("info", "engine", "rig opened: " + ", ".join(
            f"{role}={getattr(self.config.devices, role).driver}" for role in rig.devices))

    def close(self) -> None:
        """Stop everything in order (protocols -> focus lock -> camera -> writer -> devices) and close."""
        if self.rig is None:
            return
        problems: list[str] = []
        for what, action in (("protocol", self.stop_protocol), ("focus lock", self._close_focus_lock),
                             ("camera", self._stop_capture), ("recording", self._end_session),
                             ("pipeline", self._stop_pipeline)):
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - keep closing the rest
                problems.append(f"{what}: {exc}")
        for dev_action in (lambda: self.rig.laser.enable(False), lambda: self.rig.led.enable(False)):
            try:
                dev_action()
            except Exception as exc:  # noqa: BLE001
                problems.append(str(exc))
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

    # ------------------------------------------------------------------ device attributes
    @property
    def clock(self):
        return self._require_rig().clock

    @property
    def world(self) -> Any:
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

    @property
    def focus_lock(self) -> Any:
        """The focus lock (``acquisition.focus_lock.FocusLock``), created on first use."""
        rig = self._require_rig()
        if self._focus_lock is None:
            from acquisition.focus_lock import FocusLock

            lock_config = self.config.focus_lock
            wall_rate_hz = lock_config.rate_hz * rig.clock.speed
            if wall_rate_hz > MAX_FOCUS_LOOP_WALL_HZ:
                # A simulation faster than real time would ask for thousands of loops per wall second.
                capped_hz = max(1.0, MAX_FOCUS_LOOP_WALL_HZ / rig.clock.speed)
                lock_config = lock_config.model_copy(update={"rate_hz": capped_hz})
                self.events.emit("info", "focus_lock", f"clock runs {rig.clock.speed:g}x real time: focus-lock rate "
                                                       f"capped at {capped_hz:.3g} Hz of rig time "
                                                       f"({MAX_FOCUS_LOOP_WALL_HZ:g} loops per wall second)")
            self._focus_lock = FocusLock(rig.focus_sensor, rig.stage.axis("z"), rig.clock, lock_config,
                                         on_sample=self._on_focus_sample,
                                         on_event=self._on_focus_event)
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

    def _close_focus_lock(self) -> None:
        if self._focus_lock is not None:
            self._focus_lock.close()
            self._focus_lock = None

    # ------------------------------------------------------------------ subscriptions
    def subscribe_events(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` (on engine threads) for every event; returns an unsubscribe function."""
        return self.events.subscribe(callback)

    def subscribe_focus_samples(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(FocusSample)`` (on the focus-lock thread) for every loop sample."""
        self._focus_subscribers.append(callback)
        return lambda: self._focus_subscribers.remove(callback) if callback in self._focus_subscribers else None

    def _on_focus_sample(self, sample: Any) -> None:
        self._latest_focus = sample
        session = self._session
        if session is not None:
            session.writer.write_focus_sample(sample)
        for callback in list(self._focus_subscribers):
            try:
                callback(sample)
            except Exception:  # noqa: BLE001 - a subscriber must not break the lock loop
                pass

    # ------------------------------------------------------------------ live pipeline
    @property
    def is_live(self) -> bool:
        return self._capture is not None and self._capture.is_alive

    def start_live(self) -> None:
        """Start the camera stream, the binner/differential thread and the live view (idempotent)."""
        rig = self._require_rig()
        if self._capture is not None:
            return
        acq = self.config.acquisition
        self._pipeline_stop.clear()
        roi = rig.camera.settings().roi
        self._binner_queue = MustNotDropQueue("binner", self._queue_capacity(roi.width * roi.height * 2), self._alarm)
        self._binner_thread = threading.Thread(target=self._binner_loop, name="binner", daemon=True)
        self._binner_thread.start()
        self._capture = CaptureThread(rig.camera, [self._to_binner, self._live_frames.put], acq.read_timeout_s,
                                      acq.camera_lost_timeout_s,
                                      on_event=lambda level, message: self.events.emit(level, "camera", message))
        self._capture.start()
        self.events.emit("info", "engine", "live view started")

    def stop_live(self) -> None:
        """Stop the camera and the live pipeline (ends a running recording first)."""
        self.stop_protocol()
        self._stop_capture()
        self._end_session("stopped")
        self._stop_pipeline()

    def _queue_capacity(self, item_bytes: int, minimum: int = 4) -> int:
        """Items a must-not-drop queue may hold: queue_frames, capped by queue_memory_mb."""
        by_memory = int(self.queue_memory_mb * 1e6 // max(item_bytes, 1))
        return max(minimum, min(self.config.acquisition.queue_frames, by_memory))

    def _alarm(self, message: str) -> None:
        self._alarms += 1
        self.events.emit("warning", "engine", message)

    def _to_binner(self, frame: Frame) -> None:
        assert self._binner_queue is not None
        self._binner_queue.put(frame, stop=self._pipeline_stop)

    def _stop_capture(self) -> None:
        if self._capture is not None:
            self._capture.stop()
            counts = self._capture.counts()
            self._last_capture_counts = counts
            self._capture = None

    def _stop_pipeline(self) -> None:
        if self._binner_thread is not None:
            self._binner_queue.put(("quit",), stop=None)  # type: ignore[union-attr]
            self._binner_thread.join(30.0)
            self._pipeline_stop.set()
            self._binner_thread = None

    def latest_frame(self) -> Frame | None:
        """The newest camera frame (None before the first)."""
        return self._live_frames.peek()

    def latest_differential(self) -> DifferentialFrame | None:
        """The newest live differential image (NaN outside :attr:`live_mask`)."""
        return self._live_diffs.peek()

    @property
    def live_mask(self):
        """The frozen particle mask of the live differential (None before the reference)."""
        return self._differential.mask

    def set_fiducial(self, x_px: float, y_px: float) -> None:
        """Use the spot near (x_px, y_px) for drift correction; the live reference restarts."""
        self._differential.set_fiducial(x_px, y_px)
        self._differential.reset()

    def _binner_loop(self) -> None:
        assert self._binner_queue is not None
        while True:
            try:
                item = self._binner_queue.get(timeout_s=0.2)
            except queue.Empty:
                continue
            try:
                if isinstance(item, Frame):
                    self._bin_frame(item)
                elif item[0] == "begin":
                    self._live_binner = Binner(item[1].binner.bin_size)
                    self._differential.reset()
                    self._session = item[1]
                elif item[0] == "end":
                    self._finish_session_bins(item[1])
                elif item[0] == "quit":
                    return
            except Exception as exc:  # noqa: BLE001 - report; keep the queue moving so nothing blocks
                self._error = f"binner failed: {type(exc).__name__}: {exc}"
                self.events.emit("error", "binner", self._error)

    def _bin_frame(self, frame: Frame) -> None:
        session = self._session
        binner = session.binner if session is not None else self._live_binner
        if session is not None and session.save_raw:
            session.writer.write_raw(frame)
            session.raw_written += 1
        binned = binner.add(frame)
        if binned is not None:
            self._publish_bin(binned, session)

    def _publish_bin(self, binned: BinnedFrame, session: _Session | None) -> None:
        first = self._differential.reference is None
        diff = self._differential.process(binned.pixels, binned.mid_time_s)
        if first:
            for warning in self._differential.warnings:
                self.events.emit("warning", "differential", warning)
            self._differential.warnings.clear()
        self._live_diffs.put(diff)
        if session is not None:
            v, i, q = self.echem.at(binned.mid_time_s)
            session.writer.write_binned(binned, v, i, q)
            session.writer.write_differential(diff, self._differential.mask if first else None)
            session.writer.update_counts(binned_frames_in(session), session.binner.frames_dropped)

    def _finish_session_bins(self, session: _Session) -> None:
        partial = session.binner.flush()
        if partial is not None:
            session.partial_bins += 1
            self._publish_bin(partial, session)
        self._session = None
        self._live_binner = Binner(self.config.acquisition.bin_size)
        session.ended.set()

    # ------------------------------------------------------------------ recording
    @property
    def is_recording(self) -> bool:
        return self._session is not None

    def start_recording(self, out_path: str | Path, bin_size: int | None = None, save_raw: bool | None = None,
                        duration_s: float | None = None, title: str | None = None) -> None:
        """Create the run file and record binned (and optionally raw) frames until :meth:`stop_recording`."""
        rig = self._require_rig()
        if self._session is not None:
            raise RuntimeError(f"already recording to {self._session.writer.setup.path}; stop that recording first")
        bin_size = self.config.acquisition.bin_size if bin_size is None else bin_size
        check_bin_size(bin_size)
        save_raw = self.config.acquisition.save_raw if save_raw is None else bool(save_raw)
        path = Path(out_path)
        if not path.parent.exists():
            raise FileNotFoundError(f"output folder {path.parent} does not exist")
        self.start_live()
        settings = rig.camera.settings()
        info = rig.camera.info()
        world = rig.world
        setup = RunSetup(
            path=str(path), frame_shape=(settings.roi.height, settings.roi.width), t0_s=rig.clock.now_s(),
            config_toml=to_toml(self.config), title=title or f"operascope run {path.stem}", save_raw=save_raw,
            raw_compression=self.config.acquisition.raw_compression,
            camera={"model": info.model, "serial": info.serial, "exposure_time": settings.exposure_ms,
                    "frame_rate": settings.frame_rate_hz, "pixel_size": self.config.acquisition.pixel_size_nm,
                    "pixel_format": settings.pixel_format, "gain": settings.gain_db,
                    "roi": [settings.roi.x, settings.roi.y, settings.roi.width, settings.roi.height],
                    "bin_size": int(bin_size)},
            sample=self.config.sample.model_dump(),
            particle_geometry=world.particle_geometry() if world is not None else None,
            focus_calibration=_calibration_dict(self._focus_lock),
            flush_interval_s=self.config.acquisition.flush_interval_s,
            queue_capacity=self._queue_capacity(settings.roi.width * settings.roi.height * 4, minimum=16),
            program_version=_program_version(),
        )
        writer = RunWriter(setup, on_event=lambda level, message: self.events.emit(level, "writer", message))
        writer.start()
        earlier_events, session_unsubscribe = self.events.history_then_subscribe(writer.write_event)
        for event in earlier_events:   # what happened since the rig opened (calibration, faults, ...)
            writer.write_event(event)
        session = _Session(writer, Binner(int(bin_size)), save_raw, setup.t0_s, duration_s,
                           unsubscribe_events=session_unsubscribe,
                           calibration_written=getattr(self._focus_lock, "calibration", None))
        with self._echem_lock:   # the protocol's points and steps so far, then every new one
            for sample in self.echem.samples():
                writer.write_echem(sample)
            for step_row in self._protocol_steps_so_far():
                writer.write_technique(*step_row)
            self._echem_writer = writer
        self._last_session = session
        assert self._binner_queue is not None
        self._binner_queue.put(("begin", session))
        self._wait_for(lambda: self._session is session, 10.0)
        self._start_housekeeping()
        self.events.emit("info", "engine", f"recording to {path} (bin {bin_size}, raw {'on' if save_raw else 'off'})")

    def stop_recording(self, reason: str = "stopped") -> RunSummary | None:
        """Flush the partial bin, close the run file and return its summary (None if not recording)."""
        return self._end_session(reason)

    def _end_session(self, reason: str = "stopped") -> RunSummary | None:
        session = self._session
        if session is None:
            return None
        self._stop_housekeeping()
        session.stop_reason = reason
        session.end_s = self._now_s()
        self.events.emit("info", "engine", f"recording stopped: {reason}")
        if self._binner_thread is not None and self._binner_thread.is_alive():
            self._binner_queue.put(("end", session))  # type: ignore[union-attr]
            session.ended.wait(60.0)
        else:
            self._finish_session_bins(session)
        self._session = None
        with self._echem_lock:
            self._echem_writer = None
        if session.unsubscribe_events is not None:
            session.unsubscribe_events()
        writer = session.writer
        writer.close(reason, binned_frames_in(session), session.binner.frames_dropped)
        errors = tuple(e for e in (writer.error, self._error) if e)
        return RunSummary(
            path=writer.setup.path, frames_in=binned_frames_in(session),
            frames_binned=session.binner.frames_in, frames_dropped=session.binner.frames_dropped,
            bins=session.binner.bins_out, partial_bins=session.partial_bins, raw_frames=session.raw_written,
            duration_s=self._now_s() - session.t0_s, stop_reason=reason,
            protocol_end=self._protocol.end_reason if self._protocol is not None else None, errors=errors)

    def _wait_for(self, condition: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("the acquisition pipeline did not respond; is the binner thread alive?")
            time.sleep(0.005)

    # ------------------------------------------------------------------ housekeeping (device logs + truth)
    def _start_housekeeping(self) -> None:
        self._housekeeping_stop.clear()
        self._housekeeping = threading.Thread(target=self._housekeeping_loop, name="housekeeping", daemon=True)
        self._housekeeping.start()

    def _stop_housekeeping(self) -> None:
        self._housekeeping_stop.set()
        if self._housekeeping is not None:
            self._housekeeping.join(10.0)
            self._housekeeping = None

    def _housekeeping_loop(self) -> None:
        """About once per rig second (at most 20 per wall second): stage, LED, laser and truth."""
        rig = self.rig
        if rig is None:
            return
        period_wall_s = max(1.0 / max(rig.clock.speed, 1e-9), 0.05)
        while not self._housekeeping_stop.is_set():
            session = self._session
            if session is not None:
                self._write_truth(session)
                try:
                    session.writer.write_device_log(rig.clock.now_s(), rig.stage.position_nm(), rig.led.state(),
                                                    rig.laser.state())
                except Exception as exc:  # noqa: BLE001 - a read-back failure is an event, not a crash
                    self.events.emit("warning", "housekeeping", f"device read-back failed: {exc}")
            self._housekeeping_stop.wait(period_wall_s)

    def _write_truth(self, session: _Session) -> None:
        world = self.rig.world if self.rig is not None else None
        if world is not None:
            try:
                session.writer.write_truth(world.truth())
            except Exception as exc:  # noqa: BLE001
                self.events.emit("warning", "simulation", f"truth not sampled: {exc}")

    # ------------------------------------------------------------------ protocols
    def make_protocol(self, protocol: Any, duration_s: float | None = None) -> ProtocolSpec:
        """A :class:`ProtocolSpec` from a kind name ("charge", ...), a spec, or a request object with
        the same field names (the GUI's ProtocolRequest). Defaults come from the config."""
        if isinstance(protocol, ProtocolSpec):
            return protocol
        ec = self.config.electrochemistry
        base = dict(kind=None, active_mass_mg=self.config.sample.active_mass_mg,
                    specific_capacity_mah_g=ec.specific_capacity_mah_g, c_rate=ec.c_rate, v_min=ec.v_min,
                    v_max=ec.v_max, duration_s=None, cycles=ec.cycles, gitt_current_ma_g=ec.gitt_current_ma_g,
                    gitt_pulse_s=ec.gitt_pulse_s, gitt_rest_s=ec.gitt_rest_s, record_interval_s=ec.record_interval_s)
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

    def _protocol_steps_so_far(self) -> list[tuple[ProtocolStep, float]]:
        return list(self._protocol_rows)

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
        bin_size = self.config.acquisition.bin_size if bin_size is None else bin_size
        check_bin_size(bin_size)
        if duration_s is None and protocol is None:
            raise ValueError("give duration_s, a protocol, or both (otherwise the run would never end)")
        spec = self.make_protocol(protocol, duration_s) if protocol is not None else None
        use_lock = self.config.focus_lock.enabled if focus_lock is None else bool(focus_lock)
        self._stop_request.clear()
        reason = "duration reached"
        started_live = not self.is_live
        try:
            if use_lock:
                self._engage_focus_lock()
            self.start_recording(out_path, bin_size=bin_size, save_raw=save_raw, duration_s=duration_s)
            if spec is not None:
                self.start_protocol(spec)
            t0 = self._session.t0_s if self._session is not None else rig.clock.now_s()
            next_progress = 0.0
            while True:
                if self._stop_request.wait(0.05):
                    reason = self._stop_reason or "stop requested"
                    break
                elapsed = rig.clock.now_s() - t0
                if duration_s is not None and elapsed >= duration_s:
                    reason = "duration reached"
                    break
                if spec is not None and self._protocol is not None and self._protocol.done.is_set():
                    reason = f"protocol ended ({self._protocol.end_reason})"
                    break
                failure = self._failure()
                if failure:
                    reason = f"error: {failure}"
                    break
                if progress is not None and time.monotonic() >= next_progress:
                    progress(self.status())
                    next_progress = time.monotonic() + progress_interval_s
        except KeyboardInterrupt:
            reason = "interrupted (Ctrl-C)"
        except BaseException as exc:
            reason = f"error: {type(exc).__name__}: {exc}"
            raise
        finally:
            summary = self._finish_record(reason, started_live, use_lock)
        if summary is None:
            raise RuntimeError(f"recording did not start ({reason})")
        if progress is not None:
            progress(self.status())
        return summary

    def _engage_focus_lock(self) -> None:
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
        lock.lock()

    def _finish_record(self, reason: str, stop_live: bool, unlock: bool) -> RunSummary | None:
        """Ordered stop: protocol -> focus lock -> camera -> writer."""
        for action in (self.stop_protocol, (lambda: self._focus_lock.unlock()) if unlock and self._focus_lock else None):
            if action is None:
                continue
            try:
                action()
            except Exception as exc:  # noqa: BLE001
                self.events.emit("warning", "engine", f"while stopping: {exc}")
        if stop_live:
            self._stop_capture()
        summary = self._end_session(reason)
        if stop_live:
            self._stop_pipeline()
        return summary

    def _failure(self) -> str | None:
        if self._capture is not None and self._capture.failed:
            return self._capture.failed
        session = self._session
        if session is not None and session.writer.error:
            return session.writer.error
        return self._error

    # ------------------------------------------------------------------ status
    def status(self) -> MicroscopeStatus:
        """A snapshot of counts, queue depths, state, voltage and focus."""
        now = self._now_s()
        capture = self._capture.counts() if self._capture is not None else None
        session = self._session or self._last_session
        recording = self._session is not None
        writer = session.writer if session is not None else None
        latest = self.echem.latest()
        focus = self._latest_focus
        consumers = [self._live_frames.counts(), self._live_diffs.counts()]
        if self._binner_queue is not None:
            consumers.insert(0, self._binner_queue.counts())
        if writer is not None:
            consumers.append(writer.queue.counts())
        proto = self._protocol
        if self.rig is None:
            state = "closed"
        else:
            state = "recording" if recording else ("live" if self.is_live else "idle")
        return MicroscopeStatus(
            state=state, clock_s=now,
            frames_in=capture.frames_in if capture else 0,
            frames_dropped=capture.frames_dropped if capture else 0,
            incomplete_frames=capture.incomplete if capture else 0,
            recording_path=writer.setup.path if writer is not None else None,
            record_elapsed_s=(((session.end_s if session.end_s is not None else now) - session.t0_s)
                              if session is not None else 0.0),
            record_duration_s=session.duration_s if session else None,
            frames_recorded=binned_frames_in(session) if session else 0,
            frames_dropped_in_run=session.binner.frames_dropped if session else 0,
            bins_written=writer.bins_written if writer is not None else 0,
            raw_written=writer.raw_written if writer is not None else 0,
            binner_queue_depth=self._binner_queue.counts().depth if self._binner_queue is not None else 0,
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
            error=self._failure(), alarms=self._alarms,
        )


def binned_frames_in(session: _Session | None) -> int:
    """Frames the session's binner received."""
    return session.binner.frames_in if session is not None else 0


def check_bin_size(bin_size: Any) -> int:
    """``bin_size`` as int, or ValueError naming what is allowed."""
    if isinstance(bin_size, bool) or not isinstance(bin_size, int) or bin_size < 1:
        raise ValueError(f"bin size must be an integer >= 1 frame, got {bin_size!r}")
    return bin_size


def check_duration(duration_s: Any) -> None:
    """ValueError unless ``duration_s`` is None or a finite number > 0 (seconds)."""
    if duration_s is None:
        return
    if isinstance(duration_s, bool) or not isinstance(duration_s, (int, float)) or not (
            math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration must be a number of seconds > 0, got {duration_s!r}")


def _calibration_dict(focus_lock: Any) -> dict | None:
    calibration = getattr(focus_lock, "calibration", None) if focus_lock is not None else None
    if calibration is None:
        return None
    try:
        return dict(calibration.to_dict())
    except Exception:  # noqa: BLE001
        return None


def _program_version() -> str:
    try:
        from importlib.metadata import version

        return version("operascope")
    except Exception:  # noqa: BLE001
        return "unknown"
