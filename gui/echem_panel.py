"""Electrochemistry panel: protocol set-up (OCV, charge/discharge at a C-rate, cycling, GITT), start/stop,
live voltage and current vs time and voltage vs capacity."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtWidgets

from operascope.acquisition.protocols import PROTOCOL_KINDS as PROTOCOLS
from operascope.acquisition.protocols import ProtocolRequest  # noqa: F401 - the engine's, re-exported
#: which parameters each protocol uses
PROTOCOL_PARAMETERS: dict[str, tuple[str, ...]] = {
    "ocv": ("duration_s",),
    "charge": ("c_rate", "v_min", "v_max", "duration_s"),
    "discharge": ("c_rate", "v_min", "v_max", "duration_s"),
    "cycle": ("c_rate", "v_min", "v_max", "cycles"),
    "gitt": ("gitt_current_ma_g", "gitt_pulse_s", "gitt_rest_s", "v_min", "v_max"),
}


def _spin(low: float, high: float, value: float, decimals: int, suffix: str, step: float) -> QtWidgets.QDoubleSpinBox:
    box = QtWidgets.QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setSuffix(suffix)
    box.setValue(value)
    return box


class EchemPanel(QtWidgets.QWidget):
    """Presents the potentiostat; emits a ProtocolRequest on start and a stop request."""

    start_requested = QtCore.pyqtSignal(object)  # ProtocolRequest
    stop_requested = QtCore.pyqtSignal()

    def __init__(self, defaults: ProtocolRequest | None = None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        d = defaults or ProtocolRequest("charge")
        self.protocol = QtWidgets.QComboBox()
        self.protocol.addItems(PROTOCOLS)
        self.protocol.setCurrentText(d.kind)
        self.params: dict[str, QtWidgets.QAbstractSpinBox] = {
            "c_rate": _spin(0.01, 100.0, d.c_rate, 2, " C", 0.1),
            "v_min": _spin(0.0, 6.0, d.v_min, 3, " V", 0.05),
            "v_max": _spin(0.0, 6.0, d.v_max, 3, " V", 0.05),
            "duration_s": _spin(0.0, 1e7, d.duration_s or 0.0, 0, " s", 60.0),
            "gitt_current_ma_g": _spin(0.01, 10_000.0, d.gitt_current_ma_g, 2, " mA/g", 1.0),
            "gitt_pulse_s": _spin(1.0, 86_400.0, d.gitt_pulse_s, 0, " s", 60.0),
            "gitt_rest_s": _spin(0.0, 864_000.0, d.gitt_rest_s, 0, " s", 60.0),
        }
        cycles = QtWidgets.QSpinBox()
        cycles.setRange(1, 100_000)
        cycles.setValue(d.cycles)
        self.params["cycles"] = cycles
        self.params["duration_s"].setSpecialValueText("until cut-off")
        labels = {
            "c_rate": "C-rate", "v_min": "lower cut-off", "v_max": "upper cut-off",
            "duration_s": "duration", "cycles": "cycles", "gitt_current_ma_g": "GITT pulse current",
            "gitt_pulse_s": "GITT pulse", "gitt_rest_s": "GITT rest",
        }
        form = QtWidgets.QFormLayout()
        form.addRow("protocol", self.protocol)
        self._param_rows: dict[str, QtWidgets.QLabel] = {}
        for key, widget in self.params.items():
            label = QtWidgets.QLabel(labels[key])
            self._param_rows[key] = label
            form.addRow(label, widget)
        self.start_button = QtWidgets.QPushButton("Start protocol")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.start_button.clicked.connect(self._on_start)
        self.stop_button.clicked.connect(self.stop_requested)
        self.status_label = QtWidgets.QLabel("idle")
        self.status_label.setWordWrap(True)
        #: a refused or failed command; stays until the next start/stop (the refresh never touches it)
        self.error_label = QtWidgets.QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color:#e53935;")
        self.stop_button.clicked.connect(lambda: self.error_label.setText(""))
        self.protocol.currentTextChanged.connect(self._show_relevant_parameters)

        self.voltage_plot = pg.PlotWidget()
        self.voltage_plot.setLabel("left", "voltage (V)")
        self.voltage_curve = self.voltage_plot.plot(pen=pg.mkPen((80, 160, 255), width=1))
        self.current_plot = pg.PlotWidget()
        self.current_plot.setLabel("left", "current (µA)")
        self.current_plot.setLabel("bottom", "time (s)")
        self.current_curve = self.current_plot.plot(pen=pg.mkPen((255, 120, 80), width=1))
        self.current_plot.setXLink(self.voltage_plot)
        self.capacity_plot = pg.PlotWidget()
        self.capacity_plot.setLabel("left", "voltage (V)")
        self.capacity_plot.setLabel("bottom", "capacity (mAh/g)")
        self.capacity_curve = self.capacity_plot.plot(pen=pg.mkPen((120, 220, 120), width=1))
        for curve in (self.voltage_curve, self.current_curve):  # long runs: draw only what the view can show
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)

        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        plots = QtWidgets.QGridLayout()
        plots.addWidget(self.voltage_plot, 0, 0)
        plots.addWidget(self.current_plot, 1, 0)
        plots.addWidget(self.capacity_plot, 0, 1, 2, 1)
        left = QtWidgets.QVBoxLayout()
        left.addLayout(form)
        left.addLayout(buttons)
        left.addWidget(self.status_label)
        left.addWidget(self.error_label)
        left.addStretch(1)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(left)
        layout.addLayout(plots, 1)
        self._show_relevant_parameters(self.protocol.currentText())

    # ------------------------------------------------------------------ requests

    def request(self) -> ProtocolRequest:
        """The protocol as currently set up. Raises ValueError for impossible settings."""
        value = {key: widget.value() for key, widget in self.params.items()}
        return ProtocolRequest(
            kind=self.protocol.currentText(),
            c_rate=value["c_rate"],
            v_min=value["v_min"],
            v_max=value["v_max"],
            duration_s=value["duration_s"] or None,
            cycles=int(value["cycles"]),
            gitt_current_ma_g=value["gitt_current_ma_g"],
            gitt_pulse_s=value["gitt_pulse_s"],
            gitt_rest_s=value["gitt_rest_s"],
        )

    def _on_start(self) -> None:
        self.error_label.setText("")
        try:
            request = self.request()
        except ValueError as exc:
            self.show_error(str(exc))
            return
        self.start_requested.emit(request)

    def show_error(self, message: str) -> None:
        """Keep ``message`` visible (red) until the next start or stop."""
        self.error_label.setText(message)

    # ------------------------------------------------------------------ updates

    def show_running(self, running: bool, text: str = "") -> None:
        """Enable start/stop to match the potentiostat and show a status line."""
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.protocol.setEnabled(not running)
        self.status_label.setText(text or ("running" if running else "idle"))

    def show_points(self, time_s: np.ndarray, voltage_v: np.ndarray, current_a: np.ndarray,
                    capacity_mah_g: np.ndarray | None) -> None:
        """Draw the whole electrochemistry log so far (arrays of equal length)."""
        self.voltage_curve.setData(time_s, voltage_v)
        self.current_curve.setData(time_s, np.asarray(current_a, dtype=np.float64) * 1e6)
        if capacity_mah_g is not None and len(capacity_mah_g) == len(voltage_v):
            self.capacity_curve.setData(capacity_mah_g, voltage_v)

    def _show_relevant_parameters(self, kind: str) -> None:
        used = PROTOCOL_PARAMETERS.get(kind, ())
        for key, widget in self.params.items():
            visible = key in used
            widget.setVisible(visible)
            self._param_rows[key].setVisible(visible)
