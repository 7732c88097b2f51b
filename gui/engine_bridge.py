"""EngineBridge: the thread boundary between the Qt window and the Qt-free engine.

- Every device command (open, start/stop, lock, move, LED...) runs on the command worker thread,
  one at a time; errors come back as ``command_failed(what, message)`` and never raise in the GUI.
- Slow device read-backs (stage position, LED and laser state) run on a separate monitor worker,
  at most one in flight, so a hung device cannot queue up work or block commands.
- Engine callbacks (events, focus samples) only append to deques; the GUI drains them.
- The engine is used only through :class:`operascope.acquisition.engine_api.EngineAPI` (plain data):
  the bridge never touches a device, so the same code can later talk to a remote engine.
- :meth:`snapshot` is called by the window's QTimer on the GUI thread and only takes
  already-available data (newest frame, newest differential, counters).
"""

from __future__ import annotations

import collections
import inspect
import os
import threading
import time
from typing import Any, Callable, Optional

import numpy as np
from PyQt5 import QtCore, QtWidgets

from operascope.acquisition.engine_api import EngineAPI
from operascope.gui.growing_columns import GrowingColumns  # noqa: F401 - re-exported
from operascope.acquisition.focus_lock import FocusSample
from operascope.gui.echem_panel import ProtocolRequest
from operascope.gui.recording_panel import RecordingRequest
from operascope.gui.snapshot import EventRow, FocusRow, GuiSnapshot
from operascope.gui.worker import CommandWorker

MONITOR_PERIOD_S = 0.25
MAX_EVENTS_PER_SNAPSHOT = 200
MAX_FOCUS_ROWS = 10_000


class EngineBridge(QtCore.QObject):
    """Owns the engine (an :class:`EngineAPI`, e.g. a ``Microscope``) and the worker threads that talk to it."""

    opened = QtCore.pyqtSignal()
    open_failed = QtCore.pyqtSignal(str)
    command_failed = QtCore.pyqtSignal(str, str)
    command_finished = QtCore.pyqtSignal(str, object)

    def __init__(self, open_microscope: Callable[[], EngineAPI], monitor_period_s: float = MONITOR_PERIOD_S,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._open_microscope = open_microscope
        self.microscope: Optional[EngineAPI] = None
        #: True when the engine runs in its own process (``operascope serve``): closing only detaches.
        self.is_attached = False
        self.commands = CommandWorker("commands", self)
        self.monitor = CommandWorker("monitor", self)
        self.commands.finished.connect(self._on_finished)
        self.commands.failed.connect(self._on_failed)
        self.monitor.failed.connect(self._on_monitor_failed)
        self._events: collections.deque[EventRow] = collections.deque(maxlen=5000)
        self._focus_rows: collections.deque[FocusRow] = collections.deque(maxlen=MAX_FOCUS_ROWS)
        self._readback_lock = threading.Lock()
        self._readback: dict[str, object] = {}
        self._last_monitor_error: str | None = None
        self._shut_down = False
        self._recording = False
        self._calibration: dict | None = None
        self._echem = GrowingColumns(4)
        self._profile_error: str | None = None
        self._profile_reads = 0
        self._monitor_timer = QtCore.QTimer(self)
        self._monitor_timer.setInterval(int(monitor_period_s * 1000))
        self._monitor_timer.timeout.connect(self._poll_devices)

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> None:
        """Open the rig and start live view on the command thread; emits ``opened`` or ``open_failed``."""
        self.commands.submit("open", self._open)

    def _open(self) -> None:
        microscope = self._open_microscope()
        self._subscribe(microscope)  # before opening, so the "rig opened" event is seen too
        microscope.open()
        self.microscope = microscope
        try:
            microscope.start_live()
        except Exception:
            self.microscope = None
            microscope.close()
            raise

    def _subscribe(self, microscope: EngineAPI) -> None:
        microscope.subscribe_events(self._on_engine_event)
        microscope.subscribe_focus_samples(self._on_focus_sample)

    def shutdown(self, timeout_s: float = 30.0, keep_responsive: bool = True) -> bool:
        """Stop recording, protocol, focus lock and live view, close the rig; wait up to ``timeout_s``.

        With ``keep_responsive`` the Qt event loop keeps running while waiting. True when done in time.
        """
        if self._shut_down:
            return True
        self._shut_down = True
        self._monitor_timer.stop()
        done = threading.Event()
        self.commands.submit("shutdown", self._close_engine, done)
        deadline = time.monotonic() + timeout_s
        app = QtWidgets.QApplication.instance()
        while not done.is_set() and time.monotonic() < deadline:
            if keep_responsive and app is not None:
                app.processEvents(QtCore.QEventLoop.AllEvents, 20)
            done.wait(0.01)
        self.monitor.wait(max(0.0, deadline - time.monotonic()))
        return done.is_set()

    def _close_engine(self, done: threading.Event) -> None:
        microscope, self.microscope = self.microscope, None
        try:
            if microscope is not None:
                microscope.close()  # stops protocols -> focus -> camera -> writer -> devices
        finally:
            self._recording = False
            done.set()

    # ------------------------------------------------------------------ snapshot (GUI thread, non-blocking)

    def snapshot(self) -> GuiSnapshot:
        """Newest state for the window; takes only data the engine already holds."""
        snap = GuiSnapshot()
        microscope = self.microscope
        if microscope is not None:
            snap.opened = True
            self._fill_from_engine(microscope, snap)
        with self._readback_lock:
            snap.stage_nm = self._readback.get("stage_nm")
            snap.led = self._readback.get("led")
            snap.laser = self._readback.get("laser")
            snap.focus_profile = self._readback.get("focus_profile")
        published = self._published_profile(microscope)
        if published is not None:
            snap.focus_profile = published
        for _ in range(min(len(self._events), MAX_EVENTS_PER_SNAPSHOT)):
            snap.events.append(self._events.popleft())
        while self._focus_rows:
            snap.focus_rows.append(self._focus_rows.popleft())
        if snap.focus_rows and snap.focus_rows[-1].position_px is not None:
            snap.focus_position_px = snap.focus_rows[-1].position_px
        return snap

    def _fill_from_engine(self, microscope: EngineAPI, snap: GuiSnapshot) -> None:
        status = microscope.status()
        snap.clock_now_s = status.clock_s
        snap.live = status.state in ("live", "recording")
        snap.recording = status.state == "recording"
        self._recording = snap.recording
        snap.frames_in = status.frames_in
        snap.frames_dropped = status.frames_dropped
        snap.frames_not_binned = status.frames_dropped_in_run
        snap.simulator_behind_frames = int(getattr(getattr(getattr(microscope, "rig", None), "camera", None), "frames_skipped_behind", 0) or 0)
        snap.record_path = status.recording_path
        snap.frames_recorded = status.frames_recorded
        snap.bins_written = status.bins_written
        snap.raw_written = status.raw_written
        snap.writer_queue_depth = status.writer_queue_depth
        snap.focus_state = status.focus_state
        snap.positions = list(getattr(status, "positions", None) or [])
        snap.voltage_v = _optional_float(status.voltage_v)
        snap.current_a = _optional_float(status.current_a)
        snap.echem_running = status.protocol_running
        if status.protocol is not None:
            step = f", step {status.protocol_step}" if status.protocol_step is not None else ""
            capacity = _optional_float(status.capacity_mAh_g)
            cap_text = f", {capacity:.1f} mAh/g" if capacity is not None else ""
            snap.echem_text = f"{status.protocol} {'running' if status.protocol_running else 'ended'}{step}{cap_text}"
        frame = microscope.latest_frame()
        if frame is not None:
            snap.frame, snap.frame_id, snap.frame_host_time_s = frame.pixels, frame.frame_id, frame.host_time_s
        diff = microscope.latest_differential()
        if diff is not None:
            snap.differential, snap.differential_index = diff.pixels, diff.index
            snap.mask = microscope.live_mask
            snap.reference = getattr(microscope, "live_reference", None)
        snap.focus_calibration = self._calibration
        with self._readback_lock:
            snap.bytes_written = self._readback.get("bytes_written") if snap.recording else None

    def _published_profile(self, microscope: Optional[EngineAPI]) -> np.ndarray | None:
        """The newest focus-sensor profile the engine published (new ones only), else None."""
        if microscope is None:
            return None
        profile, reads = microscope.latest_focus_profile()
        if profile is None or reads == self._profile_reads:
            return None
        self._profile_reads = reads
        return profile

    def clock(self) -> tuple[Callable[[], float], float] | None:
        """(now_s, speed) of the rig clock once open, else None."""
        microscope = self.microscope
        if microscope is None:
            return None
        try:
            return microscope.clock_s, microscope.clock_speed()
        except RuntimeError:   # closed meanwhile
            return None

    def echem_series(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """(time s, voltage V, current A, capacity mAh/g) of the electrochemistry log so far, or None."""
        microscope = self.microscope
        if microscope is None:
            return None
        new_points = microscope.echem_samples(len(self._echem))
        if new_points:
            self._echem.extend((p.time_s, p.voltage_v, p.current_a, p.capacity_mAh_g) for p in new_points)
        if len(self._echem) == 0:
            return None
        time_s, voltage_v, current_a, capacity = self._echem.columns()
        return time_s, voltage_v, current_a, capacity

    def is_recording(self) -> bool:
        """True while a recording runs (as last known)."""
        return self._recording

    # ------------------------------------------------------------------ engine callbacks (engine threads)

    def _on_engine_event(self, *args: object) -> None:   # an Event (or level, message[, source])
        self._events.append(_event_row(args))

    def _on_focus_sample(self, sample: FocusSample) -> None:
        self._focus_rows.append(FocusRow(float(sample.time_s), float(sample.error_nm), float(sample.z_nm),
                                         str(sample.state), _optional_float(getattr(sample, "position_px", None))))

    # ------------------------------------------------------------------ commands (GUI thread -> command worker)

    def _submit(self, what: str, job: Callable[..., object], *args: object) -> None:
        if self._shut_down:
            self.command_failed.emit(what, "the window is closing; command ignored")
            return
        self.commands.submit(what, self._with_microscope, what, job, *args)

    def _with_microscope(self, what: str, job: Callable[..., object], *args: object) -> object:
        microscope = self.microscope
        if microscope is None:
            raise RuntimeError(f"{what}: the rig is not open")
        return job(microscope, *args)

    def start_recording(self, request: RecordingRequest, positions: Any = None, dwell_bins: int = 1) -> None:
        """Start a recording; with ``positions`` (a PositionList) a multi-position run, ``dwell_bins`` per visit."""
        if positions is None:
            self._submit("start_recording", lambda m: m.start_recording(str(request.path), bin_size=request.bin_size,
                                                                         save_raw=request.save_raw))
            return
        self._submit("start_recording", _start_multi_position, request, positions, int(dwell_bins))

    def stop_recording(self) -> None:
        self._submit("stop_recording", lambda m: m.stop_recording("stopped from the GUI"))

    def start_protocol(self, request: ProtocolRequest) -> None:
        def start(m: Any) -> Any:
            m.note(f"protocol command (gui): start {getattr(request, 'kind', request)}: {request}", source="manual")
            return m.start_protocol(request)

        self._submit("start_protocol", start)

    def stop_protocol(self) -> None:
        self._submit("stop_protocol", lambda m: (m.note("protocol command (gui): stop", source="manual"),
                                                 m.stop_protocol()))

    def focus_calibrate(self) -> None:
        # the engine's focus service switches the 980 nm laser on first if it is off
        self._submit("focus_calibrate", lambda m: m.calibrate_focus())

    def focus_lock(self) -> None:
        self._submit("focus_lock", lambda m: m.lock_focus())  # calibrates first when there is no calibration

    def focus_unlock(self) -> None:
        self._submit("focus_unlock", lambda m: m.unlock_focus())

    def focus_autofocus(self) -> None:
        self._submit("focus_autofocus", _autofocus)

    def focus_set_offset(self, offset_nm: float) -> None:
        self._submit("focus_set_offset", lambda m: m.set_focus_offset_nm(float(offset_nm)))

    def stage_move(self, targets_nm: dict, confirmed: bool = False) -> None:
        """A manual move, checked by the engine's policy; refusals come back as failures."""
        self._submit("stage_move", lambda m: m.move_stage_nm({k: float(v) for k, v in targets_nm.items()},
                                                             confirmed=confirmed, origin="gui"))

    def stage_halt(self) -> None:
        self._submit("stage_halt", lambda m: m.halt_stage())

    def led_enable(self, on: bool) -> None:
        self._submit("led_enable", lambda m: m.set_led(on=bool(on), origin="gui"))

    def led_set_current(self, current_a: float) -> None:
        self._submit("led_set_current", lambda m: m.set_led(current_a=float(current_a), origin="gui"))

    def laser_enable(self, on: bool) -> None:
        self._submit("laser_enable", lambda m: m.set_laser(on=bool(on), origin="gui"))

    def laser_set_power(self, power_w: float) -> None:
        self._submit("laser_set_power", lambda m: m.set_laser(power_w=float(power_w), origin="gui"))

    def set_fiducial(self, x_px: float, y_px: float) -> None:
        def pick(m: EngineAPI) -> None:
            m.set_fiducial(float(x_px), float(y_px))
            m.note(f"fiducial picked at ({x_px:.1f}, {y_px:.1f}) px; live reference restarted", source="gui")

        self._submit("set_fiducial", pick)

    def note(self, message: str) -> None:
        """An operator note into the engine's event log (and so into a running recording's /entry/events)."""
        self._submit("note", lambda m: m.note(message, source="gui"))

    # ------------------------------------------------------------------ device read-backs (monitor worker)

    def start_monitoring(self) -> None:
        """Start periodic read-backs of stage, LED and laser (off the GUI thread)."""
        self._monitor_timer.start()

    def _poll_devices(self) -> None:
        microscope = self.microscope
        if microscope is None or self._shut_down:
            return
        if self.monitor.pending == 0:
            self.monitor.submit("monitor", self._read_devices, microscope)
        if self.commands.pending == 0:
            # the focus sensor is read on the command thread, so it never races a calibration or lock()
            self.commands.submit("focus_profile", self._read_focus_profile, microscope)

    def _read_devices(self, microscope: EngineAPI) -> None:
        values: dict[str, object] = {
            "stage_nm": microscope.stage_position_nm(),
            "led": microscope.set_led(),      # no change: the current state
            "laser": microscope.set_laser(),
        }
        path = microscope.status().recording_path
        if path is not None:
            try:
                values["bytes_written"] = os.path.getsize(path)
            except OSError:
                pass
        with self._readback_lock:
            self._readback.update(values)
        self._last_monitor_error = None

    def _read_focus_profile(self, microscope: EngineAPI) -> None:
        """One focus-sensor profile while the lock loop is not running (the engine reads it; while the
        lock runs it owns the sensor and the window shows the profiles it publishes)."""
        try:
            profile = microscope.read_focus_profile()
        except Exception as exc:  # noqa: BLE001 - shown once, never raised
            message = f"focus sensor: {exc}"
            if message != self._profile_error:
                self._profile_error = message
                microscope.note(message, source="gui", level="warning")
            return
        if profile is None:
            return
        self._profile_error = None
        with self._readback_lock:
            self._readback["focus_profile"] = profile

    # ------------------------------------------------------------------ results (GUI thread)

    def _on_finished(self, what: str, result: object) -> None:
        if what == "open":
            self.start_monitoring()
            self.opened.emit()
            return
        if what == "focus_profile":
            return
        if what in ("focus_calibrate", "focus_lock") and isinstance(result, dict):
            self._calibration = result
        if what == "start_recording":
            self._recording = True
        elif what == "stop_recording":
            self._recording = False
        self.command_finished.emit(what, result)

    def _on_failed(self, what: str, message: str) -> None:
        if what == "open":
            self.open_failed.emit(message)
            return
        self.command_failed.emit(what, message)

    def _on_monitor_failed(self, _what: str, message: str) -> None:
        if message != self._last_monitor_error:  # report each distinct read-back failure once
            self._last_monitor_error = message
            self.command_failed.emit("read-back", message)


def _start_multi_position(microscope: Any, request: RecordingRequest, positions: Any, dwell_bins: int) -> None:
    """A recording that cycles through ``positions`` (EngineAPI.start_recording(positions=, dwell_bins=))."""
    try:
        accepts = "positions" in inspect.signature(microscope.start_recording).parameters
    except (TypeError, ValueError):
        accepts = True
    if not accepts:
        raise RuntimeError("this engine cannot record a position list (no start_recording(positions=...))")
    microscope.note(f"recording all {len(positions)} positions ({', '.join(positions.names())}), "
                    f"{dwell_bins} bin(s) per visit", source="gui")
    microscope.start_recording(str(request.path), bin_size=request.bin_size, save_raw=request.save_raw,
                               positions=positions, dwell_bins=dwell_bins)


def _autofocus(microscope: Any) -> str:
    """Run the engine's image-based autofocus; its one-line summary."""
    if not callable(getattr(microscope, "autofocus", None)):
        raise RuntimeError("this engine offers no autofocus")
    result = microscope.autofocus()
    return str(result.summary()) if hasattr(result, "summary") else str(result)


def _optional_float(value: object) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _event_row(args: tuple) -> EventRow:
    """Accept an event object (time_s, level, source, message attributes) or (level, message[, source])."""
    if len(args) == 1:
        event = args[0]
        return EventRow(_optional_float(getattr(event, "time_s", None)), str(getattr(event, "level", "info")),
                        str(getattr(event, "source", "engine")), str(getattr(event, "message", event)))
    level, message = str(args[0]), str(args[1])
    source = str(args[2]) if len(args) > 2 else "engine"
    return EventRow(None, level, source, message)
