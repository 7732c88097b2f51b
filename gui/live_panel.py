"""Live panel: the newest raw camera frame with histogram/levels, crosshair, scale bar and rates."""

from __future__ import annotations

import time
import weakref
from collections import deque
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtWidgets

from operascope.gui.safe_items import SafeInfiniteLine

from operascope.gui.display_math import display_stride, format_length_um, nice_scale_bar_um, robust_levels


class _TimedImageItem(pg.ImageItem):
    """An ImageItem that calls a listener after each paint (to measure frame-to-screen latency).

    The listener is held by a weak reference: a strong panel <-> item cycle lets the garbage
    collector delete the C++ item while the scene still draws it (a crash at teardown).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._paint_listener: weakref.WeakMethod | None = None

    def set_paint_listener(self, method: Callable[[], None]) -> None:
        """Call the bound ``method`` after every paint while its object lives."""
        self._paint_listener = weakref.WeakMethod(method)

    def paint(self, painter, *args) -> None:  # noqa: D102 - Qt override
        super().paint(painter, *args)
        listener = self._paint_listener() if self._paint_listener is not None else None
        if listener is not None:
            listener()


class LivePanel(QtWidgets.QWidget):
    """Shows the newest camera frame (uint16 counts) and the camera's rates.

    ``pixel_size_nm`` sets the scale bar. Call :meth:`show_frame` with the newest frame only.
    """

    def __init__(self, pixel_size_nm: float, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        if pixel_size_nm <= 0:
            raise ValueError(f"pixel_size_nm must be > 0, got {pixel_size_nm}")
        self.pixel_size_nm = pixel_size_nm
        self.frames_shown = 0
        self.last_frame_id: int | None = None
        self.last_frame_shown_wall_s: float | None = None
        self._shape: tuple[int, int] | None = None
        self._clock_now_s: Callable[[], float] | None = None
        self._clock_speed = 1.0
        self._unpainted_frame_time_s: float | None = None
        #: frame-to-screen latencies (wall s) of recently painted frames; needs :meth:`set_clock`
        self.latencies_s: deque[float] = deque(maxlen=1000)

        self.graphics = pg.GraphicsLayoutWidget()
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.view.setMenuEnabled(False)
        # shown with a stride of about one image pixel per screen pixel (cheap; full detail when zoomed in)
        self.image_item = _TimedImageItem(axisOrder="row-major")
        self.displayed_stride = 1
        self.image_item.set_paint_listener(self._on_painted)
        self.view.addItem(self.image_item)
        self.histogram = pg.HistogramLUTItem()
        self.histogram.setImageItem(self.image_item)
        self.graphics.addItem(self.histogram)

        pen = pg.mkPen((255, 220, 0, 160), width=1)
        self.crosshair_v = SafeInfiniteLine(angle=90, movable=True, pen=pen)
        self.crosshair_h = SafeInfiniteLine(angle=0, movable=True, pen=pen)
        for line in (self.crosshair_v, self.crosshair_h):
            self.view.addItem(line, ignoreBounds=True)

        self.scale_bar = pg.ScaleBar(size=100, width=6, brush=(255, 255, 255), suffix="")
        self.scale_bar.setParentItem(self.view)
        self.scale_bar.anchor((1, 1), (1, 1), offset=(-20, -20))
        self.scale_bar.setVisible(False)  # until the first frame gives the geometry

        self.auto_levels = QtWidgets.QCheckBox("auto levels")
        self.auto_levels.setChecked(True)
        self.crosshair_box = QtWidgets.QCheckBox("crosshair")
        self.crosshair_box.setChecked(True)
        self.crosshair_box.toggled.connect(self._set_crosshair_visible)
        self.rates_label = QtWidgets.QLabel("no frames yet")
        self.warning_label = QtWidgets.QLabel("")   # e.g. the simulation cannot keep up
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("color:#e68a00;")
        self.warning_label.setVisible(False)
        self.cursor_label = QtWidgets.QLabel("")

        controls = QtWidgets.QHBoxLayout()
        controls.addWidget(self.auto_levels)
        controls.addWidget(self.crosshair_box)
        controls.addStretch(1)
        controls.addWidget(self.cursor_label)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.graphics, 1)
        layout.addLayout(controls)
        layout.addWidget(self.rates_label)
        layout.addWidget(self.warning_label)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._last_image: np.ndarray | None = None

    # ------------------------------------------------------------------ updates

    def set_clock(self, now_s: Callable[[], float], speed: float = 1.0) -> None:
        """The rig clock (s) that stamps frames and its speed (clock s per wall s), for latency."""
        if speed <= 0:
            raise ValueError(f"clock speed must be > 0, got {speed}")
        self._clock_now_s = now_s
        self._clock_speed = speed

    def show_frame(self, pixels: np.ndarray, frame_id: int, frame_time_s: float | None = None) -> None:
        """Display ``pixels`` (2-D counts) stamped at ``frame_time_s`` on the rig clock.

        Frames with the id already shown are ignored."""
        if frame_id == self.last_frame_id:
            return
        image = np.asarray(pixels)
        if image.ndim != 2:
            raise ValueError(f"a camera frame must be 2-D, got shape {image.shape}")
        first = self._shape != image.shape
        if first:
            self._shape = image.shape
            self._on_new_geometry(image.shape)
        self.displayed_stride = stride = display_stride(max(self.view.viewPixelSize()))
        shown = image[::stride, ::stride] if stride > 1 else image
        if self.auto_levels.isChecked() or first:
            levels = robust_levels(image)
            self.image_item.setImage(shown, autoLevels=False, levels=levels)
            self.histogram.setLevels(*levels)
        else:
            self.image_item.setImage(shown, autoLevels=False)
        self.image_item.setRect(QtCore.QRectF(0, 0, image.shape[1], image.shape[0]))
        self._last_image = image
        self.last_frame_id = frame_id
        self.frames_shown += 1
        self.last_frame_shown_wall_s = time.monotonic()
        self._unpainted_frame_time_s = frame_time_s

    def set_rates(self, fps_in: float, fps_out: float, dropped: int) -> None:
        """Camera rate (frames/s in), display rate (frames/s shown) and frames dropped by the camera path."""
        latency = f" · latency {self.latencies_s[-1] * 1000:.0f} ms" if self.latencies_s else ""
        self.rates_label.setText(
            f"camera {fps_in:5.1f} fps in · display {fps_out:5.1f} fps out · dropped {dropped}"
            f" · frame {self.last_frame_id if self.last_frame_id is not None else '-'}{latency}"
        )

    def show_counters(self, text: str, warning: str = "") -> None:
        """The counter line (see operascope.gui.counters) plus latency, and an optional warning line."""
        latency = f" · latency {self.latencies_s[-1] * 1000:.0f} ms" if self.latencies_s else ""
        self.rates_label.setText(f"{text}{latency}")
        self.warning_label.setText(warning)
        self.warning_label.setVisible(bool(warning))

    def _on_painted(self) -> None:
        if self._unpainted_frame_time_s is None or self._clock_now_s is None:
            return
        try:
            now_s = self._clock_now_s()
        except RuntimeError:       # the engine closed while the window still paints (closing)
            self._clock_now_s = None
            return
        latency_s = (now_s - self._unpainted_frame_time_s) / self._clock_speed
        self._unpainted_frame_time_s = None
        self.latencies_s.append(latency_s)

    # ------------------------------------------------------------------ internals

    def _on_new_geometry(self, shape: tuple[int, int]) -> None:
        height, width = shape
        self.view.setRange(QtCore.QRectF(0, 0, width, height), padding=0.0)
        self.crosshair_v.setValue(width / 2)
        self.crosshair_h.setValue(height / 2)
        width_um = width * self.pixel_size_nm / 1000.0
        bar_um = nice_scale_bar_um(width_um)
        self.scale_bar.size = bar_um * 1000.0 / self.pixel_size_nm
        self.scale_bar.text.setText(format_length_um(bar_um))
        self.scale_bar.updateBar()
        self.scale_bar.setVisible(True)

    def scale_bar_label(self) -> str:
        """Text of the scale bar (e.g. '2 µm')."""
        return self.scale_bar.text.toPlainText()

    def _set_crosshair_visible(self, visible: bool) -> None:
        self.crosshair_v.setVisible(visible)
        self.crosshair_h.setVisible(visible)

    def _on_mouse_moved(self, scene_pos: QtCore.QPointF) -> None:
        if self._last_image is None or not self.view.sceneBoundingRect().contains(scene_pos):
            return
        point = self.view.mapSceneToView(scene_pos)
        col, row = int(point.x()), int(point.y())
        height, width = self._last_image.shape
        if 0 <= row < height and 0 <= col < width:
            x_um = col * self.pixel_size_nm / 1000.0
            y_um = row * self.pixel_size_nm / 1000.0
            self.cursor_label.setText(f"({col}, {row}) px = ({x_um:.2f}, {y_um:.2f}) µm: {self._last_image[row, col]}")
