"""Recording panel: file name, bin size, save raw, start/stop, counters, writer queue, write rate,
free disk space, and the events log."""

from __future__ import annotations

import datetime
import shutil
from dataclasses import dataclass
from pathlib import Path

from PyQt5 import QtCore, QtWidgets

from operascope.gui.display_math import format_bytes
from operascope.gui.events_log import EventsLog


@dataclass(frozen=True)
class RecordingRequest:
    """What the user asked to record."""

    path: Path
    bin_size: int
    save_raw: bool

    def __post_init__(self) -> None:
        if self.bin_size < 1:
            raise ValueError(f"bin size must be at least 1 frame, got {self.bin_size}")
        if not str(self.path).strip() or Path(self.path).suffix not in (".h5", ".hdf5", ".nxs"):
            raise ValueError(f"run file name must end in .h5, .hdf5 or .nxs, got {str(self.path)!r}")


def default_run_path(folder: Path) -> Path:
    """runs/run_YYYYmmdd_HHMMSS.h5 in ``folder``."""
    return folder / f"run_{datetime.datetime.now():%Y%m%d_%H%M%S}.h5"


def free_disk_bytes(path: Path) -> int | None:
    """Free bytes on the file system that holds ``path`` (or its nearest existing parent)."""
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


class RecordingPanel(QtWidgets.QWidget):
    """Presents recording; emits a RecordingRequest on start and a stop request."""

    start_requested = QtCore.pyqtSignal(object)  # RecordingRequest
    stop_requested = QtCore.pyqtSignal()

    def __init__(self, bin_size: int = 20, save_raw: bool = False, folder: Path | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.path_edit = QtWidgets.QLineEdit(str(default_run_path(folder or Path.cwd() / "runs")))
        self.browse_button = QtWidgets.QPushButton("…")
        self.browse_button.setMaximumWidth(30)
        self.browse_button.clicked.connect(self._browse)
        self.bin_size = QtWidgets.QSpinBox()
        self.bin_size.setRange(1, 10_000)
        self.bin_size.setValue(bin_size)
        self.bin_size.setSuffix(" frames")
        self.save_raw = QtWidgets.QCheckBox("save raw frames")
        self.save_raw.setChecked(save_raw)
        self.start_button = QtWidgets.QPushButton("● Record")
        self.start_button.setStyleSheet("font-weight:bold;")
        self.stop_button = QtWidgets.QPushButton("■ Stop")
        self.stop_button.setEnabled(False)
        self.start_button.clicked.connect(self._on_start)
        self.stop_button.clicked.connect(self.stop_requested)
        self.counters_label = QtWidgets.QLabel("not recording")
        self.counters_label.setWordWrap(True)
        self.disk_label = QtWidgets.QLabel("")
        self.events = EventsLog()

        path_row = QtWidgets.QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        form = QtWidgets.QFormLayout()
        form.addRow("file", path_row)
        form.addRow("bin size", self.bin_size)
        form.addRow("", self.save_raw)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.counters_label)
        layout.addWidget(self.disk_label)
        layout.addWidget(QtWidgets.QLabel("events:"))
        layout.addWidget(self.events, 1)

    # ------------------------------------------------------------------ requests

    def request(self) -> RecordingRequest:
        """The recording as set up. Raises ValueError for a bad file name or bin size."""
        return RecordingRequest(Path(self.path_edit.text().strip()), self.bin_size.value(), self.save_raw.isChecked())

    def _on_start(self) -> None:
        try:
            request = self.request()
        except ValueError as exc:
            self.events.add_event(None, "error", "recording", str(exc))
            return
        self.start_requested.emit(request)

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Run file", self.path_edit.text(), "HDF5 (*.h5)")
        if path:
            self.path_edit.setText(path)

    # ------------------------------------------------------------------ updates

    def show_recording(self, recording: bool) -> None:
        """Enable the controls that make sense while (not) recording."""
        self.start_button.setEnabled(not recording)
        self.stop_button.setEnabled(recording)
        for widget in (self.path_edit, self.browse_button, self.bin_size, self.save_raw):
            widget.setEnabled(not recording)

    def show_counters(self, frames: int, bins: int, raw_frames: int, queue_depth: int,
                      write_rate_bytes_s: float | None, recording: bool) -> None:
        """Counters of the current (or last) recording."""
        rate = "-" if write_rate_bytes_s is None else f"{format_bytes(write_rate_bytes_s)}/s"
        state = "RECORDING" if recording else "last run"
        self.counters_label.setText(
            f"{state}: {frames} frames in · {bins} bins written · {raw_frames} raw frames written · "
            f"writer queue {queue_depth} · write rate {rate}"
        )

    def show_free_disk(self) -> int | None:
        """Look up and show the free space where the run file goes; returns bytes."""
        free = free_disk_bytes(Path(self.path_edit.text().strip() or "."))
        self.disk_label.setText("free disk: unknown" if free is None else f"free disk: {format_bytes(free)}")
        return free

    def next_default_path(self) -> None:
        """Suggest a fresh file name in the same folder (after a recording ended)."""
        current = Path(self.path_edit.text().strip() or "runs/run.h5")
        self.path_edit.setText(str(default_run_path(current.parent)))
