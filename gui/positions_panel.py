"""Positions panel (issue 19): the stage panel's saved particle positions as a position list (TOML), the
"record all positions" mode with its dwell, and a per-position status table while a multi-position run records.

The list follows the contract of :mod:`operascope.acquisition.positions`: names [A-Za-z0-9_-]{1,32}, absolute
stage x/y in µm, and a z offset (µm) relative to the first (reference) position's z.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any, Sequence

from PyQt5 import QtCore, QtGui, QtWidgets

from operascope.acquisition.positions import (
    PositionList,
    load_positions,
    positions_from_dict,
    save_positions,
)
from operascope.gui.stage_panel import SavedPosition

log = logging.getLogger(__name__)

#: status-table background per position state (acquisition.position_state.PositionState values)
STATE_COLOURS = {"waiting": "#9e9e9e", "moving": "#42a5f5", "focusing": "#ffb300", "recording": "#43a047",
                 "failed": "#e53935", "skipped": "#b71c1c"}
STATUS_COLUMNS = ("position", "state", "visits", "bins", "last visit (s)", "last error")
LIST_COLUMNS = ("name", "x (µm)", "y (µm)", "z offset (µm)")


def position_name(name: str, index: int) -> str:
    """A saved position's name made valid for a position list (other characters become '_', ≤ 32)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name.strip())[:32].strip("_")
    return cleaned or f"P{index + 1}"


def positions_from_saved(saved: Sequence[SavedPosition]) -> PositionList:
    """The saved stage positions (nm) as a position list: x, y in µm, z as offset from the first one's z.

    Names are made valid and unique; a ValueError (naming the position) for anything the contract refuses."""
    if not saved:
        raise ValueError("no saved stage positions: save the particle positions in the Stage panel first")
    reference_z_nm = saved[0].z_nm
    tables, used = [], set()
    for index, position in enumerate(saved):
        name = position_name(position.name, index)
        base, k = name, 2
        while name in used:
            suffix = f"_{k}"
            name, k = base[: 32 - len(suffix)] + suffix, k + 1
        used.add(name)
        tables.append({"name": name, "x_um": position.x_nm / 1000.0, "y_um": position.y_nm / 1000.0,
                       "z_offset_um": (position.z_nm - reference_z_nm) / 1000.0})
    return positions_from_dict({"positions": tables}, source="saved stage positions")


class PositionsPanel(QtWidgets.QWidget):
    """Presents the position list and the per-position status; asks the window for the saved positions."""

    #: the window answers with :meth:`set_positions` (the stage panel's saved positions)
    from_saved_requested = QtCore.pyqtSignal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.positions: PositionList | None = None
        self.list_table = _table(LIST_COLUMNS)
        self.status_table = _table(STATUS_COLUMNS)
        self.from_saved_button = QtWidgets.QPushButton("From saved stage positions")
        self.from_saved_button.clicked.connect(self.from_saved_requested)
        self.load_button = QtWidgets.QPushButton("Load…")
        self.load_button.clicked.connect(self._load_dialog)
        self.save_button = QtWidgets.QPushButton("Save as TOML…")
        self.save_button.clicked.connect(self._save_dialog)
        self.record_all = QtWidgets.QCheckBox("record all positions")
        self.record_all.setToolTip("the Record button cycles through the list: move, settle, refocus, record "
                                   "the dwell's bins, move on (one record per position in the run file)")
        self.dwell_bins = QtWidgets.QSpinBox()
        self.dwell_bins.setRange(1, 1000)
        self.dwell_bins.setPrefix("dwell ")
        self.dwell_bins.setSuffix(" bin(s) per visit")
        self.message_label = QtWidgets.QLabel("no position list")
        self.message_label.setWordWrap(True)
        buttons = QtWidgets.QHBoxLayout()
        for widget in (self.from_saved_button, self.load_button, self.save_button):
            buttons.addWidget(widget)
        mode = QtWidgets.QHBoxLayout()
        mode.addWidget(self.record_all)
        mode.addWidget(self.dwell_bins, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.list_table, 1)
        layout.addLayout(mode)
        layout.addWidget(self.message_label)
        layout.addWidget(QtWidgets.QLabel("per-position status:"))
        layout.addWidget(self.status_table, 1)
        self._set_enabled()

    # ------------------------------------------------------------------ the list

    def set_positions(self, positions: PositionList | None, source: str = "") -> None:
        """Show ``positions`` (None = no list)."""
        self.positions = positions
        rows = list(positions) if positions is not None else []
        self.list_table.setRowCount(len(rows))
        for row, p in enumerate(rows):
            for col, text in enumerate((p.name, f"{p.x_um:.3f}", f"{p.y_um:.3f}", f"{p.z_offset_um:+.3f}")):
                self.list_table.setItem(row, col, _item(text))
        self.show_message(f"{len(rows)} positions{' from ' + source if source else ''}" if rows else "no position list")
        self._set_enabled()

    def set_from_saved(self, saved: Sequence[SavedPosition]) -> None:
        """Make the list from the stage panel's saved positions (refusals shown in red)."""
        try:
            self.set_positions(positions_from_saved(saved), "the saved stage positions")
        except ValueError as exc:
            self.show_message(str(exc), error=True)

    def load(self, path: str | Path, soft_limits_um: dict[str, tuple[float, float]] | None = None) -> bool:
        try:
            self.set_positions(load_positions(path, soft_limits_um), Path(path).name)
        except (OSError, ValueError) as exc:
            self.show_message(str(exc), error=True)
            return False
        return True

    def save(self, path: str | Path, overwrite: bool = False) -> bool:
        """Save the list as TOML (an existing file only with ``overwrite``: the file dialog asked)."""
        if self.positions is None:
            self.show_message("no position list to save", error=True)
            return False
        try:
            save_positions(self.positions, path, overwrite=overwrite)
        except (OSError, ValueError) as exc:
            self.show_message(str(exc), error=True)
            return False
        self.show_message(f"saved {len(self.positions)} positions to {path}")
        return True

    def recording_positions(self) -> tuple[PositionList, int] | None:
        """(list, dwell bins) when "record all positions" is on and there is a list, else None."""
        if self.record_all.isChecked() and self.positions is not None and len(self.positions):
            return self.positions, self.dwell_bins.value()
        return None

    def show_message(self, text: str, error: bool = False) -> None:
        """A note or (``error``) a refusal; stays until the next action here."""
        self.message_label.setStyleSheet("color:#e53935;" if error else "")
        self.message_label.setText(text)

    # ------------------------------------------------------------------ status

    def show_statuses(self, statuses: Sequence[Any]) -> None:
        """One row per position status (name, state, visits, bins, last_visit_time_s, last_error)."""
        self.status_table.setRowCount(len(statuses))
        for row, status in enumerate(statuses):
            state = str(getattr(status, "state", ""))
            state = getattr(getattr(status, "state", None), "value", state)
            last = getattr(status, "last_visit_time_s", math.nan)
            values = (str(status.name), state, str(getattr(status, "visits", 0)), str(getattr(status, "bins", 0)),
                      f"{last:.1f}" if isinstance(last, (int, float)) and math.isfinite(last) else "-",
                      str(getattr(status, "last_error", None) or ""))
            for col, text in enumerate(values):
                item = _item(text)
                if col == 1:
                    item.setBackground(QtGui.QColor(STATE_COLOURS.get(state, "#616161")))
                    item.setForeground(QtGui.QColor("white"))
                self.status_table.setItem(row, col, item)

    def status_rows(self) -> list[list[str]]:
        """The status table's texts (row by row)."""
        table = self.status_table
        return [[table.item(r, c).text() if table.item(r, c) else "" for c in range(table.columnCount())]
                for r in range(table.rowCount())]

    # ------------------------------------------------------------------ internals

    def _set_enabled(self) -> None:
        has_list = self.positions is not None and len(self.positions) > 0
        self.save_button.setEnabled(has_list)
        self.record_all.setEnabled(has_list)
        if not has_list:
            self.record_all.setChecked(False)

    def _load_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Load a position list", "", "TOML (*.toml)")
        if path:
            self.load(path)

    def _save_dialog(self) -> None:
        # the dialog asks before replacing an existing file: then (only then) overwrite
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save the position list", "positions.toml", "TOML (*.toml)")
        if path:
            self.save(path, overwrite=Path(path).exists())


def _table(columns: Sequence[str]) -> QtWidgets.QTableWidget:
    table = QtWidgets.QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _item(text: str) -> QtWidgets.QTableWidgetItem:
    return QtWidgets.QTableWidgetItem(text)
