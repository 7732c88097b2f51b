"""Illumination panel: LED on/off and current, focus laser on/off and power, interlock state."""

from __future__ import annotations

from PyQt5 import QtCore, QtWidgets


def _set_checked_quietly(box: QtWidgets.QAbstractButton, checked: bool) -> None:
    """Reflect device state in a check box without emitting a new request."""
    if box.isChecked() != checked:
        box.blockSignals(True)
        box.setChecked(checked)
        box.blockSignals(False)


class IlluminationPanel(QtWidgets.QWidget):
    """Presents the LED and the 980 nm laser; emits requests."""

    led_enable_requested = QtCore.pyqtSignal(bool)
    #: LED current setpoint in A
    led_current_requested = QtCore.pyqtSignal(float)
    laser_enable_requested = QtCore.pyqtSignal(bool)
    #: laser power setpoint in W
    laser_power_requested = QtCore.pyqtSignal(float)

    def __init__(self, led_current_a: float = 0.5, laser_power_w: float = 0.005,
                 led_max_current_a: float = 1.0, laser_max_power_w: float = 0.05,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.led_on = QtWidgets.QCheckBox("LED on (740 nm)")
        self.led_current_ma = QtWidgets.QDoubleSpinBox()
        self.led_current_ma.setRange(0.0, led_max_current_a * 1000.0)
        self.led_current_ma.setDecimals(1)
        self.led_current_ma.setSingleStep(10.0)
        self.led_current_ma.setSuffix(" mA")
        self.led_current_ma.setValue(led_current_a * 1000.0)
        self.led_apply = QtWidgets.QPushButton("Set")
        self.led_readback = QtWidgets.QLabel("-")

        self.laser_on = QtWidgets.QCheckBox("laser on (980 nm)")
        self.laser_power_mw = QtWidgets.QDoubleSpinBox()
        self.laser_power_mw.setRange(0.0, laser_max_power_w * 1000.0)
        self.laser_power_mw.setDecimals(2)
        self.laser_power_mw.setSingleStep(0.5)
        self.laser_power_mw.setSuffix(" mW")
        self.laser_power_mw.setValue(laser_power_w * 1000.0)
        self.laser_apply = QtWidgets.QPushButton("Set")
        self.laser_readback = QtWidgets.QLabel("-")
        self.interlock_label = QtWidgets.QLabel("interlock: unknown")
        self.interlock_label.setAlignment(QtCore.Qt.AlignCenter)

        self.led_on.clicked.connect(self.led_enable_requested)
        self.led_apply.clicked.connect(lambda: self.led_current_requested.emit(self.led_current_ma.value() / 1000.0))
        self.laser_on.clicked.connect(self.laser_enable_requested)
        self.laser_apply.clicked.connect(lambda: self.laser_power_requested.emit(self.laser_power_mw.value() / 1000.0))

        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(2, 2, 2, 2)
        grid.addWidget(self.led_on, 0, 0)
        grid.addWidget(self.led_current_ma, 0, 1)
        grid.addWidget(self.led_apply, 0, 2)
        grid.addWidget(self.led_readback, 1, 0, 1, 3)
        grid.addWidget(self.laser_on, 2, 0)
        grid.addWidget(self.laser_power_mw, 2, 1)
        grid.addWidget(self.laser_apply, 2, 2)
        grid.addWidget(self.laser_readback, 3, 0, 1, 3)
        grid.addWidget(self.interlock_label, 4, 0, 1, 3)
        grid.setRowStretch(5, 1)

    def show_led(self, enabled: bool, setpoint_a: float, measured_a: float) -> None:
        """Reflect the LED driver's read-back."""
        _set_checked_quietly(self.led_on, enabled)
        self.led_readback.setText(f"LED {'ON' if enabled else 'off'} · setpoint {setpoint_a * 1000:.1f} mA"
                                  f" · measured {measured_a * 1000:.1f} mA")

    def show_laser(self, enabled: bool, setpoint_w: float, power_w: float, interlock_ok: bool) -> None:
        """Reflect the laser's read-back and the interlock."""
        _set_checked_quietly(self.laser_on, enabled)
        self.laser_readback.setText(f"laser {'ON' if enabled else 'off'} · setpoint {setpoint_w * 1000:.2f} mW"
                                    f" · power {power_w * 1000:.2f} mW")
        self.show_interlock(interlock_ok)

    def show_interlock(self, interlock_ok: bool) -> None:
        """Green when closed (OK), red when tripped."""
        if interlock_ok:
            self.interlock_label.setText("interlock: OK")
            self.interlock_label.setStyleSheet("background:#43a047; color:white; font-weight:bold;")
        else:
            self.interlock_label.setText("interlock: TRIPPED — emission forced off")
            self.interlock_label.setStyleSheet("background:#e53935; color:white; font-weight:bold;")
