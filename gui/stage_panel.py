"""Stage panel: x/y/z read-outs, jog with a step size, go-to, and saved particle positions to return to."""

from __future__ import annotations

import math
from dataclasses import dataclass

from PyQt5 import QtCore, QtWidgets

from operascope.acquisition.manual_control import format_um

AXES = ("x", "y", "z")
TRAVEL_UM = 12_500.0  # ±12.5 mm; the stage refuses targets beyond its own soft limits anyway


@dataclass(frozen=True)
class SavedPosition:
    """A named stage position (nm)."""

    name: str
    x_nm: float
    y_nm: float
    z_nm: float

    def to_list(self) -> list:
        return [self.name, self.x_nm, self.y_nm, self.z_nm]

    @classmethod
    def from_list(cls, values: list) -> "SavedPosition":
        if len(values) != 4:
            raise ValueError(f"a saved position needs [name, x_nm, y_nm, z_nm], got {values!r}")
        return cls(str(values[0]), float(values[1]), float(values[2]), float(values[3]))


class StagePanel(QtWidgets.QWidget):
    """Presents the stage; emits absolute move requests (nm) and halt."""

    #: absolute targets in nm, e.g. {"x": 1000.0, "z": -50.0}
    move_requested = QtCore.pyqtSignal(dict)
    halt_requested = QtCore.pyqtSignal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.position_nm: dict[str, float] | None = None
        self._saved: list[SavedPosition] = []

        readouts = QtWidgets.QGridLayout()
        self.readout_labels: dict[str, QtWidgets.QLabel] = {}
        self.goto_um: dict[str, QtWidgets.QDoubleSpinBox] = {}
        self.step_um = QtWidgets.QDoubleSpinBox()   # one unit for positions and steps: µm (nm resolution)
        self.step_um.setRange(0.001, 1000.0)
        self.step_um.setDecimals(3)
        self.step_um.setValue(1.0)
        self.step_um.setSuffix(" µm")
        self.step_um.setToolTip("jog step in µm; 0.001 µm = 1 nm")
        readouts.addWidget(QtWidgets.QLabel("<b>axis</b>"), 0, 0)
        readouts.addWidget(QtWidgets.QLabel("<b>position</b>"), 0, 1)
        readouts.addWidget(QtWidgets.QLabel("<b>jog</b>"), 0, 2, 1, 2)
        readouts.addWidget(QtWidgets.QLabel("<b>go to</b>"), 0, 4)
        self.jog_buttons: dict[tuple[str, int], QtWidgets.QPushButton] = {}
        for row, axis in enumerate(AXES, start=1):
            label = QtWidgets.QLabel("-")
            label.setMinimumWidth(110)
            label.setAlignment(QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter)
            self.readout_labels[axis] = label
            minus = QtWidgets.QPushButton(f"{axis} −")
            plus = QtWidgets.QPushButton(f"{axis} +")
            minus.clicked.connect(lambda _=False, a=axis: self.jog(a, -1))
            plus.clicked.connect(lambda _=False, a=axis: self.jog(a, +1))
            self.jog_buttons[(axis, -1)] = minus
            self.jog_buttons[(axis, +1)] = plus
            goto = QtWidgets.QDoubleSpinBox()
            goto.setRange(-TRAVEL_UM, TRAVEL_UM)
            goto.setDecimals(3)
            goto.setSuffix(" µm")
            self.goto_um[axis] = goto
            readouts.addWidget(QtWidgets.QLabel(axis), row, 0)
            readouts.addWidget(label, row, 1)
            readouts.addWidget(minus, row, 2)
            readouts.addWidget(plus, row, 3)
            readouts.addWidget(goto, row, 4)

        self.goto_button = QtWidgets.QPushButton("Go to")
        self.goto_button.clicked.connect(self._go_to_entered)
        self.here_button = QtWidgets.QPushButton("Fill with current")
        self.here_button.clicked.connect(self._fill_goto_with_current)
        self.halt_button = QtWidgets.QPushButton("Halt")
        self.halt_button.clicked.connect(self.halt_requested)
        step_row = QtWidgets.QHBoxLayout()
        step_row.addWidget(QtWidgets.QLabel("jog step"))
        step_row.addWidget(self.step_um, 1)
        step_row.addWidget(self.here_button)
        step_row.addWidget(self.goto_button)
        step_row.addWidget(self.halt_button)

        self.saved_list = QtWidgets.QListWidget()
        self.saved_list.itemDoubleClicked.connect(lambda _item: self.go_to_saved(self.saved_list.currentRow()))
        self.save_name = QtWidgets.QLineEdit()
        self.save_name.setPlaceholderText("name, e.g. particle 1")
        self.save_button = QtWidgets.QPushButton("Save current")
        self.save_button.clicked.connect(lambda: self.save_current(self.save_name.text()))
        self.return_button = QtWidgets.QPushButton("Return to")
        self.return_button.clicked.connect(lambda: self.go_to_saved(self.saved_list.currentRow()))
        self.remove_button = QtWidgets.QPushButton("Remove")
        self.remove_button.clicked.connect(self._remove_selected)
        saved_row = QtWidgets.QHBoxLayout()
        saved_row.addWidget(self.save_name, 1)
        saved_row.addWidget(self.save_button)
        saved_row.addWidget(self.return_button)
        saved_row.addWidget(self.remove_button)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(readouts)
        layout.addLayout(step_row)
        #: the last refused or failed move; stays until the next move request (the refresh never touches it)
        self.error_label = QtWidgets.QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color:#e53935;")
        layout.addWidget(self.error_label)
        layout.addWidget(QtWidgets.QLabel("saved particle positions (double-click to return):"))
        layout.addWidget(self.saved_list, 1)
        layout.addLayout(saved_row)

    # ------------------------------------------------------------------ updates

    def show_position(self, position_nm: dict[str, float]) -> None:
        """Show measured positions (nm) as µm."""
        self.position_nm = dict(position_nm)
        for axis, label in self.readout_labels.items():
            value = position_nm.get(axis)
            label.setText("-" if value is None or not math.isfinite(value) else format_um(value))

    # ------------------------------------------------------------------ commands

    def jog(self, axis: str, direction: int) -> None:
        """Request a relative move of one step (sign = ``direction``) from the last read position."""
        if self.position_nm is None or axis not in self.position_nm:
            return
        target = self.position_nm[axis] + direction * self.step_um.value() * 1000.0
        self._request_move({axis: target})

    def save_current(self, name: str = "") -> SavedPosition | None:
        """Add the last read position to the saved list under ``name`` (default 'position N')."""
        if self.position_nm is None:
            return None
        name = name.strip() or f"position {len(self._saved) + 1}"
        saved = SavedPosition(name, self.position_nm["x"], self.position_nm["y"], self.position_nm["z"])
        self._saved.append(saved)
        self._refresh_list()
        self.save_name.clear()
        return saved

    def go_to_saved(self, index: int) -> None:
        """Request a move back to saved position ``index``."""
        if 0 <= index < len(self._saved):
            saved = self._saved[index]
            self._request_move({"x": saved.x_nm, "y": saved.y_nm, "z": saved.z_nm})

    def saved_positions(self) -> list[SavedPosition]:
        """The saved positions, in list order."""
        return list(self._saved)

    def set_saved_positions(self, positions: list[SavedPosition]) -> None:
        """Replace the saved list (e.g. restored from QSettings)."""
        self._saved = list(positions)
        self._refresh_list()

    # ------------------------------------------------------------------ internals

    def show_error(self, message: str) -> None:
        """Keep ``message`` visible until the next move request."""
        self.error_label.setText(message)

    def _request_move(self, targets_nm: dict) -> None:
        self.error_label.setText("")
        self.move_requested.emit(targets_nm)

    def _go_to_entered(self) -> None:
        self._request_move({axis: box.value() * 1000.0 for axis, box in self.goto_um.items()})

    def _fill_goto_with_current(self) -> None:
        if self.position_nm is None:
            return
        for axis, box in self.goto_um.items():
            box.setValue(self.position_nm[axis] / 1000.0)

    def _remove_selected(self) -> None:
        row = self.saved_list.currentRow()
        if 0 <= row < len(self._saved):
            del self._saved[row]
            self._refresh_list()

    def _refresh_list(self) -> None:
        self.saved_list.clear()
        for saved in self._saved:
            self.saved_list.addItem(
                f"{saved.name}: x {format_um(saved.x_nm)}, y {format_um(saved.y_nm)}, z {format_um(saved.z_nm)}"
            )
