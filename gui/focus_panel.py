"""Focus panel: the focus-sensor line profile with the fitted position, error and z traces, lock state,
calibrate / lock / unlock / autofocus buttons and the focus offset."""

from __future__ import annotations

from collections import deque

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtWidgets

from operascope.gui.safe_items import SafeInfiniteLine

#: background colour per lock state (see operascope.analysis.runfile_layout.FOCUS_STATES)
STATE_COLOURS: dict[str, str] = {
    "off": "#9e9e9e",
    "calibrating": "#42a5f5",
    "locking": "#ffb300",
    "locked": "#43a047",
    "lost": "#e53935",
    "reacquiring": "#fb8c00",
    "fault": "#b71c1c",
}
HISTORY_POINTS = 3000


class FocusPanel(QtWidgets.QWidget):
    """Presents the focus lock; emits requests, never talks to the engine itself."""

    calibrate_requested = QtCore.pyqtSignal()
    lock_requested = QtCore.pyqtSignal()
    unlock_requested = QtCore.pyqtSignal()
    #: image-based autofocus of z (the engine releases a running lock and re-engages it at best focus)
    autofocus_requested = QtCore.pyqtSignal()
    #: new focus offset (setpoint) in nm
    offset_requested = QtCore.pyqtSignal(float)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = "off"
        self._time_s: deque[float] = deque(maxlen=HISTORY_POINTS)
        self._error_nm: deque[float] = deque(maxlen=HISTORY_POINTS)
        self._z_nm: deque[float] = deque(maxlen=HISTORY_POINTS)
        self._history_dirty = False

        self.state_label = QtWidgets.QLabel()
        self.state_label.setAlignment(QtCore.Qt.AlignCenter)
        self.state_label.setMinimumHeight(28)
        self.calibration_label = QtWidgets.QLabel("not calibrated")
        self.calibration_label.setWordWrap(True)
        self.readout_label = QtWidgets.QLabel("error - nm · z - nm")

        self.calibrate_button = QtWidgets.QPushButton("Calibrate")
        self.lock_button = QtWidgets.QPushButton("Lock")
        self.unlock_button = QtWidgets.QPushButton("Unlock")
        self.calibrate_button.clicked.connect(self.calibrate_requested)
        self.lock_button.clicked.connect(self.lock_requested)
        self.unlock_button.clicked.connect(self.unlock_requested)
        self.autofocus_button = QtWidgets.QPushButton("Autofocus")
        self.autofocus_button.setToolTip("image-based z search for the sharpest image; a running lock is "
                                         "released and re-engaged at best focus")
        self.autofocus_button.clicked.connect(self._on_autofocus_clicked)
        self.autofocus_running = False
        #: the last autofocus outcome (or refusal); stays until the next autofocus
        self.autofocus_label = QtWidgets.QLabel("")
        self.autofocus_label.setWordWrap(True)
        self.offset_nm = QtWidgets.QDoubleSpinBox()
        self.offset_nm.setRange(-5000.0, 5000.0)
        self.offset_nm.setDecimals(0)
        self.offset_nm.setSingleStep(10.0)
        self.offset_nm.setSuffix(" nm")
        self.offset_nm.setToolTip("focus offset (setpoint); may be changed while locked")
        self.offset_button = QtWidgets.QPushButton("Set offset")
        self.offset_button.clicked.connect(lambda: self.offset_requested.emit(self.offset_nm.value()))

        self.profile_plot = pg.PlotWidget(title="focus-sensor profile")
        self.profile_plot.setLabel("bottom", "sensor pixel")
        self.profile_curve = self.profile_plot.plot(pen=pg.mkPen((200, 200, 255), width=1))
        self.position_line = SafeInfiniteLine(angle=90, pen=pg.mkPen((255, 80, 80), width=2))
        self.profile_plot.addItem(self.position_line)
        self.position_line.setVisible(False)

        self.error_plot = pg.PlotWidget()
        self.error_plot.setLabel("left", "error (nm)")
        self.error_curve = self.error_plot.plot(pen=pg.mkPen((255, 170, 0), width=1))
        self.z_plot = pg.PlotWidget()
        self.z_plot.setLabel("left", "z (nm)")
        self.z_plot.setLabel("bottom", "rig time (s)")
        self.z_curve = self.z_plot.plot(pen=pg.mkPen((0, 200, 255), width=1))
        self.z_plot.setXLink(self.error_plot)

        buttons = QtWidgets.QHBoxLayout()
        for widget in (self.calibrate_button, self.lock_button, self.unlock_button, self.autofocus_button):
            buttons.addWidget(widget)
        offset_row = QtWidgets.QHBoxLayout()
        offset_row.addWidget(QtWidgets.QLabel("offset"))
        offset_row.addWidget(self.offset_nm, 1)
        offset_row.addWidget(self.offset_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.state_label)
        layout.addLayout(buttons)
        layout.addLayout(offset_row)
        layout.addWidget(self.readout_label)
        layout.addWidget(self.calibration_label)
        layout.addWidget(self.autofocus_label)
        layout.addWidget(self.profile_plot, 2)
        layout.addWidget(self.error_plot, 2)
        layout.addWidget(self.z_plot, 2)
        self.show_state("off")

    # ------------------------------------------------------------------ updates

    def show_state(self, state: str) -> None:
        """Show the lock state at a glance (coloured banner) and enable the sensible buttons."""
        colour = STATE_COLOURS.get(state, "#616161")
        self.state = state
        self.state_label.setText(f"focus lock: {state.upper()}")
        self.state_label.setStyleSheet(f"background:{colour}; color:white; font-weight:bold; border-radius:3px;")
        active = state in ("locking", "locked", "lost", "reacquiring")
        self.lock_button.setEnabled(not active and state != "calibrating")
        self.calibrate_button.setEnabled(not active and state != "calibrating")
        self.unlock_button.setEnabled(active or state == "fault")
        self.autofocus_button.setEnabled(not self.autofocus_running and state != "calibrating")

    def _on_autofocus_clicked(self) -> None:
        self.autofocus_running = True
        self.autofocus_button.setEnabled(False)
        self.autofocus_label.setStyleSheet("")
        self.autofocus_label.setText("autofocus: searching z…")
        self.autofocus_requested.emit()

    def show_autofocus_result(self, summary: str, failed: bool = False) -> None:
        """The autofocus ended: its one-line summary, or (``failed``) the reason in red; stays until the next one."""
        self.autofocus_running = False
        self.autofocus_label.setStyleSheet("color:#e53935;" if failed else "")
        self.autofocus_label.setText(summary if summary.startswith("autofocus") else f"autofocus: {summary}")
        self.show_state(self.state)

    def show_calibration(self, calibration: dict | None) -> None:
        """Show the calibration summary (slope px/nm, residual nm, capture range nm)."""
        if not calibration:
            self.calibration_label.setText("not calibrated")
            return
        parts = []
        for key, label, fmt in (
            ("slope_px_per_nm", "slope", "{:.4f} px/nm"),
            ("residual_nm", "residual", "{:.1f} nm"),
            ("capture_range_nm", "capture range", "±{:.0f} nm"),
            ("r2", "R²", "{:.4f}"),
        ):
            value = calibration.get(key)
            if isinstance(value, (int, float)):
                parts.append(f"{label} {fmt.format(value)}")
        self.calibration_label.setText("calibration: " + (", ".join(parts) if parts else "done"))

    def show_profile(self, profile: np.ndarray | None, position_px: float | None) -> None:
        """Draw the latest line profile and the fitted line position (px)."""
        if profile is not None:
            self.profile_curve.setData(np.asarray(profile, dtype=np.float64))
        if position_px is not None and np.isfinite(position_px):
            self.position_line.setValue(float(position_px))
            self.position_line.setVisible(True)
        else:
            self.position_line.setVisible(False)

    def add_samples(self, time_s: list[float], error_nm: list[float], z_nm: list[float]) -> None:
        """Append focus-lock samples (rig clock s, error nm, z nm); plots refresh in :meth:`refresh`."""
        self._time_s.extend(time_s)
        self._error_nm.extend(error_nm)
        self._z_nm.extend(z_nm)
        if time_s:
            self._history_dirty = True
            self.readout_label.setText(f"error {error_nm[-1]:+.1f} nm · z {z_nm[-1]:.1f} nm")

    def refresh(self) -> None:
        """Redraw the traces if new samples arrived."""
        if not self._history_dirty:
            return
        t = np.fromiter(self._time_s, dtype=np.float64)
        self.error_curve.setData(t, np.fromiter(self._error_nm, dtype=np.float64))
        self.z_curve.setData(t, np.fromiter(self._z_nm, dtype=np.float64))
        self._history_dirty = False

    @property
    def n_samples(self) -> int:
        """Samples currently held in the traces."""
        return len(self._time_s)
