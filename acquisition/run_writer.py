"""RunWriter: the one thread that uses h5py; writes the run file (layout: analysis/runfile_layout.py).

Producers call the ``write_*`` methods from any thread; each queues a small typed message. Frames go
through a bounded must-not-drop queue; log records through an unblocking side channel so a slow disk
never stalls the focus-lock loop, the protocol runner or whoever emits an event. The thread (an
:class:`~operascope.acquisition.worker.Worker`) hands each message to a :class:`RunFile`, flushes after
every binned frame and at least every ``flush_interval_s``.

A write error (disk full, file size limit, I/O error) ends the writer: every growing dataset is cut back
to its length at the last successful flush (a frame whose pixels never reached the disk is not left in
the file as zeros), the stop reason is recorded if the disk still takes it, and :attr:`RunWriter.error`
names the file and what happened. The file is locked against a second writer for the whole run.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from operascope.acquisition.bin_restamp import restamp_bins
from operascope.acquisition.bin_truth import append_bin_truth
from operascope.acquisition.binner import BinnedFrame
from operascope.acquisition.echem_history import EchemSample
from operascope.acquisition.events import Event
from operascope.acquisition.live_differential import DifferentialFrame
from operascope.acquisition.protocols import ProtocolStep
from operascope.acquisition.queues import MustNotDropQueue
from operascope.acquisition.raw_compression import DEFAULT as DEFAULT_RAW_COMPRESSION
from operascope.acquisition.raw_compression import check_rate
from operascope.acquisition.run_file_positions import field_particle_indices
from operascope.acquisition.run_file import RunFile, RunFileExistsError, geometry_columns  # noqa: F401
from operascope.acquisition.run_lock import RunFileInUseError, RunFileLock  # noqa: F401
from operascope.acquisition.worker import Worker
from operascope.acquisition.writer_messages import (  # noqa: F401 - the message types, re-exported
    BinnedMsg,
    CalibrationMsg,
    DeviceLogMsg,
    DifferentialMsg,
    LogMsg,
    PositionsAttrMsg,
    RawMsg,
    StopMsg,
    TechniqueMsg,
)
from operascope.analysis import runfile_layout as L
from operascope.devices.base import Frame

log = logging.getLogger(__name__)


@dataclass
class RunSetup:
    """Everything the writer needs to lay out the file. Sizes in px, times on the rig clock (s)."""

    path: str
    frame_shape: tuple[int, int]
    t0_s: float
    config_toml: str
    title: str = "operascope run"
    save_raw: bool = False
    raw_compression: str = DEFAULT_RAW_COMPRESSION
    camera: dict[str, Any] = field(default_factory=dict)
    sample: dict[str, Any] = field(default_factory=dict)
    particle_geometry: Any = None          # simulated runs: world.particle_geometry()
    focus_calibration: dict[str, Any] | None = None
    flush_interval_s: float = 1.0
    queue_capacity: int = 1000
    program_version: str = ""
    overwrite: bool = False                # replace an existing file at ``path`` (else refused)
    bin_truth: Callable[[BinnedFrame], dict[str, Any]] | None = None   # simulated: truth averaged per bin
    restamp: Callable[[float], float] | None = None   # mean camera time (ns) -> bin time (rig s), final estimate
    positions: Any = None                  # multi-position runs: the PositionList (one record per position)
    dwell_bins: int = 1


# ---------------------------------------------------------------------- typed messages
class RunWriter:
    """Owns the HDF5 file. Producers call the ``write_*`` methods from any thread (they queue)."""

    def __init__(self, setup: RunSetup, on_event: Callable[[str, str], None] | None = None,
                 max_pending_logs: int = 1_000_000) -> None:
        """``max_pending_logs``: bound of the log side channel (beyond it records count in ``logs_dropped``)."""
        self.setup = setup
        self._on_event = on_event or (lambda level, message: None)
        self.queue: MustNotDropQueue[Any] = MustNotDropQueue(
            "writer", setup.queue_capacity, lambda msg: self._on_event("warning", msg))
        self._logs: collections.deque[Any] = collections.deque()
        self.max_pending_logs = max_pending_logs
        self.logs_dropped = 0
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.error: str | None = None
        self.bins_written = self.differentials_written = self.raw_written = 0
        self._bin_camera_ns: dict[str | None, list[float]] = {}   # per record: mean camera time of each bin
        self._fields = {p.name: field_particle_indices(setup, p.name) for p in (setup.positions or ())}  # particles
        self.stop_reason = "running"
        self.frames_in = self.frames_dropped = 0
        self.bins_flushed = 0                         # binned frames known to be on disk
        self._file: RunFile | None = None
        self._lock = RunFileLock(setup.path)
        self._worker = Worker("run-writer", self._run)
        self._handlers: dict[type, Callable[[Any], None]] = {
            BinnedMsg: lambda m: self._w_binned(m), DifferentialMsg: lambda m: self._w_diff(m),
            RawMsg: lambda m: self._w_raw(m), TechniqueMsg: lambda m: self._w_technique(m),
            CalibrationMsg: lambda m: self._w_calibration(m), DeviceLogMsg: lambda m: self._w_devices(m),
            LogMsg: lambda m: self._w_log(m), PositionsAttrMsg: lambda m: self._file.set_positions_attr(m.name, m.value)}

    @property
    def flushes(self) -> int:
        return self._file.flushes if self._file is not None else 0

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout_s: float = 30.0) -> None:
        """Check the raw filter's rate, lock and create the file (in the writer thread) and switch SWMR on;
        raise if that fails (ValueError: the raw-frame filter cannot hold the camera's frame rate)."""
        self._check_raw_rate()
        self._lock.acquire()
        self._worker.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"{self.setup.path}: run file not created within {timeout_s} s")
        if self._startup_error is not None:
            self._worker.join(5.0)
            self._lock.release()
            log.error("%s: not created: %s", self.setup.path, self._startup_error)
            raise self._startup_error
        log.info("%s: created (raw frames %s, compression %s, queue %d)", self.setup.path,
                 "on" if self.setup.save_raw else "off", self.setup.raw_compression, self.setup.queue_capacity)

    def _check_raw_rate(self) -> None:
        """Refuse a raw-frame filter slower than the camera; warn when it has little headroom (measured here,
        on a frame of the run's shape, before anything is recorded)."""
        s = self.setup
        if not s.save_raw:
            return
        try:
            frame_rate_hz = float(s.camera.get("frame_rate") or 0.0)
        except (TypeError, ValueError):
            frame_rate_hz = 0.0
        warning = check_rate(s.raw_compression, tuple(s.frame_shape), frame_rate_hz)
        if warning is not None:
            log.warning("%s", warning)
            self._on_event("warning", warning)

    def close(self, stop_reason: str, frames_in: int | None = None, frames_dropped: int | None = None,
              timeout_s: float = 60.0) -> None:
        """Write everything queued, the end time and ``stop_reason``; close the file and unlock it."""
        if frames_in is not None:
            self.frames_in = int(frames_in)
        if frames_dropped is not None:
            self.frames_dropped = int(frames_dropped)
        self.stop_reason = stop_reason
        if self._worker.is_alive():
            self.queue.put(StopMsg())
            if not self._worker.join(timeout_s):  # pragma: no cover - a hung file system
                self._worker.stop(5.0)
        self._lock.release()
        log.info("%s: closed (%s); %d frames in, %d dropped", self.setup.path, stop_reason, self.frames_in,
                 self.frames_dropped)

    @property
    def is_alive(self) -> bool:
        return self._worker.is_alive()

    # ------------------------------------------------------------------ producers (any thread)
    def _post(self, message: Any) -> None:
        if not self._worker.is_alive() or self.error is not None:
            return
        if isinstance(message, (LogMsg, TechniqueMsg, CalibrationMsg, DeviceLogMsg, PositionsAttrMsg)):
            if len(self._logs) < self.max_pending_logs:
                self._logs.append(message)
            else:
                self.logs_dropped += 1
            return
        self.queue.put(message, stop=self._worker.stop_event)

    def write_binned(self, binned: BinnedFrame, voltage_v: float, current_a: float, capacity_mAh_g: float,
                     position: str | None = None, visit_index: int = -1) -> None:
        """A binned frame into /entry/binned, or into position ``position``'s record (multi-position runs)."""
        self._post(BinnedMsg(binned, voltage_v, current_a, capacity_mAh_g, position, visit_index))

    def write_differential(self, diff: DifferentialFrame, mask: np.ndarray | None, position: str | None = None) -> None:
        self._post(DifferentialMsg(diff, mask, position))

    def write_visit(self, visit: Any) -> None:
        """One row of /entry/visits (a :class:`~operascope.acquisition.position_state.Visit`)."""
        self._post(LogMsg("visits", visit))

    def write_cycle_period(self, cycle_period_s: float) -> None:
        """The mean measured cycle period of a multi-position run (/entry/positions@cycle_period_s)."""
        self._post(PositionsAttrMsg("cycle_period_s", float(cycle_period_s)))

    def write_raw(self, frame: Frame) -> None:
        self._post(RawMsg(frame))

    def write_echem(self, sample: EchemSample) -> None:
        self._post(LogMsg("echem", sample))

    def write_technique(self, step: ProtocolStep, start_s: float) -> None:
        self._post(TechniqueMsg(step, start_s))

    def write_focus_sample(self, sample: Any) -> None:
        self._post(LogMsg("focus", sample))

    def write_focus_calibration(self, time_s: float, calibration: dict[str, Any]) -> None:
        self._post(CalibrationMsg(time_s, calibration))

    def write_event(self, event: Event) -> None:
        self._post(LogMsg("events", event))

    def write_truth(self, truth: dict[str, Any]) -> None:
        self._post(LogMsg("truth", truth))

    def write_device_log(self, time_s: float, stage_nm: dict | None, led: Any, laser: Any) -> None:
        self._post(DeviceLogMsg(time_s, stage_nm, led, laser))

    def update_counts(self, frames_in: int, frames_dropped: int) -> None:
        self.frames_in, self.frames_dropped = int(frames_in), int(frames_dropped)

    # ------------------------------------------------------------------ thread
    def _run(self, stop: threading.Event) -> None:
        try:
            self._file = RunFile.create(self.setup, overwrite=self.setup.overwrite)
            if self.setup.focus_calibration is not None:
                self._w_calibration(CalibrationMsg(self.setup.t0_s, self.setup.focus_calibration))
        except BaseException as exc:  # noqa: BLE001 - handed back to start()
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        last_flush = time.monotonic()
        try:
            while True:
                self._drain_logs()
                try:
                    item = self.queue.get(timeout_s=0.05)
                except queue.Empty:
                    item = None
                if isinstance(item, StopMsg):
                    self._drain_logs()
                    self._restamp()
                    break
                if item is not None and self.error is None:
                    self._handlers[type(item)](item)
                    if isinstance(item, BinnedMsg):
                        self._flush()
                        last_flush = time.monotonic()
                if time.monotonic() - last_flush >= self.setup.flush_interval_s:
                    self._flush()
                    last_flush = time.monotonic()
                if stop.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - the file is closed properly below
            self._file.roll_back()
            self.error = (f"run writer failed: {type(exc).__name__}: {_write_error_text(exc)} while writing "
                          f"{self.setup.path}; recording stopped; the file keeps the {self.bins_flushed} "
                          f"binned frames flushed before")
            log.error("%s", self.error)
            self._on_event("error", self.error)
            self._drain_discard(stop)
        finally:
            self._finish()

    def _drain_logs(self) -> None:
        """Write every pending log record (writer thread); runs of records of one table in one append."""
        batch: list[LogMsg] = []
        while self.error is None:
            try:
                message = self._logs.popleft()
            except IndexError:
                break
            if isinstance(message, LogMsg):
                if batch and batch[0].key != message.key:
                    self._w_logs(batch)
                    batch = []
                batch.append(message)
                continue
            if batch:
                self._w_logs(batch)
                batch = []
            self._handlers[type(message)](message)
        if batch and self.error is None:
            self._w_logs(batch)

    def _drain_discard(self, stop: threading.Event) -> None:
        """After a write error: empty the queue until the stop message so producers never block."""
        while True:
            try:
                if isinstance(self.queue.get(timeout_s=0.5), StopMsg):
                    return
            except queue.Empty:
                if stop.is_set():
                    return

    def _finish(self) -> None:
        rf = self._file
        if rf is None:
            return
        try:
            rf.set_counts(self.frames_in, self.frames_dropped)
            rf.finish(self.stop_reason)
        except Exception as exc:  # noqa: BLE001
            if self.error is None:
                rf.roll_back()
                self.error = (f"run writer could not finish {self.setup.path}: {_write_error_text(exc)}; "
                              f"the file keeps the {self.bins_flushed} binned frames flushed before")
                self._on_event("error", self.error)
        finally:
            try:
                rf.close()
            except Exception as exc:  # noqa: BLE001 - the disk refused the last metadata; data is flushed
                self._on_event("warning", f"{self.setup.path} closed with an error ({_write_error_text(exc)}); "
                                          f"its content up to the last flush is readable")
            self._file = None

    def _flush(self) -> None:
        assert self._file is not None
        self._file.set_counts(self.frames_in, self.frames_dropped)
        self._file.flush()
        self.bins_flushed = self._file.length("binned")

    # ------------------------------------------------------------------ handlers (writer thread)
    def _rel(self, time_s: float) -> float:
        return float(time_s) - self.setup.t0_s

    def _w_binned(self, m: BinnedMsg) -> None:
        b = m.binned
        key = "binned" if m.position is None else L.position_key("binned", m.position)
        self._file.append_frame(key, b.pixels)
        self._file.append(key, {**vars(b), "time": self._rel(b.mid_time_s), "host_time": self._rel(b.host_time_s),
                                "partial": int(b.partial), "voltage_v": m.voltage_v,
                                "current_a": m.current_a, "capacity_mAh_g": m.capacity_mAh_g,
                                "visit_index": m.visit_index})
        # mean camera time of each bin, per record (None = /entry/binned): for the final re-stamp
        camera_ns = float(np.mean(b.camera_times_ns)) if b.camera_times_ns else float("nan")
        self._bin_camera_ns.setdefault(m.position, []).append(camera_ns)
        if self.setup.bin_truth is not None:   # rows aligned with the record's binned rows
            truth_key = "truth_binned" if m.position is None else L.position_key("truth_binned", m.position)
            append_bin_truth(self._file, truth_key, self.setup.bin_truth, b, self._rel,
                             None if m.position is None else self._fields.get(m.position, []))
        self.bins_written += 1

    def _restamp(self) -> None:
        """Bin times again (each record's) with the clock estimate at the end (early bins had few pairs)."""
        if self.setup.restamp is None or self.error is not None:
            return
        for position, camera_ns in self._bin_camera_ns.items():
            keys = ("binned", "differential") if position is None else (
                L.position_key("binned", position), L.position_key("differential", position))
            restamp_bins(self._file, self.setup.t0_s, self.setup.restamp, camera_ns, *keys)

    def _w_diff(self, m: DifferentialMsg) -> None:
        key = "differential" if m.position is None else L.position_key("differential", m.position)
        if m.mask is not None:
            self._file.set_mask(m.mask, key)
        d = m.diff
        self._file.append_frame(key, d.pixels)
        self._file.append(key, {**vars(d), "time": self._rel(d.time_s), "fit_ok": int(d.fit_ok)})
        self.differentials_written += 1

    def _w_raw(self, m: RawMsg) -> None:
        f = m.frame
        self._file.append_frame("raw", f.pixels)
        self._file.append("raw", {"host_time_s": self._rel(f.host_time_s), "frame_id": f.frame_id,
                                  "camera_time_ns": f.camera_time_ns})
        self.raw_written += 1

    def _w_log(self, m: LogMsg) -> None:
        self._w_logs([m])

    def _w_logs(self, messages: list[LogMsg]) -> None:
        """Append log records of one table (all ``messages`` have the same key) in one go."""
        key = messages[0].key
        if key == "truth" and not self._file.has("truth"):
            return
        self._file.append_rows(key, [self._log_row(m) for m in messages])

    def _log_row(self, m: LogMsg) -> dict[str, Any]:
        record = m.record
        if m.key == "truth":
            row = dict(record)
            row["time"] = self._rel(float(record.get("time_s", float("nan"))))
        elif m.key == "visits":
            if not self._file.has("visits"):
                return
            row = {k: (self._rel(v) if k.endswith("time_s") else v) for k, v in vars(record).items()}
            row["time"] = row["time_s"]
        else:
            row = dict(vars(record)) if hasattr(record, "__dict__") else {
                k: getattr(record, k) for k in getattr(record, "__dataclass_fields__", {})}
            row["time"] = self._rel(record.time_s)
        if m.key == "focus":
            state = str(getattr(getattr(record, "state", "off"), "value", getattr(record, "state", "off")))
            row["state"] = L.FOCUS_STATES.index(state) if state in L.FOCUS_STATES else -1
        return row

    def _w_technique(self, m: TechniqueMsg) -> None:
        self._file.append("techniques", {"step": m.step.index, "cycle": m.step.cycle, "kind": m.step.kind,
                                         "start_time_s": self._rel(m.start_s),
                                         "parameters": m.step.parameters_json()})

    def _w_calibration(self, m: CalibrationMsg) -> None:
        self._file.append("calibration", {**m.calibration, "time": self._rel(m.time_s),
                                          "json": json.dumps(m.calibration, default=_jsonable)})

    def _w_devices(self, m: DeviceLogMsg) -> None:
        t = self._rel(m.time_s)
        if m.stage_nm is not None:
            for axis in L.STAGE_AXES:
                self._file.append(f"stage_{axis}", {"time": t, axis: m.stage_nm.get(axis)})
        for key, device in (("led", m.led), ("laser", m.laser)):
            if device is not None:
                value_attr = L.TABLE[key].column(_value_source(key)).attr
                self._file.append(key, {"time": t, value_attr: getattr(device, value_attr, None),
                                        "enabled": int(bool(getattr(device, "enabled", False)))})


def _value_source(key: str) -> str:
    path = L.LED if key == "led" else L.FOCUS_LASER
    return str(L.SOURCES[path]["value_source"])


def _write_error_text(exc: BaseException) -> str:
    """A short reason for a failed write: the OS error text of h5py's long messages, or the message."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{os.strerror(exc.errno)} (errno {exc.errno})"
    match = re.search(r"errno = (\d+), error message = '([^']*)'", str(exc))
    if match:
        return f"{match.group(2)} (errno {match.group(1)})"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)
