"""RecordingService: recording sessions, their run writer, the echem/focus streams into it, summaries."""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import Any, Callable

from operascope.acquisition import logs
from operascope.acquisition.bin_truth import SimulatedBinTruth
from operascope.acquisition.binner import Binner
from operascope.acquisition.camera_clock import ExposureStamper
from operascope.acquisition.echem_history import EchemHistory, EchemSample
from operascope.acquisition.events import EventBus
from operascope.acquisition.focus_service import FocusService
from operascope.acquisition.frame_gaps import FrameGapLog
from operascope.acquisition.housekeeping import DeviceLogger
from operascope.acquisition.pipeline import FramePipeline, RecordingSession
from operascope.acquisition.protocols import ProtocolStep
from operascope.acquisition.run_writer import RunSetup, RunWriter
from operascope.acquisition.status import RunSummary
from operascope.config.loader import to_toml
from operascope.config.schema import RigConfig

log = logging.getLogger(__name__)


class RecordingService:
    """At most one recording at a time; owns its session, writer and device logger."""

    def __init__(self, config: RigConfig, events: EventBus, echem: EchemHistory, focus: FocusService,
                 queue_capacity: Callable[..., int]) -> None:
        self.config = config
        self._events = events
        self._echem = echem
        self._focus = focus
        self._queue_capacity = queue_capacity
        self.session: RecordingSession | None = None
        self.last_session: RecordingSession | None = None
        self._device_logger: DeviceLogger | None = None
        self._echem_lock = threading.Lock()
        self._echem_writer: RunWriter | None = None
        self._protocol_rows: list[tuple[ProtocolStep, float]] = []
        self._run_log: logging.Handler | None = None

    @property
    def is_recording(self) -> bool:
        return self.session is not None

    def start(self, rig: Any, pipeline: FramePipeline, path: Path, bin_size: int, save_raw: bool,
              duration_s: float | None, title: str | None, overwrite: bool = False, positions: Any = None,
              router: Any = None) -> None:
        """Create the run file and hand the pipeline a new session (bin_size/save_raw already checked).
        Multi-position runs: ``positions`` (PositionList) and its ``router`` (PositionRouter) bin the frames."""
        if self.session is not None:
            raise RuntimeError(f"already recording to {self.session.writer.setup.path}; stop that recording first")
        self._run_log = logs.attach_run_log(path)   # every recording (CLI, GUI, script) leaves <run>.log
        run_setup = self._run_setup(rig, path, bin_size, save_raw, title)
        pipeline.hold_from(run_setup.t0_s)   # frames of the run read while its file is made are kept for it
        stamper = ExposureStamper(run_setup.camera["exposure_time"])   # bin time = exposure mid-times
        run_setup.restamp = stamper.final_mid_time_s                   # re-done at the end with every pair
        run_setup.overwrite = bool(overwrite)   # an existing file is refused unless asked
        if router is not None:
            run_setup.positions, run_setup.dwell_bins = positions, router.dwell_bins
            router.stamper = stamper                                   # position bins: exposure mid-times too
        writer = RunWriter(run_setup,
                           on_event=lambda level, message: self._events.emit(level, "writer", message))
        try:
            writer.start()   # refuses an existing file (unless overwrite), a locked file, a too-slow raw filter
        except BaseException:
            pipeline.hold_from(None)
            logs.detach(self._run_log)
            self._run_log = None
            raise
        try:
            earlier_events, unsubscribe = self._events.history_then_subscribe(writer.write_event)
            for event in earlier_events:   # what happened since the rig opened (calibration, faults, ...)
                writer.write_event(event)
            session = RecordingSession(writer, router if router is not None else Binner(bin_size, stamper), save_raw,
                                       writer.setup.t0_s, duration_s, unsubscribe_events=unsubscribe,
                                       calibration_written=self._focus.calibration, positions=router,
                                       gap_log=FrameGapLog(self._events.emit))
            with self._echem_lock:   # the protocol's points and steps so far, then every new one
                for sample in self._echem.samples():
                    writer.write_echem(sample)
                for step, start_s in self._protocol_rows:
                    writer.write_technique(step, start_s)
                self._echem_writer = writer
            self.session = self.last_session = session   # focus samples from now on
            pipeline.begin(session)                       # frames from the next one in the queue on
        except BaseException:
            pipeline.hold_from(None)
            self.session = None
            with self._echem_lock:
                self._echem_writer = None
            writer.close("error while starting the recording")
            logs.detach(self._run_log)
            self._run_log = None
            raise
        self._device_logger = DeviceLogger(rig, writer, self._events.emit)
        self._device_logger.start()
        self._events.emit("info", "engine", f"recording to {path} (bin {bin_size}, raw {'on' if save_raw else 'off'})")

    def _run_setup(self, rig: Any, path: Path, bin_size: int, save_raw: bool, title: str | None) -> RunSetup:
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
            focus_calibration=self._focus.calibration_dict(),
            flush_interval_s=acq.flush_interval_s,
            queue_capacity=self._queue_capacity(settings.roi.width * settings.roi.height * 4, minimum=16),
            program_version=_program_version(),
            bin_truth=_bin_truth(rig, settings.exposure_ms),
        )

    def end(self, pipeline: FramePipeline | None, now_s: float, reason: str,
            protocol_end: str | None) -> RunSummary | None:
        """Flush the partial bin, close the run file, return its summary (None if not recording)."""
        session = self.session
        if session is None:
            return None
        if self._device_logger is not None:
            self._device_logger.stop()
            self._device_logger = None
        session.stop_reason = reason
        session.end_s = now_s if session.duration_s is None else min(now_s, session.t0_s + session.duration_s)
        self._events.emit("info", "engine", f"recording stopped: {reason}")
        if pipeline is not None:
            pipeline.end(session)
        with self._echem_lock:
            self._echem_writer = None
        if session.unsubscribe_events is not None:
            session.unsubscribe_events()
        writer = session.writer
        try:
            writer.close(reason, session.frames_in, session.binner.frames_dropped)
        finally:
            # only now: status() says "recording" until the file is closed, so the counts it shows
            # once the recording has ended are final (no bins still queued in the writer)
            self.session = None
            logs.detach(self._run_log)
            self._run_log = None
        pipeline_error = pipeline.error if pipeline is not None else None
        return RunSummary(
            path=writer.setup.path, frames_in=session.frames_in,
            frames_binned=getattr(session.binner, "frames_binned", session.binner.frames_in),
            frames_dropped=session.binner.frames_dropped,
            bins=session.binner.bins_out if writer.error is None else writer.bins_flushed,   # what the file holds
            partial_bins=session.partial_bins, raw_frames=session.raw_written,
            duration_s=min(session.end_s - session.t0_s, session.duration_s or math.inf), stop_reason=reason, protocol_end=protocol_end,
            errors=tuple(e for e in (writer.error, pipeline_error) if e))

    # ------------------------------------------------------------------ streams into the run file
    def reset_protocol_rows(self) -> None:
        with self._echem_lock:
            self._protocol_rows = []

    def on_echem_point(self, sample: EchemSample) -> None:
        session = self.session
        if session is not None and session.after_end(sample.time_s):
            return
        with self._echem_lock:
            if self._echem_writer is not None:
                self._echem_writer.write_echem(sample)

    def on_protocol_step(self, step: ProtocolStep, start_s: float) -> None:
        with self._echem_lock:
            self._protocol_rows.append((step, start_s))
            if self._echem_writer is not None:
                self._echem_writer.write_technique(step, start_s)

    def on_focus_sample(self, _previous: Any, sample: Any) -> None:
        session = self.session
        if session is not None and not session.after_end(sample.time_s):
            session.writer.write_focus_sample(sample)

    def record_new_calibration(self, now_s: float) -> None:
        """Write the focus calibration to the run file when a new one appeared (GUI calibrations too)."""
        calibration = self._focus.calibration
        session = self.session
        if session is None or calibration is None or calibration is session.calibration_written:
            return
        session.calibration_written = calibration
        data = self._focus.calibration_dict()
        if data is not None:
            session.writer.write_focus_calibration(now_s, data)

    def writer_error(self) -> str | None:
        session = self.session
        return session.writer.error if session is not None and session.writer.error else None


def _program_version() -> str:
    try:
        from importlib.metadata import version

        return version("operascope")
    except Exception:  # noqa: BLE001
        log.debug("package version unknown", exc_info=True)
        return "unknown"


def _bin_truth(rig: Any, exposure_ms: float) -> SimulatedBinTruth | None:
    """Truth averaged per bin: only with the simulated camera (its stamps are the virtual clock; the truth
    says nothing of frames from any other camera, e.g. a replay camera put into a simulated rig)."""
    if rig.world is None or rig.config.devices.camera.driver != "simulated":
        return None
    camera = rig.devices.get("camera") if isinstance(getattr(rig, "devices", None), dict) else None
    if camera is not None and camera.info().driver != "simulated":
        return None
    return SimulatedBinTruth(rig.world.drift_nm, exposure_ms, getattr(rig.world, "image_shift_nm", None),
                             getattr(rig.world, "stage_return_error_at_nm", None), getattr(rig.world, "particle_truth", None))
