"""MainWindow: dockable panels over one EngineBridge, a status bar, remembered layout.

A QTimer (default 25 Hz) takes one non-blocking snapshot from the bridge and updates the panels;
every command goes through the bridge's worker threads.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from PyQt5 import QtCore, QtWidgets

from operascope.acquisition.manual_control import NEEDS_CONFIRMATION, format_si
from operascope.config.schema import RigConfig
from operascope.gui.counters import FrameCounters, live_counter_text, simulator_warning, status_counter_text
from operascope.gui.differential_panel import DifferentialPanel
from operascope.gui.display_math import RateMeter
from operascope.gui.echem_panel import EchemPanel, ProtocolRequest
from operascope.gui.engine_bridge import EngineBridge
from operascope.gui.focus_panel import FocusPanel
from operascope.gui.illumination_panel import IlluminationPanel
from operascope.gui.live_panel import LivePanel
from operascope.gui.positions_panel import PositionsPanel
from operascope.gui.recording_panel import RecordingPanel, RecordingRequest
from operascope.gui.sample_labels import match_sample_particles
from operascope.gui.science_panel import SciencePanel
from operascope.gui.snapshot import GuiSnapshot
from operascope.gui import window_layout
from operascope.gui.stage_panel import StagePanel

DEFAULT_REFRESH_HZ = 25.0
SLOW_REFRESH_EVERY = 5  # plots and disk space every N refreshes
CLOSE_TIMEOUT_S = 30.0


class MainWindow(QtWidgets.QMainWindow):
    """The operando microscope window."""

    def __init__(self, bridge: EngineBridge, config: RigConfig, settings: QtCore.QSettings,
                 refresh_hz: float = DEFAULT_REFRESH_HZ, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        if not 1.0 <= refresh_hz <= 200.0:
            raise ValueError(f"refresh_hz must be in [1, 200] Hz, got {refresh_hz}")
        self.bridge = bridge
        self.config = config
        self.settings = settings
        self.last_snapshot = GuiSnapshot()
        self.refresh_count = 0
        self.fps_in = RateMeter(window_s=2.0)
        self.fps_out = RateMeter(window_s=2.0)
        self.write_rate = RateMeter(window_s=3.0)
        self._closing = False
        self._close_confirmed = False
        self._differential_index_shown: int | None = None
        self._last_error_logged: str | None = None
        self._pending_move: dict | None = None
        #: wall time (ms) spent in each recent refresh: the GUI thread's own work per tick
        self.refresh_ms: deque[float] = deque(maxlen=5000)
        self.setWindowTitle("operascope — operando scattering microscope")

        acq = config.acquisition
        echem = config.electrochemistry
        self.live_panel = LivePanel(acq.pixel_size_nm)
        self.differential_panel = DifferentialPanel(acq.pixel_size_nm)
        self.focus_panel = FocusPanel()
        self.science_panel = SciencePanel(acq.pixel_size_nm, sample_matcher=lambda centroids: match_sample_particles(
            config, centroids, self.last_snapshot.stage_nm))
        self.stage_panel = StagePanel()
        self.positions_panel = PositionsPanel()
        self.illumination_panel = IlluminationPanel(led_current_a=acq.led_current_a,
                                                    laser_power_w=config.focus_lock.laser_power_w)
        self.echem_panel = EchemPanel(ProtocolRequest(
            "charge", c_rate=echem.c_rate, v_min=echem.v_min, v_max=echem.v_max, cycles=echem.cycles,
            gitt_current_ma_g=echem.gitt_current_ma_g, gitt_pulse_s=echem.gitt_pulse_s,
            gitt_rest_s=echem.gitt_rest_s))
        self.recording_panel = RecordingPanel(bin_size=acq.bin_size, save_raw=acq.save_raw)

        self.setDockOptions(QtWidgets.QMainWindow.AllowTabbedDocks | QtWidgets.QMainWindow.AnimatedDocks)
        self.docks: dict[str, QtWidgets.QDockWidget] = {}
        left, right, bottom = QtCore.Qt.LeftDockWidgetArea, QtCore.Qt.RightDockWidgetArea, QtCore.Qt.BottomDockWidgetArea
        self._add_dock("live", "Live", self.live_panel, left)
        self._add_dock("differential", "Differential", self.differential_panel, left)
        self._add_dock("focus", "Focus", self.focus_panel, right)
        self._add_dock("echem", "Electrochemistry", self.echem_panel, bottom)
        self._add_dock("science", "Science (per particle)", self.science_panel, bottom)
        self._add_dock("recording", "Recording", self.recording_panel, bottom)
        self._add_dock("stage", "Stage", self.stage_panel, bottom)
        self._add_dock("illumination", "Illumination", self.illumination_panel, bottom)
        self._add_dock("positions", "Positions", self.positions_panel, bottom)
        self.splitDockWidget(self.docks["live"], self.docks["differential"], QtCore.Qt.Horizontal)
        self.splitDockWidget(self.docks["echem"], self.docks["science"], QtCore.Qt.Horizontal)
        self.splitDockWidget(self.docks["science"], self.docks["recording"], QtCore.Qt.Horizontal)
        self.splitDockWidget(self.docks["recording"], self.docks["stage"], QtCore.Qt.Horizontal)
        self.tabifyDockWidget(self.docks["stage"], self.docks["illumination"])
        self.tabifyDockWidget(self.docks["stage"], self.docks["positions"])
        self.docks["stage"].raise_()
        self.setCentralWidget(None)

        self.status_state = QtWidgets.QLabel("opening devices…")
        self.status_focus = QtWidgets.QLabel("focus: off")
        self.status_echem = QtWidgets.QLabel("")
        self.status_error = QtWidgets.QLabel("")
        self.status_error.setStyleSheet("color:#e53935; font-weight:bold;")
        bar = self.statusBar()
        bar.addWidget(self.status_state)
        bar.addWidget(self.status_focus)
        bar.addWidget(self.status_echem)
        bar.addPermanentWidget(self.status_error, 1)
        self._build_menu()
        self._connect()

        self.resize(1800, 1000)
        window_layout.restore_layout(self)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(int(round(1000.0 / refresh_hz)))
        self.timer.timeout.connect(self.refresh)
        self.timer.start()

    # ------------------------------------------------------------------ construction helpers

    def _add_dock(self, key: str, title: str, widget: QtWidgets.QWidget, area) -> None:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")  # needed by saveState/restoreState
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks[key] = dock

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_action = file_menu.addAction("Open run…")
        open_action.setShortcut("Ctrl+O")
        open_action.triggered.connect(self._open_run_dialog)
        view_menu = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())
        settings_menu = self.menuBar().addMenu("&Settings")
        show_config = settings_menu.addAction("Show configuration")
        show_config.triggered.connect(self._show_config)

    def _connect(self) -> None:
        b = self.bridge
        b.opened.connect(self._on_opened)
        b.open_failed.connect(lambda message: self.report_error("engine", f"could not open the rig: {message}"))
        b.command_failed.connect(self._on_command_failed)
        b.command_finished.connect(self._on_command_finished)
        f = self.focus_panel
        f.calibrate_requested.connect(b.focus_calibrate)
        f.lock_requested.connect(b.focus_lock)
        f.unlock_requested.connect(b.focus_unlock)
        f.offset_requested.connect(b.focus_set_offset)
        f.autofocus_requested.connect(b.focus_autofocus)
        s = self.stage_panel
        s.move_requested.connect(self.request_stage_move)
        s.halt_requested.connect(b.stage_halt)
        self.positions_panel.from_saved_requested.connect(
            lambda: self.positions_panel.set_from_saved(self.stage_panel.saved_positions()))
        i = self.illumination_panel
        i.led_enable_requested.connect(b.led_enable)
        i.led_current_requested.connect(b.led_set_current)
        i.laser_enable_requested.connect(b.laser_enable)
        i.laser_power_requested.connect(b.laser_set_power)
        self.echem_panel.start_requested.connect(b.start_protocol)
        self.echem_panel.stop_requested.connect(b.stop_protocol)
        self.recording_panel.start_requested.connect(self.start_recording)
        self.recording_panel.stop_requested.connect(b.stop_recording)
        self.differential_panel.fiducial_picked.connect(b.set_fiducial)
        self.differential_panel.particle_region_changed.connect(
            lambda x, y, w, h: b.note(f"particle region x={x} y={y} w={w} h={h} px"))

    # ------------------------------------------------------------------ commands from panels

    def start_recording(self, request: RecordingRequest) -> None:
        """Start a recording (the protocol set up in the Electrochemistry panel runs only if started there)."""
        try:
            Path(request.path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.report_error("recording", f"cannot create the folder of {request.path}: {exc}")
            return
        if Path(request.path).exists():
            self.report_error("recording", f"{request.path} exists; choose a new file name")
            return
        multi = self.positions_panel.recording_positions()   # "record all positions": (list, dwell bins)
        if multi is None:
            self.bridge.start_recording(request)
        else:
            self.bridge.start_recording(request, positions=multi[0], dwell_bins=multi[1])

    # ------------------------------------------------------------------ periodic refresh

    def refresh(self) -> None:
        """One GUI refresh: take the newest snapshot and update every panel (never blocks)."""
        started = time.perf_counter()
        try:
            self._refresh()
        except Exception as exc:  # a display bug must not take the microscope down; show it instead
            self.report_error("gui", f"display update failed: {type(exc).__name__}: {exc}")
        finally:
            self.refresh_ms.append((time.perf_counter() - started) * 1000.0)

    def _refresh(self) -> None:
        self.refresh_count += 1
        try:
            snap = self.bridge.snapshot()
        except Exception as exc:  # the window must survive a broken snapshot
            self.report_error("engine", f"status unavailable: {exc}")
            return
        self.last_snapshot = snap
        now = time.monotonic()
        for event in snap.events:
            self.recording_panel.events.add_event(event.time_s, event.level, event.source, event.message)
            if event.level == "error":
                self.status_error.setText(f"{event.source}: {event.message}")
                self._last_error_logged = None
        if snap.frame is not None and snap.frame_id is not None:
            self.live_panel.show_frame(snap.frame, snap.frame_id, snap.frame_host_time_s)
        if snap.differential is not None and snap.differential_index != self._differential_index_shown:
            self.differential_panel.show_differential(snap.differential, snap.mask, snap.differential_index)
            self._differential_index_shown = snap.differential_index
            self.science_panel.add_bin(snap.differential_index, snap.differential, snap.mask, self._capacity_now(),
                                       snap.reference)
        self.fps_in.add(now, snap.frames_in)
        self.fps_out.add(now, self.live_panel.frames_shown)
        counters = FrameCounters(snap.frames_in, snap.frames_dropped, snap.simulator_behind_frames,
                                 self.live_panel.frames_shown, snap.frames_not_binned, snap.recording)
        fps_in = self.fps_in.rate_per_s()
        warning = simulator_warning(counters, fps_in, self.config.acquisition.frame_rate_hz,
                                    self.config.simulation.speed)
        self.live_panel.show_counters(live_counter_text(counters, fps_in, self.fps_out.rate_per_s()), warning)

        if snap.focus_state != self.focus_panel.state:
            self.focus_panel.show_state(snap.focus_state)
        if snap.focus_rows:
            self.focus_panel.add_samples([r.time_s for r in snap.focus_rows], [r.error_nm for r in snap.focus_rows],
                                         [r.z_nm for r in snap.focus_rows])
        if snap.focus_profile is not None:
            self.focus_panel.show_profile(snap.focus_profile, snap.focus_position_px)
        self.status_focus.setText(f"focus: {snap.focus_state}")

        if snap.stage_nm is not None:
            self.stage_panel.show_position(snap.stage_nm)
        if snap.led is not None:
            self.illumination_panel.show_led(snap.led.enabled, snap.led.current_setpoint_a, snap.led.measured_current_a)
        if snap.laser is not None:
            self.illumination_panel.show_laser(snap.laser.enabled, snap.laser.power_setpoint_w, snap.laser.power_w,
                                               snap.laser.interlock_ok)

        self.recording_panel.show_recording(snap.recording)
        self.echem_panel.show_running(snap.echem_running, snap.echem_text)
        if snap.voltage_v is not None:
            current = f", {format_si(snap.current_a, 'A')}" if snap.current_a is not None else ""
            self.status_echem.setText(f"cell {snap.voltage_v:.3f} V{current}")
        if snap.bytes_written is not None:
            self.write_rate.add(now, snap.bytes_written)
        state = "recording" if snap.recording else ("live" if snap.live else ("ready" if snap.opened else "opening…"))
        self.status_state.setText(status_counter_text(state, counters))

        if self.refresh_count % SLOW_REFRESH_EVERY == 0:
            self._slow_refresh(snap)

    def _capacity_now(self) -> float | None:
        """The newest capacity (mAh/g) of the electrochemistry log, None before the first sample."""
        series = self.bridge.echem_series()
        if series is None or series[3] is None or len(series[3]) == 0:
            return None
        return float(series[3][-1])

    def _slow_refresh(self, snap: GuiSnapshot) -> None:
        if snap.positions:
            self.positions_panel.show_statuses(snap.positions)
        self.focus_panel.refresh()
        self.focus_panel.show_calibration(snap.focus_calibration)
        series = self.bridge.echem_series()
        if series is not None:
            self.echem_panel.show_points(*series)
        rate = self.write_rate.rate_per_s() if snap.bytes_written is not None else None
        if snap.record_path is not None:  # counters of the current or last recording
            self.recording_panel.show_counters(snap.frames_recorded, snap.bins_written, snap.raw_written,
                                               snap.writer_queue_depth, rate, snap.recording)
        if self.refresh_count % (SLOW_REFRESH_EVERY * 10) == 0 or self.refresh_count == SLOW_REFRESH_EVERY:
            self.recording_panel.show_free_disk()

    # ------------------------------------------------------------------ reporting

    def report_error(self, source: str, message: str) -> None:
        """Show a device or command error in the status bar and the events log (never raise).

        The same error repeated back to back (e.g. on every refresh) is logged once."""
        text = f"{source}: {message}"
        if text == self.status_error.text() and self._last_error_logged == text:
            return
        self._last_error_logged = text
        self.status_error.setText(text)
        self.recording_panel.events.add_event(self.last_snapshot.clock_now_s, "error", source, message)

    def _on_command_failed(self, what: str, message: str) -> None:
        """Show the error where it was asked for (it stays until the next action there); a manual move
        that needs confirmation asks, and is sent again confirmed only if the operator agrees."""
        self.report_error(what, message)
        if what == "start_recording" and self.positions_panel.recording_positions() is not None:
            self.positions_panel.show_message(message, error=True)
        if what in ("start_protocol", "stop_protocol"):
            self.echem_panel.show_error(message)
        elif what == "focus_autofocus":
            self.focus_panel.show_autofocus_result(message, failed=True)
        elif what == "stage_move":
            self.stage_panel.show_error(message)
            targets = self._pending_move
            self._pending_move = None
            if targets is not None and message.startswith(NEEDS_CONFIRMATION) and self.confirm_manual_move(message):
                self.stage_panel.show_error("")
                self.bridge.stage_move(targets, confirmed=True)

    def request_stage_move(self, targets_nm: dict) -> None:
        """Ask the engine for a manual move (its policy may ask for confirmation)."""
        self._pending_move = dict(targets_nm)
        self.bridge.stage_move(targets_nm)

    def confirm_manual_move(self, message: str) -> bool:
        """Ask whether to do a move the engine wants confirmed (tests replace this)."""
        answer = QtWidgets.QMessageBox.warning(
            self, "Confirm stage move", f"{message}\n\nMove anyway?",
            QtWidgets.QMessageBox.Yes | QtWidgets.QMessageBox.No, QtWidgets.QMessageBox.No)
        return answer == QtWidgets.QMessageBox.Yes

    def log_event(self, source: str, level: str, message: str) -> None:
        """Add a GUI-side event to the log."""
        self.recording_panel.events.add_event(self.last_snapshot.clock_now_s, level, source, message)

    def _on_opened(self) -> None:
        self.status_state.setText("live")
        clock = self.bridge.clock()
        if clock is not None:
            self.live_panel.set_clock(*clock)

    def _on_command_finished(self, what: str, result: object) -> None:
        if what == "stop_recording":
            self.recording_panel.next_default_path()
        if what == "focus_calibrate" and isinstance(result, dict):
            self.focus_panel.show_calibration(result)
        if what == "focus_autofocus":
            self.focus_panel.show_autofocus_result(str(result))
        self.log_event("gui", "debug", f"{what} done")

    def _open_run_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open a run file", "", "HDF5 run files (*.h5 *.hdf5 *.nxs)")
        if path:
            self.open_run(path)

    def open_run(self, path: str):
        """Open ``path`` in a run browser window (errors go to the events log); returns the window or None."""
        from operascope.analysis.errors import RunFileError
        from operascope.gui.run_browser import RunBrowser

        try:
            browser = RunBrowser(path, parent=self)
        except RunFileError as exc:
            self.report_error("run browser", str(exc))
            return None
        browser.setWindowFlag(QtCore.Qt.Window, True)
        browser.show()
        self.run_browsers = [*getattr(self, "run_browsers", []), browser]
        return browser

    def _show_config(self) -> None:
        from operascope.config.loader import to_toml

        box = QtWidgets.QMessageBox(self)
        box.setWindowTitle("Configuration")
        box.setText("The validated configuration in use (edit the TOML file and restart to change it):")
        box.setDetailedText(to_toml(self.config))
        box.show()

    # ------------------------------------------------------------------ layout memory

    def save_layout(self) -> None:
        """Remember window geometry, dock layout and saved stage positions (QSettings)."""
        window_layout.save_layout(self)

    # ------------------------------------------------------------------ closing

    def confirm_stop_recording(self) -> bool:
        """Ask whether to stop the running recording and quit (tests replace this)."""
        answer = QtWidgets.QMessageBox.question(
            self, "Recording in progress",
            "A recording is running. Stop it (the file is closed cleanly) and quit?",
            QtWidgets.QMessageBox.Yes | QtWidgets.QMessageBox.No, QtWidgets.QMessageBox.No)
        return answer == QtWidgets.QMessageBox.Yes

    def ask_stop_or_leave_running(self) -> str:
        """Attached to an engine service while it records: "stop", "leave" (running) or "cancel"."""
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Question, "Recording in progress",
                                    "The engine is recording. Stop the run (the file is closed cleanly), or leave it "
                                    "running in the engine and close only this window?", parent=self)
        stop = box.addButton("Stop the run", QtWidgets.QMessageBox.DestructiveRole)
        leave = box.addButton("Leave it running", QtWidgets.QMessageBox.AcceptRole)
        box.addButton(QtWidgets.QMessageBox.Cancel)
        box.exec_()
        return "stop" if box.clickedButton() is stop else "leave" if box.clickedButton() is leave else "cancel"

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        """Ask when recording; then stop everything in order and leave a valid file (attached: detach)."""
        if self._closing:
            event.accept()
            return
        if self.bridge.is_recording() and not self._close_confirmed and self.bridge.is_attached:
            answer = self.ask_stop_or_leave_running()
            if answer == "cancel":
                event.ignore()
                return
            if answer == "stop":
                self.bridge.stop_recording()
        elif self.bridge.is_recording() and not self._close_confirmed:
            if not self.confirm_stop_recording():
                event.ignore()
                return
        self._closing = True
        self.timer.stop()
        self.save_layout()
        self.status_state.setText("stopping…")
        ok = self.bridge.shutdown(timeout_s=CLOSE_TIMEOUT_S, keep_responsive=True)
        if not ok:
            print("operascope gui: engine did not stop within "
                  f"{CLOSE_TIMEOUT_S:.0f} s; some threads may still be running", flush=True)
        event.accept()

    def close_without_asking(self) -> bool:
        """Close as if the user confirmed stopping a recording (used by --quit-after)."""
        self._close_confirmed = True
        return self.close()
