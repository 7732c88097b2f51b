"""RunBrowser: look at a run file again, or at one still being written.

A bin slider (and play / step) moves the binned image and the ΔI/I image (DifferentialView), a cursor on
the V–Q and COM-vs-SOC curves, the events up to that time and a cursor on the focus trace. "Refresh"
(and a timer, on by default) rereads the file so a recording in progress grows. "Export PNG" saves the view.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtWidgets

from operascope.gui.differential_view import DifferentialView
from operascope.gui.display_math import display_stride, symmetric_levels
from operascope.gui.run_browser_data import RunBrowserData

log = logging.getLogger(__name__)

PLAY_INTERVAL_MS = 100
REFRESH_INTERVAL_MS = 2000
EVENTS_SHOWN = 12
CURVE_COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))


def _cursor(plot: pg.PlotItem) -> pg.InfiniteLine:
    line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((230, 120, 0), width=2))
    plot.addItem(line, ignoreBounds=True)
    return line


class RunBrowser(QtWidgets.QMainWindow):
    """A window over one run file (see module doc)."""

    def __init__(self, path: str | os.PathLike[str], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.data = RunBrowserData(path)
        self.setWindowTitle(f"operascope run browser: {self.data.path.name}")
        self.index = 0
        self._closed = False
        self._build()
        self._fill_curves()
        self.show_bin(0)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        central = QtWidgets.QWidget()
        grid = QtWidgets.QGridLayout(central)
        self.raw_graphics = pg.GraphicsLayoutWidget()
        self.raw_view = self.raw_graphics.addViewBox(lockAspect=True, invertY=True)
        self.raw_item = pg.ImageItem(axisOrder="row-major")
        self.raw_view.addItem(self.raw_item)
        self.diff_view = DifferentialView(self.data.pixel_size_nm)
        self.vq_plot = pg.PlotWidget(title="V–Q")
        self.vq_plot.setLabel("bottom", "capacity", units="mAh/g")
        self.vq_plot.setLabel("left", "voltage", units="V")
        self.com_plot = pg.PlotWidget(title="unreacted-region COM distance vs SOC")
        self.com_plot.setLabel("bottom", "SOC")
        self.com_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.com_plot.setLabel("left", "COM distance (nm)")
        self.focus_plot = pg.PlotWidget(title="focus-lock error")
        self.focus_plot.setLabel("bottom", "time", units="s")
        self.focus_plot.setLabel("left", "error (nm)")
        self.vq_cursor = _cursor(self.vq_plot.getPlotItem())
        self.com_cursor = _cursor(self.com_plot.getPlotItem())
        self.focus_cursor = _cursor(self.focus_plot.getPlotItem())
        self.events_list = QtWidgets.QListWidget()
        grid.addWidget(self.raw_graphics, 0, 0)
        grid.addWidget(self.diff_view, 0, 1)
        grid.addWidget(self.events_list, 0, 2)
        grid.addWidget(self.vq_plot, 1, 0)
        self.particles_label = QtWidgets.QLabel()   # a QLabel, not a pg legend (its items crash on deletion)
        com_box = QtWidgets.QWidget()
        com_layout = QtWidgets.QVBoxLayout(com_box)
        com_layout.setContentsMargins(0, 0, 0, 0)
        com_layout.addWidget(self.com_plot, 1)
        com_layout.addWidget(self.particles_label)
        grid.addWidget(com_box, 1, 1)
        grid.addWidget(self.focus_plot, 1, 2)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)

        self.slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.slider.valueChanged.connect(self.show_bin)
        self.bin_label = QtWidgets.QLabel()
        self.play_button = QtWidgets.QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self._on_play)
        buttons = []
        for text, slot in (("◀ Step", lambda: self.step(-1)), ("Step ▶", lambda: self.step(1)),
                           ("Refresh", self.refresh), ("Export PNG…", self._export_dialog)):
            button = QtWidgets.QPushButton(text)
            button.clicked.connect(slot)
            buttons.append(button)
        self.auto_refresh = QtWidgets.QCheckBox("follow file")
        self.auto_refresh.setChecked(True)
        self.auto_refresh.setToolTip("reread the file every 2 s (a recording still being written grows)")
        controls = QtWidgets.QHBoxLayout()
        controls.addWidget(buttons[0])
        controls.addWidget(self.play_button)
        controls.addWidget(buttons[1])
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.bin_label)
        controls.addWidget(self.auto_refresh)
        controls.addWidget(buttons[2])
        controls.addWidget(buttons[3])
        grid.addLayout(controls, 2, 0, 1, 3)
        self.setCentralWidget(central)
        self.resize(1500, 900)

        self.play_timer = QtCore.QTimer(self)
        self.play_timer.setInterval(PLAY_INTERVAL_MS)
        self.play_timer.timeout.connect(lambda: self.step(1, wrap=False))
        self.refresh_timer = QtCore.QTimer(self)
        self.refresh_timer.setInterval(REFRESH_INTERVAL_MS)
        self.refresh_timer.timeout.connect(self._timed_refresh)
        self.refresh_timer.start()

    def _make_curves(self) -> None:
        """One curve item per trace, created once (refresh only updates their data)."""
        self.vq_curve = self.vq_plot.plot(pen=pg.mkPen((230, 230, 230), width=2))
        self.com_curves = []
        for j, region in enumerate(self.data.regions):
            colour = CURVE_COLOURS[j % len(CURVE_COLOURS)]
            self.com_curves.append(self.com_plot.plot(pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=4,
                                                      symbolBrush=colour, name=region.name, connect="finite"))
        self.particles_label.setText("particles: " + "  ".join(
            f'<span style="color: rgb{CURVE_COLOURS[j % len(CURVE_COLOURS)]}">● {r.name}</span>'
            for j, r in enumerate(self.data.regions)) if self.data.regions else "no particle in the mask of bin 1")
        self.focus_curve = self.focus_plot.plot(pen=pg.mkPen((0, 160, 230), width=1))

    def _fill_curves(self) -> None:
        d = self.data
        if not hasattr(self, "vq_curve"):
            self._make_curves()
        self.slider.setRange(0, d.n_bins - 1)
        echem = d.run.echem
        if echem is not None and echem.capacity_mAh_g is not None:
            self.vq_curve.setData(echem.capacity_mAh_g, echem.voltage_v)
        elif d.run.binned.voltage_v is not None:
            self.vq_curve.setData(d.capacity_mAh_g, d.run.binned.voltage_v)
        for curve, com_nm in zip(self.com_curves, d.com_nm):
            curve.setData(d.soc, com_nm)
        focus = d.run.focus_lock
        if focus is not None and focus.time_s.size:
            self.focus_curve.setData(focus.time_s, focus.error_nm)

    # ------------------------------------------------------------------ bins
    def show_bin(self, index: int) -> None:
        """Show bin ``index``: images, cursors, events."""
        d = self.data
        index = int(np.clip(index, 0, d.n_bins - 1))
        self.index = index
        if self.slider.value() != index:
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
        frame = d.frame(index)
        # one image pixel per screen pixel is enough (full frames are shown strided, read-outs stay full)
        stride = display_stride(max(self.raw_view.viewPixelSize()))
        shown = frame[::stride, ::stride]
        low, high = np.percentile(shown[::2, ::2], (0.5, 99.5))
        self.raw_item.setImage(shown, levels=(float(low), float(max(high, low + 1))), autoLevels=False)
        self.raw_item.setRect(QtCore.QRectF(0, 0, frame.shape[1], frame.shape[0]))
        diff = d.differential(index)
        diff_stride = display_stride(max(self.diff_view.view.viewPixelSize()))
        low_f, high_f = symmetric_levels(diff[::diff_stride, ::diff_stride])
        self.diff_view.show_image(diff, (low_f * 100.0, high_f * 100.0), diff_stride)
        time_s = float(d.time_s[index])
        capacity = float(d.capacity_mAh_g[index])
        self.vq_cursor.setValue(capacity if np.isfinite(capacity) else 0.0)
        soc = float(d.soc[index])
        self.com_cursor.setValue(soc if np.isfinite(soc) else 0.0)
        self.focus_cursor.setValue(time_s)
        self.bin_label.setText(f"bin {index + 1}/{d.n_bins} · t = {time_s:.1f} s · {capacity:.1f} mAh/g")
        self.events_list.clear()
        for event in d.events_until(time_s)[-EVENTS_SHOWN:]:
            self.events_list.addItem(f"{event.time_s:8.1f} s  {event.level:7s} {event.source}: {event.message}")

    def step(self, delta: int, wrap: bool = False) -> None:
        """Move ``delta`` bins (play stops at the last bin)."""
        target = self.index + delta
        if target >= self.data.n_bins and not wrap:
            self.play_button.setChecked(False)
            return
        self.show_bin(target % self.data.n_bins if wrap else target)

    def _on_play(self, playing: bool) -> None:
        self.play_button.setText("Pause" if playing else "Play")
        if playing:
            if self.index >= self.data.n_bins - 1:
                self.show_bin(0)
            self.play_timer.start()
        else:
            self.play_timer.stop()

    # ------------------------------------------------------------------ file
    def refresh(self) -> int:
        """Reread the file; returns the number of new bins (the view stays on its bin)."""
        added = self.data.refresh()
        self._fill_curves()
        self.show_bin(self.index)
        return added

    def _timed_refresh(self) -> None:
        if self.auto_refresh.isChecked():
            self.refresh()

    def export_png(self, path: str | os.PathLike[str]) -> bool:
        """Save the window as it is now to ``path``."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        return bool(self.grab().save(str(target), "PNG"))

    def _export_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Export the view", f"{self.data.path.stem}_bin{self.index + 1:04d}.png", "PNG (*.png)")
        if path and not self.export_png(path):
            QtWidgets.QMessageBox.warning(self, "Export failed", f"could not write {path}")

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        QtCore.QTimer.singleShot(0, self._show_again)   # the display strides need the laid-out views

    def _show_again(self) -> None:
        if not self._closed:
            self.show_bin(self.index)

    def close_without_asking(self) -> bool:
        return self.close()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.play_timer.stop()
        self.refresh_timer.stop()
        if not self._closed:
            self._closed = True
            self.data.close()
        super().closeEvent(event)
