"""DifferentialView: one ΔI/I image as the scientist reads it (live panel and run browser share it).

- values in % of I_1 on a diverging colour map centred on 0;
- NaN (outside the particle mask) painted neutral grey, clearly not the colour of "no change";
- a colour bar in % whose ticks are readable at any level (pyqtgraph ticks of the % values);
- a µm scale bar and a crosshair read-out of ΔI/I in % under the mouse.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtWidgets

from operascope.gui.display_math import format_length_um, nice_scale_bar_um

DIVERGING_COLORMAP = "CET-D1"
#: RGBA of pixels without a value (outside the particle mask): mid grey, darker than the map's white 0
NEUTRAL_GREY_RGBA = (96, 96, 96, 255)
LUT_SIZE = 512


def differential_rgba(image_percent: np.ndarray, levels_percent: tuple[float, float], lut: np.ndarray) -> np.ndarray:
    """RGBA uint8 of a ΔI/I image in %: ``lut`` (N x 3 or N x 4 uint8) across ``levels``, NaN -> neutral grey."""
    data = np.asarray(image_percent, dtype=np.float32)
    low, high = float(levels_percent[0]), float(levels_percent[1])
    if not high > low:
        raise ValueError(f"levels must be increasing, got {levels_percent}")
    finite = np.isfinite(data)
    scaled = np.where(finite, (data - low) / (high - low), 0.5)
    index = np.clip((scaled * (len(lut) - 1)).round(), 0, len(lut) - 1).astype(np.intp)
    rgba = np.empty(data.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = lut[index, :3]
    rgba[..., 3] = 255
    rgba[~finite] = NEUTRAL_GREY_RGBA
    return rgba


def format_percent(value_fraction: float) -> str:
    """A ΔI/I fraction as a signed % with 3 decimals and no negative zero ('outside mask' for NaN)."""
    if not math.isfinite(value_fraction):
        return "outside mask"
    percent = round(value_fraction * 100.0, 3) + 0.0
    return f"{percent:+.3f} %" if percent != 0 else "0.000 %"


class DifferentialView(QtWidgets.QWidget):
    """Image + % colour bar + µm scale bar + crosshair read-out. Feed :meth:`show_image` fractions (ΔI/I)."""

    def __init__(self, pixel_size_nm: float = 34.7, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        if not pixel_size_nm > 0:
            raise ValueError(f"pixel_size_nm must be > 0, got {pixel_size_nm}")
        self.pixel_size_nm = float(pixel_size_nm)
        self.levels_percent: tuple[float, float] = (-0.1, 0.1)
        self.image_fraction: np.ndarray | None = None
        self._shape: tuple[int, int] | None = None
        colormap = pg.colormap.get(DIVERGING_COLORMAP)
        self.lut = colormap.getLookupTable(nPts=LUT_SIZE, alpha=False)

        self.graphics = pg.GraphicsLayoutWidget()
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.view.setMenuEnabled(False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image_item)
        self.colorbar = pg.ColorBarItem(values=self.levels_percent, colorMap=colormap, interactive=False,
                                        label="ΔI/I (%)")
        self.graphics.addItem(self.colorbar)
        self.scale_bar = pg.ScaleBar(size=100, width=6, brush=(20, 20, 20), suffix="")
        self.scale_bar.setParentItem(self.view)
        self.scale_bar.anchor((1, 1), (1, 1), offset=(-20, -20))
        self.scale_bar.setVisible(False)
        pen = pg.mkPen((0, 160, 0, 170), width=1)
        self.crosshair_v = pg.InfiniteLine(angle=90, movable=False, pen=pen)
        self.crosshair_h = pg.InfiniteLine(angle=0, movable=False, pen=pen)
        for line in (self.crosshair_v, self.crosshair_h):
            line.setVisible(False)
            self.view.addItem(line, ignoreBounds=True)
        self.cursor_label = QtWidgets.QLabel("move the mouse over the image for ΔI/I")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.cursor_label)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)

    def show_image(self, image_fraction: np.ndarray, levels_percent: tuple[float, float], stride: int = 1) -> None:
        """Show ΔI/I (fractions, NaN = no value) with the colour range ``levels_percent``."""
        data = np.asarray(image_fraction)
        if data.ndim != 2:
            raise ValueError(f"a differential image must be 2-D, got shape {data.shape}")
        if self._shape != data.shape:
            self._new_geometry(data.shape)
        self.image_fraction = data
        self.levels_percent = (float(levels_percent[0]), float(levels_percent[1]))
        shown = data[::stride, ::stride].astype(np.float32) * 100.0
        self.image_item.setImage(differential_rgba(shown, self.levels_percent, self.lut), autoLevels=False)
        self.image_item.setRect(QtCore.QRectF(0, 0, data.shape[1], data.shape[0]))
        self.colorbar.setLevels(self.levels_percent)

    def value_at(self, col: int, row: int) -> float | None:
        """ΔI/I (fraction, NaN outside the mask) at image pixel (col, row); None outside the image."""
        if self.image_fraction is None:
            return None
        height, width = self.image_fraction.shape
        if 0 <= row < height and 0 <= col < width:
            return float(self.image_fraction[row, col])
        return None

    def readout(self, col: int, row: int) -> str:
        """The crosshair text at pixel (col, row)."""
        value = self.value_at(col, row)
        if value is None:
            return ""
        x_um = col * self.pixel_size_nm / 1000.0
        y_um = row * self.pixel_size_nm / 1000.0
        return f"({col}, {row}) px = ({x_um:.2f}, {y_um:.2f}) µm: ΔI/I {format_percent(value)}"

    def scale_bar_label(self) -> str:
        return self.scale_bar.text.toPlainText()

    def _new_geometry(self, shape: tuple[int, int]) -> None:
        self._shape = shape
        height, width = shape
        self.view.setRange(QtCore.QRectF(0, 0, width, height), padding=0.0)
        bar_um = nice_scale_bar_um(width * self.pixel_size_nm / 1000.0)
        self.scale_bar.size = bar_um * 1000.0 / self.pixel_size_nm
        self.scale_bar.text.setText(format_length_um(bar_um))
        self.scale_bar.updateBar()
        self.scale_bar.setVisible(True)

    def _on_mouse_moved(self, scene_pos: QtCore.QPointF) -> None:
        if self.image_fraction is None or not self.view.sceneBoundingRect().contains(scene_pos):
            return
        point = self.view.mapSceneToView(scene_pos)
        col, row = int(math.floor(point.x())), int(math.floor(point.y()))
        text = self.readout(col, row)
        if text:
            self.crosshair_v.setValue(col + 0.5)
            self.crosshair_h.setValue(row + 0.5)
            self.crosshair_v.setVisible(True)
            self.crosshair_h.setVisible(True)
            self.cursor_label.setText(text)
