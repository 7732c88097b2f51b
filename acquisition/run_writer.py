"""RunWriter: the one thread that uses h5py; writes the run file of DESIGN.md in SWMR mode.

Every dataset is created (resizable, chunked, length 0) before SWMR mode is switched on, so a
second process can open the file with ``h5py.File(path, "r", swmr=True)`` while it grows.
The file is flushed after every binned frame and at least every ``flush_interval_s`` (wall).
Times in the file are seconds since the run's start (rig clock minus ``t0_s``).

A write error (disk full, file size limit, I/O error) ends the writer: every growing dataset is cut
back to its length at the last successful flush (so a frame whose pixels never reached the disk is
not left in the file as zeros), the stop reason is recorded if the disk still takes it, and
:attr:`RunWriter.error` names the file and what happened.
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import os
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import h5py
import numpy as np

from operascope.acquisition.binner import BinnedFrame
from operascope.acquisition.echem_history import EchemSample
from operascope.acquisition.events import Event
from operascope.acquisition.live_differential import DifferentialFrame
from operascope.acquisition.protocols import ProtocolStep
from operascope.acquisition.queues import MustNotDropQueue
from operascope.analysis import runfile_layout as L
from operascope.devices.base import Frame

PROGRAM_NAME = "operascope"
_STR = {"kind": "S16", "level": "S8", "source": "S32", "message": "S512", "parameters": "S512", "json": "S4096",
        "stamp": "S40"}
_STOP = object()
#: Chunk cache per dataset. Every dataset is written append-only, so a few chunks suffice; HDF5's
#: default (1 MB per dataset, ~60 datasets) lets a long run's memory creep up by tens of MB.
CHUNK_CACHE_BYTES = 64 * 1024
#: Small log records (not frames): they go through an unblocking side channel so that a slow disk
#: never stalls the focus-lock loop, the protocol runner or whoever emits an event.
_LOG_KINDS = frozenset({"echem", "technique", "focus", "calibration", "event", "truth", "devices"})


def _iso_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="milliseconds")


def _fixed(text: str, dtype: str) -> bytes:
    """UTF-8 bytes cut to the fixed width of ``dtype`` (e.g. "S512")."""
    width = int(dtype[1:])
    return text.encode("utf-8", "replace")[:width]


@dataclass
class RunSetup:
    """Everything the writer needs to lay out the file. Sizes in px, times on the rig clock (s)."""

    path: str
    frame_shape: tuple[int, int]
    t0_s: float
    config_toml: str
    title: str = "operascope run"
    save_raw: bool = False
    raw_compression: str = "lzf"
    camera: dict[str, Any] = field(default_factory=dict)
    sample: dict[str, Any] = field(default_factory=dict)
    particle_geometry: Any = None          # simulated runs: world.particle_geometry()
    focus_calibration: dict[str, Any] | None = None
    flush_interval_s: float = 1.0
    queue_capacity: int = 1000
    program_version: str = ""


class RunWriter:
    """Owns the HDF5 file. Producers call the ``write_*`` methods from any thread (they queue)."""

    def __init__(self, setup: RunSetup, on_event: Callable[[str, str], None] | None = None,
                 max_pending_logs: int = 1_000_000) -> None:
        """Frames go through a bounded must-not-drop queue; log records through an unblocking side
        channel of at most ``max_pending_logs`` records (beyond that they are counted in ``logs_dropped``)."""
        self.setup = setup
        self._on_event = on_event or (lambda level, message: None)
        self.queue: MustNotDropQueue[Any] = MustNotDropQueue(
            "writer", setup.queue_capacity, lambda msg: self._on_event("warning", msg))
        self._stop = threading.Event()
        self._logs: collections.deque[tuple[str, tuple]] = collections.deque()
        self.max_pending_logs = max_pending_logs
        self.logs_dropped = 0
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.error: str | None = None
        self.bins_written = 0
        self.differentials_written = 0
        self.raw_written = 0
        self.flushes = 0
        self.stop_reason = "running"
        self.frames_in = 0
        self.frames_dropped = 0
        self._thread = threading.Thread(target=self._run, name="run-writer", daemon=True)
        self._h5: h5py.File | None = None
        self._ds: dict[str, h5py.Dataset] = {}
        self._durable_lengths: dict[str, int] = {}   # growing datasets' lengths at the last good flush
        self._growing: list[str] | None = None
        self.bins_flushed = 0                         # binned frames known to be on disk

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout_s: float = 30.0) -> None:
        """Create the file (in the writer thread) and switch SWMR on; raise if that fails."""
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"{self.setup.path}: run file not created within {timeout_s} s")
        if self._startup_error is not None:
            self._thread.join(5.0)
            raise self._startup_error

    def close(self, stop_reason: str, frames_in: int | None = None, frames_dropped: int | None = None,
              timeout_s: float = 60.0) -> None:
        """Write everything queued, the end time and ``stop_reason``; close the file."""
        if frames_in is not None:
            self.frames_in = int(frames_in)
        if frames_dropped is not None:
            self.frames_dropped = int(frames_dropped)
        self.stop_reason = stop_reason
        if self._thread.is_alive():
            self.queue.put(_STOP)
            self._thread.join(timeout_s)
            if self._thread.is_alive():  # pragma: no cover - a hung file system
                self._stop.set()
                self._thread.join(5.0)

    @property
    def is_alive(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------------ producers (any thread)
    def _post(self, kind: str, *payload: Any) -> None:
        if not self._thread.is_alive() or self.error is not None:
            return
        if kind in _LOG_KINDS:
            if len(self._logs) < self.max_pending_logs:
                self._logs.append((kind, payload))
            else:
                self.logs_dropped += 1
            return
        self.queue.put((kind, payload), stop=self._stop)

    def write_binned(self, binned: BinnedFrame, voltage_v: float, current_a: float, capacity_mAh_g: float) -> None:
        self._post("binned", binned, voltage_v, current_a, capacity_mAh_g)

    def write_differential(self, diff: DifferentialFrame, mask: np.ndarray | None) -> None:
        self._post("diff", diff, mask)

    def write_raw(self, frame: Frame) -> None:
        self._post("raw", frame)

    def write_echem(self, sample: EchemSample) -> None:
        self._post("echem", sample)

    def write_technique(self, step: ProtocolStep, start_s: float) -> None:
        self._post("technique", step, start_s)

    def write_focus_sample(self, sample: Any) -> None:
        self._post("focus", sample)

    def write_focus_calibration(self, time_s: float, calibration: dict[str, Any]) -> None:
        self._post("calibration", time_s, calibration)

    def write_event(self, event: Event) -> None:
        self._post("event", event)

    def write_truth(self, truth: dict[str, Any]) -> None:
        self._post("truth", truth)

    def write_device_log(self, time_s: float, stage_nm: dict | None, led: Any, laser: Any) -> None:
        self._post("devices", time_s, stage_nm, led, laser)

    def update_counts(self, frames_in: int, frames_dropped: int) -> None:
        self.frames_in, self.frames_dropped = int(frames_in), int(frames_dropped)

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        try:
            self._create()
        except BaseException as exc:  # noqa: BLE001 - handed back to start()
            self._startup_error = exc
            self._close_file()
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
                if item is _STOP:
                    self._drain_logs()
                    break
                if item is not None and self.error is None:
                    kind, payload = item
                    getattr(self, f"_w_{kind}")(*payload)
                    if kind == "binned":
                        self._flush()
                        last_flush = time.monotonic()
                if self._h5 is not None and time.monotonic() - last_flush >= self.setup.flush_interval_s:
                    self._flush()
                    last_flush = time.monotonic()
                if self._stop.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - the file is closed properly below
            self._roll_back_to_last_flush()
            self.error = (f"run writer failed: {type(exc).__name__}: {_write_error_text(exc)} while writing "
                          f"{self.setup.path}; recording stopped; the file keeps the {self.bins_flushed} "
                          f"binned frames flushed before")
            self._on_event("error", self.error)
            self._drain_discard()
        finally:
            self._finish()

    def _drain_logs(self) -> None:
        """Write every pending log record (writer thread)."""
        while self.error is None:
            try:
                kind, payload = self._logs.popleft()
            except IndexError:
                return
            getattr(self, f"_w_{kind}")(*payload)

    def _drain_discard(self) -> None:
        """After a write error: empty the queue until the stop message so producers never block."""
        while True:
            try:
                if self.queue.get(timeout_s=0.5) is _STOP:
                    return
            except queue.Empty:
                if self._stop.is_set():
                    return

    def _finish(self) -> None:
        if self._h5 is None:
            return
        try:
            self._ds["end_time"][()] = _fixed(_iso_now(), _STR["stamp"])
            self._ds["stop_reason"][()] = _fixed(self.stop_reason, "S64")
            self._write_counts()
            self._flush()
        except Exception as exc:  # noqa: BLE001
            if self.error is None:
                self._roll_back_to_last_flush()
                self.error = (f"run writer could not finish {self.setup.path}: {_write_error_text(exc)}; "
                              f"the file keeps the {self.bins_flushed} binned frames flushed before")
                self._on_event("error", self.error)
        finally:
            try:
                self._close_file()
            except Exception as exc:  # noqa: BLE001 - the disk refused the last metadata; data is flushed
                self._on_event("warning", f"{self.setup.path} closed with an error ({_write_error_text(exc)}); "
                                          f"its content up to the last flush is readable")

    def _close_file(self) -> None:
        if self._h5 is not None:
            try:
                self._h5.close()
            finally:
                self._h5 = None

    def _flush(self) -> None:
        assert self._h5 is not None
        self._write_counts()
        self._h5.flush()
        self.flushes += 1
        if self._growing is None:
            self._growing = [key for key, ds in self._ds.items() if ds.maxshape and ds.maxshape[0] is None]
        self._durable_lengths = {key: self._ds[key].shape[0] for key in self._growing}
        self.bins_flushed = self._durable_lengths.get("binned/frames", 0)

    def _roll_back_to_last_flush(self) -> None:
        """After a write error: cut every growing dataset back to its length at the last good flush.

        Only in-place metadata changes; without this, closing the file would record the new lengths
        while the pixels of the last frames never reached the disk (read back as zeros)."""
        for key, length in self._durable_lengths.items():
            ds = self._ds[key]
            try:
                if ds.shape[0] > length:
                    ds.resize(length, axis=0)
            except Exception:  # noqa: BLE001 - best effort; the error itself is reported by the caller
                pass

    def _write_counts(self) -> None:
        self._ds["frames_in"][()] = self.frames_in
        self._ds["frames_dropped"][()] = self.frames_dropped

    # ------------------------------------------------------------------ layout
    def _create(self) -> None:
        s = self.setup
        h, w = s.frame_shape
        f = h5py.File(s.path, "w", libver="latest", rdcc_nbytes=CHUNK_CACHE_BYTES)
        self._h5 = f
        entry = f.create_group(L.ENTRY)
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "binned"
        f.attrs["default"] = "entry"
        entry.create_dataset("start_time", data=_iso_now())
        entry["start_time"].attrs["rig_clock_s"] = s.t0_s
        self._ds["end_time"] = entry.create_dataset("end_time", data=np.bytes_(b""), dtype=_STR["stamp"])
        self._ds["stop_reason"] = entry.create_dataset("stop_reason", data=np.bytes_(b""), dtype="S64")
        entry.create_dataset("title", data=s.title)
        entry.create_dataset("run_id", data=str(uuid.uuid4()))
        prog = entry.create_dataset("program_name", data=PROGRAM_NAME)
        prog.attrs["version"] = s.program_version
        entry.create_dataset("config", data=s.config_toml)  # /entry/config: TOML text
        entry["config"].attrs["format"] = "toml"

        binned = self._nxdata(L.BINNED, "frames")
        self._frames("binned/frames", binned, (h, w), np.float32, None)
        for name, dtype, units in (("time", "f8", "s"), ("n_frames_in_bin", "i4", None), ("first_frame_id", "i8", None),
                                   ("last_frame_id", "i8", None), ("partial", "u1", None),
                                   ("dropped_in_bin", "i4", None), ("voltage", "f8", "V"), ("current", "f8", "A"),
                                   ("capacity_mAh_g", "f8", "mAh/g")):
            self._log(f"binned/{name}", binned, name, dtype, units)

        diff = self._nxdata(L.DIFFERENTIAL, "frames")
        self._frames("differential/frames", diff, (h, w), np.float32, None)
        for name, dtype, units in (("time", "f8", "s"), ("drift_x_px", "f8", "px"), ("drift_y_px", "f8", "px"),
                                   ("fit_ok", "u1", None)):
            self._log(f"differential/{name}", diff, name, dtype, units)
        self._ds["differential/mask"] = diff.create_dataset("mask", shape=(h, w), dtype="u1", fillvalue=0)

        if s.save_raw:
            raw = self._nxdata(L.RAW, "frames")
            compression = None if s.raw_compression == "none" else s.raw_compression
            self._frames("raw/frames", raw, (h, w), np.uint16, compression)
            for name, dtype, units in (("frame_id", "i8", None), ("camera_time_ns", "i8", "ns"),
                                       ("host_time", "f8", "s")):
                self._log(f"raw/{name}", raw, name, dtype, units)

        instrument = f.create_group(L.INSTRUMENT)
        instrument.attrs["NX_class"] = "NXinstrument"
        camera = f.create_group(L.CAMERA)
        camera.attrs["NX_class"] = "NXdetector"
        units = {"exposure_time": "ms", "frame_rate": "Hz", "pixel_size": "nm", "gain": "dB", "roi": "px"}
        for key, value in s.camera.items():
            ds = camera.create_dataset(key, data=value)
            if key in units:
                ds.attrs["units"] = units[key]
        self._ds["frames_in"] = camera.create_dataset("frames_in", data=0, dtype="i8")
        self._ds["frames_dropped"] = camera.create_dataset("frames_dropped", data=0, dtype="i8")

        led = f.create_group(L.LED)
        led.attrs["NX_class"] = "NXsource"
        led.create_dataset("wavelength", data=740.0).attrs["units"] = "nm"
        laser = f.create_group(L.FOCUS_LASER)
        laser.attrs["NX_class"] = "NXsource"
        laser.create_dataset("wavelength", data=980.0).attrs["units"] = "nm"
        for group, prefix, value in ((led, "led", "current"), (laser, "laser", "power")):
            log = group.create_group("log")
            log.attrs["NX_class"] = "NXlog"
            self._log(f"{prefix}/time", log, "time", "f8", "s")
            self._log(f"{prefix}/{value}", log, value, "f8", "A" if value == "current" else "W")
            self._log(f"{prefix}/enabled", log, "enabled", "u1", None)
        stage = f.create_group(L.STAGE)
        stage.attrs["NX_class"] = "NXpositioner"
        for name in ("time", "x", "y", "z"):
            self._log(f"stage/{name}", stage, name, "f8", "s" if name == "time" else "nm")

        focus = f.create_group(L.FOCUS_LOCK)
        focus.attrs["NX_class"] = "NXcollection"
        cal = focus.create_group("calibration")
        for name, dtype, units in (("time", "f8", "s"), ("slope_px_per_nm", "f8", "px/nm"), ("offset_px", "f8", "px"),
                                   ("residual_nm", "f8", "nm"), ("json", _STR["json"], None)):
            self._log(f"cal/{name}", cal, name, dtype, units)
        flog = focus.create_group("log")
        flog.attrs["state_names"] = ",".join(L.FOCUS_STATES)
        for name, dtype, units in (("time", "f8", "s"), ("error_nm", "f8", "nm"), ("z_nm", "f8", "nm"),
                                   ("state", "i1", None), ("position_px", "f8", "px"), ("intensity", "f8", None)):
            self._log(f"focus/{name}", flog, name, dtype, units)

        echem = f.create_group(L.ELECTROCHEMISTRY)
        echem.attrs["NX_class"] = "NXcollection"
        echem.attrs["current_sign"] = "positive = oxidation = cathode charge"
        for name, dtype, units in (("time", "f8", "s"), ("voltage", "f8", "V"), ("current", "f8", "A"),
                                   ("capacity_mAh_g", "f8", "mAh/g"), ("step", "i4", None), ("cycle", "i4", None)):
            self._log(f"echem/{name}", echem, name, dtype, units)
        tech = echem.create_group("techniques")
        for name, dtype, units in (("step", "i4", None), ("cycle", "i4", None), ("kind", _STR["kind"], None),
                                   ("start_time", "f8", "s"), ("parameters", _STR["parameters"], None)):
            self._log(f"tech/{name}", tech, name, dtype, units)

        sample = f.create_group(L.SAMPLE)
        sample.attrs["NX_class"] = "NXsample"
        for key, value in s.sample.items():
            sample.create_dataset(key, data=value)
        if "active_mass_mg" in sample:
            sample["active_mass_mg"].attrs["units"] = "mg"

        events = f.create_group(L.EVENTS)
        events.attrs["NX_class"] = "NXcollection"
        for name, dtype in (("time", "f8"), ("level", _STR["level"]), ("source", _STR["source"]),
                            ("message", _STR["message"])):
            self._log(f"events/{name}", events, name, dtype, "s" if name == "time" else None)

        if s.particle_geometry is not None:
            self._create_simulation(f, s.particle_geometry)
        if s.focus_calibration is not None:
            self._w_calibration(s.t0_s, s.focus_calibration)
        f.swmr_mode = True
        f.flush()

    def _nxdata(self, path: str, signal: str) -> h5py.Group:
        group = self._h5.create_group(path)  # type: ignore[union-attr]
        group.attrs["NX_class"] = "NXdata"
        group.attrs["signal"] = signal
        group.attrs["axes"] = ["time", ".", "."]
        group.attrs["time_indices"] = 0
        return group

    def _frames(self, key: str, group: h5py.Group, shape: tuple[int, int], dtype: Any, compression: str | None) -> None:
        self._ds[key] = group.create_dataset("frames", shape=(0, *shape), maxshape=(None, *shape),
                                             chunks=(1, *shape), dtype=dtype, compression=compression)

    def _log(self, key: str, group: h5py.Group, name: str, dtype: Any, units: str | None) -> None:
        ds = group.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(256,), dtype=dtype)
        if units:
            ds.attrs["units"] = units
        self._ds[key] = ds

    def _create_simulation(self, f: h5py.File, geometry: Any) -> None:
        sim = f.create_group(L.SIMULATION)
        sim.attrs["NX_class"] = "NXcollection"
        columns = _geometry_columns(geometry)
        n_particles = len(next(iter(columns.values()))) if columns else 0
        self._n_particles = n_particles
        parts = sim.create_group("particles")
        for name, values in columns.items():
            parts.create_dataset(name, data=np.asarray(values))
        for name, units in (("time", "s"), ("drift_x_nm", "nm"), ("drift_y_nm", "nm"), ("drift_z_nm", "nm"),
                            ("defocus_nm", "nm"), ("soc", None), ("cell_voltage_v", "V")):
            self._log(f"sim/{name}", sim, name, "f8", units)
        ds = sim.create_dataset("particle_theta", shape=(0, n_particles), maxshape=(None, n_particles),
                                chunks=(256, max(1, n_particles)), dtype="f8")
        self._ds["sim/particle_theta"] = ds

    # ------------------------------------------------------------------ handlers (writer thread)
    def _rel(self, time_s: float) -> float:
        return float(time_s) - self.setup.t0_s

    def _append(self, key: str, value: Any) -> None:
        ds = self._ds[key]
        n = ds.shape[0]
        ds.resize(n + 1, axis=0)
        ds[n] = value

    def _w_binned(self, b: BinnedFrame, voltage_v: float, current_a: float, capacity: float) -> None:
        self._append("binned/frames", b.pixels)
        for key, value in (("time", self._rel(b.mid_time_s)), ("n_frames_in_bin", b.n_frames),
                           ("first_frame_id", b.first_frame_id), ("last_frame_id", b.last_frame_id),
                           ("partial", int(b.partial)), ("dropped_in_bin", b.dropped_in_bin),
                           ("voltage", voltage_v), ("current", current_a), ("capacity_mAh_g", capacity)):
            self._append(f"binned/{key}", value)
        self.bins_written += 1

    def _w_diff(self, d: DifferentialFrame, mask: np.ndarray | None) -> None:
        if mask is not None:
            self._ds["differential/mask"][...] = np.asarray(mask, dtype=np.uint8)
        self._append("differential/frames", d.pixels)
        for key, value in (("time", self._rel(d.time_s)), ("drift_x_px", d.drift_x_px), ("drift_y_px", d.drift_y_px),
                           ("fit_ok", int(d.fit_ok))):
            self._append(f"differential/{key}", value)
        self.differentials_written += 1

    def _w_raw(self, frame: Frame) -> None:
        self._append("raw/frames", frame.pixels)
        self._append("raw/frame_id", frame.frame_id)
        self._append("raw/camera_time_ns", frame.camera_time_ns)
        self._append("raw/host_time", self._rel(frame.host_time_s))
        self.raw_written += 1

    def _w_echem(self, s: EchemSample) -> None:
        for key, value in (("time", self._rel(s.time_s)), ("voltage", s.voltage_v), ("current", s.current_a),
                           ("capacity_mAh_g", s.capacity_mAh_g), ("step", s.step), ("cycle", s.cycle)):
            self._append(f"echem/{key}", value)

    def _w_technique(self, step: ProtocolStep, start_s: float) -> None:
        self._append("tech/step", step.index)
        self._append("tech/cycle", step.cycle)
        self._append("tech/kind", _fixed(step.kind, _STR["kind"]))
        self._append("tech/start_time", self._rel(start_s))
        self._append("tech/parameters", _fixed(step.parameters_json(), _STR["parameters"]))

    def _w_focus(self, sample: Any) -> None:
        state = str(getattr(sample, "state", "off"))
        state_index = L.FOCUS_STATES.index(state) if state in L.FOCUS_STATES else -1
        self._append("focus/time", self._rel(sample.time_s))
        self._append("focus/error_nm", float(sample.error_nm))
        self._append("focus/z_nm", float(sample.z_nm))
        self._append("focus/state", state_index)
        self._append("focus/position_px", _float(getattr(sample, "position_px", None)))
        self._append("focus/intensity", _float(getattr(sample, "intensity", None)))

    def _w_calibration(self, time_s: float, cal: dict[str, Any]) -> None:
        self._append("cal/time", self._rel(time_s))
        self._append("cal/slope_px_per_nm", _float(cal.get("slope_px_per_nm")))
        self._append("cal/offset_px", _float(cal.get("offset_px")))
        self._append("cal/residual_nm", _float(cal.get("residual_nm")))
        self._append("cal/json", _fixed(json.dumps(cal, default=_jsonable), _STR["json"]))

    def _w_event(self, event: Event) -> None:
        self._append("events/time", self._rel(event.time_s))
        self._append("events/level", _fixed(event.level, _STR["level"]))
        self._append("events/source", _fixed(event.source, _STR["source"]))
        self._append("events/message", _fixed(event.message, _STR["message"]))

    def _w_truth(self, truth: dict[str, Any]) -> None:
        if "sim/time" not in self._ds:
            return
        self._append("sim/time", self._rel(float(truth.get("time_s", float("nan")))))
        for name in ("drift_x_nm", "drift_y_nm", "drift_z_nm", "defocus_nm", "soc", "cell_voltage_v"):
            self._append(f"sim/{name}", _float(truth.get(name)))
        theta = np.full(self._n_particles, np.nan)
        values = np.asarray(truth.get("particle_theta", []), dtype=float).ravel()
        theta[: min(values.size, theta.size)] = values[: theta.size]
        self._append("sim/particle_theta", theta)

    def _w_devices(self, time_s: float, stage_nm: dict | None, led: Any, laser: Any) -> None:
        t = self._rel(time_s)
        if stage_nm is not None:
            self._append("stage/time", t)
            for axis in ("x", "y", "z"):
                self._append(f"stage/{axis}", _float(stage_nm.get(axis)))
        if led is not None:
            self._append("led/time", t)
            self._append("led/current", _float(getattr(led, "measured_current_a", None)))
            self._append("led/enabled", int(bool(getattr(led, "enabled", False))))
        if laser is not None:
            self._append("laser/time", t)
            self._append("laser/power", _float(getattr(laser, "power_w", None)))
            self._append("laser/enabled", int(bool(getattr(laser, "enabled", False))))


def _write_error_text(exc: BaseException) -> str:
    """A short reason for a failed write: the OS error text of h5py's long messages, or the message."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{os.strerror(exc.errno)} (errno {exc.errno})"
    match = re.search(r"errno = (\d+), error message = '([^']*)'", str(exc))
    if match:
        return f"{match.group(2)} (errno {match.group(1)})"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)


def _geometry_columns(geometry: Any) -> dict[str, list]:
    """Particle geometry as columns: accepts a dict of sequences or a sequence of dicts/objects."""
    if isinstance(geometry, dict):
        return {str(k): list(np.asarray(v).tolist()) for k, v in geometry.items()}
    rows = list(geometry)
    if not rows:
        return {}
    columns: dict[str, list] = {}
    for row in rows:
        items = row.items() if isinstance(row, dict) else vars(row).items() if hasattr(row, "__dict__") else (
            (k, getattr(row, k)) for k in row.__dataclass_fields__)  # type: ignore[union-attr]
        for key, value in items:
            if isinstance(value, (int, float, np.integer, np.floating, bool)):
                columns.setdefault(str(key), []).append(float(value))
    n = len(rows)
    return {k: v for k, v in columns.items() if len(v) == n}
