"""Differential panel: live (I_i - I_1)/I_1 in % (see DifferentialView: grey outside the mask, % colour bar,
µm scale bar, crosshair read-out) with the mask outline.

Clicking picks the fiducial spot or places the particle region (see the "click picks" selector).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtWidgets

from operascope.gui.differential_view import DifferentialView, format_percent
from operascope.gui.display_math import display_stride, mask_outline, symmetric_levels

PICK_NOTHING, PICK_FIDUCIAL, PICK_PARTICLE = "nothing", "fiducial", "particle"
DEFAULT_PARTICLE_BOX_PX = 80


class DifferentialPanel(QtWidgets.QWidget):
    """Shows differential images (dimensionless dI/I, NaN or 0 outside the mask)."""

    #: x_px, y_px of the picked fiducial in image pixels
    fiducial_picked = QtCore.pyqtSignal(float, float)
    #: x, y, width, height (px) of the particle region
    particle_region_changed = QtCore.pyqtSignal(int, int, int, int)

    def __init__(self, pixel_size_nm: float = 34.7, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.levels: tuple[float, float] = (-1e-3, 1e-3)
        self.images_shown = 0
        self.particle_region: tuple[int, int, int, int] | None = None
        self.fiducial_xy_px: tuple[float, float] | None = None
        self._mask_key: tuple | None = None
        self.mask_pixels = 0
        self._image: np.ndarray | None = None

        self.display = DifferentialView(pixel_size_nm)
        self.graphics = self.display.graphics
        self.view = self.display.view
        self.image_item = self.display.image_item
        self.colorbar = self.display.colorbar
        # the outline is an RGBA overlay image (an isocurve of a full-frame mask is far too slow)
        self.mask_outline = pg.ImageItem(axisOrder="row-major")
        self.mask_outline.setZValue(5)
        self.view.addItem(self.mask_outline)
        self.fiducial_marker = pg.ScatterPlotItem(size=18, symbol="o", pen=pg.mkPen((0, 200, 0), width=2),
                                                  brush=None)
        self.view.addItem(self.fiducial_marker)
        self.particle_roi: pg.RectROI | None = None

        self.pick_choice = QtWidgets.QComboBox()
        self.pick_choice.addItems([PICK_NOTHING, PICK_FIDUCIAL, PICK_PARTICLE])
        self.auto_levels = QtWidgets.QCheckBox("symmetric auto levels")
        self.auto_levels.setChecked(True)
        self.fixed_level_percent = QtWidgets.QDoubleSpinBox()
        self.fixed_level_percent.setRange(0.01, 100.0)
        self.fixed_level_percent.setDecimals(2)
        self.fixed_level_percent.setValue(5.0)
        self.fixed_level_percent.setSuffix(" %")
        self.fixed_level_percent.setToolTip("colour range ± this value of dI/I when auto levels are off")
        self.info_label = QtWidgets.QLabel("waiting for the first binned frame (the reference)")
        self.region_plot = pg.PlotWidget()
        self.region_plot.setLabel("left", "region dI/I (%)")
        self.region_plot.setLabel("bottom", "bin")
        self.region_plot.setMaximumHeight(120)
        self.region_curve = self.region_plot.plot(pen=pg.mkPen((255, 140, 0), width=1), symbol="o", symbolSize=4,
                                                  symbolBrush=(255, 140, 0))
        self.region_plot.setVisible(False)
        self._region_trace: list[tuple[float, float]] = []

        controls = QtWidgets.QHBoxLayout()
        controls.addWidget(QtWidgets.QLabel("click picks:"))
        controls.addWidget(self.pick_choice)
        controls.addStretch(1)
        controls.addWidget(self.auto_levels)
        controls.addWidget(self.fixed_level_percent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.display, 1)
        layout.addLayout(controls)
        layout.addWidget(self.info_label)
        layout.addWidget(self.region_plot)
        self.graphics.scene().sigMouseClicked.connect(self._on_click)

    # ------------------------------------------------------------------ updates

    def show_differential(self, image: np.ndarray, mask: np.ndarray | None = None, bin_index: int | None = None) -> None:
        """Display one differential frame; ``mask`` (bool, True = particle) draws the outline."""
        data = np.asarray(image)
        if data.ndim != 2:
            raise ValueError(f"a differential image must be 2-D, got shape {data.shape}")
        if self._image is None or self._image.shape != data.shape:
            self.view.setRange(QtCore.QRectF(0, 0, data.shape[1], data.shape[0]), padding=0.0)
        stride = display_stride(max(self.view.viewPixelSize()))
        self._image_shape = data.shape
        if self.auto_levels.isChecked():
            self.levels = symmetric_levels(data[::stride, ::stride])
        else:
            level = self.fixed_level_percent.value() / 100.0
            self.levels = (-level, level)
        self.display.show_image(data, (self.levels[0] * 100.0, self.levels[1] * 100.0), stride)
        self._image = data
        if mask is not None:
            self._set_mask(np.asarray(mask, dtype=bool), stride)
        self.images_shown += 1
        self._append_region_point(bin_index)
        self._update_info(bin_index)

    def mean_in_particle_region(self) -> float | None:
        """Mean dI/I inside the particle region (None if no region or no image)."""
        if self._image is None or self.particle_region is None:
            return None
        x, y, w, h = self.particle_region
        patch = self._image[max(y, 0): y + h, max(x, 0): x + w]
        if not patch.size:
            return None
        finite = patch[np.isfinite(patch)]
        return float(finite.mean()) if finite.size else 0.0

    def region_trace(self) -> list[tuple[float, float]]:
        """(bin index, mean dI/I) of the particle region for every image shown since it was placed."""
        return list(self._region_trace)

    def _append_region_point(self, bin_index: int | None) -> None:
        mean = self.mean_in_particle_region()
        if mean is None:
            return
        x = float(bin_index if bin_index is not None else self.images_shown)
        self._region_trace.append((x, mean))
        xs, ys = zip(*self._region_trace)
        self.region_curve.setData(np.asarray(xs), np.asarray(ys) * 100.0)

    def pick_at(self, x_px: float, y_px: float) -> None:
        """Act as a click at image pixel (x, y) in the current pick mode."""
        mode = self.pick_choice.currentText()
        if mode == PICK_FIDUCIAL:
            self.fiducial_xy_px = (x_px, y_px)
            self.fiducial_marker.setData([x_px], [y_px])
            self.fiducial_picked.emit(float(x_px), float(y_px))
        elif mode == PICK_PARTICLE:
            half = DEFAULT_PARTICLE_BOX_PX / 2
            self._place_particle_roi(x_px - half, y_px - half, DEFAULT_PARTICLE_BOX_PX, DEFAULT_PARTICLE_BOX_PX)

    # ------------------------------------------------------------------ internals

    def _set_mask(self, mask: np.ndarray, stride: int) -> None:
        key = (mask.shape, stride, int(mask.sum()), hash(mask[:: max(1, mask.shape[0] // 16)].tobytes()))
        if key == self._mask_key:
            return
        self._mask_key = key
        outline = mask_outline(mask[::stride, ::stride])  # drawn at the displayed resolution, so it stays visible
        self.mask_pixels = int(mask.sum())
        mask = mask[::stride, ::stride]
        rgba = np.zeros(mask.shape + (4,), dtype=np.uint8)
        rgba[outline] = (20, 20, 20, 255)
        self.mask_outline.setImage(rgba, autoLevels=False)
        height, width = self._image_shape
        self.mask_outline.setRect(QtCore.QRectF(0, 0, width, height))

    def _place_particle_roi(self, x: float, y: float, w: float, h: float) -> None:
        if self.particle_roi is None:
            self.particle_roi = pg.RectROI((x, y), (w, h), pen=pg.mkPen((255, 140, 0), width=2))
            self.particle_roi.sigRegionChangeFinished.connect(self._on_roi_changed)
            self.view.addItem(self.particle_roi)
        else:
            self.particle_roi.setPos((x, y), finish=False)
            self.particle_roi.setSize((w, h), finish=False)
        self._on_roi_changed()

    def _on_roi_changed(self, *_args) -> None:
        if self.particle_roi is None:
            return
        x, y = self.particle_roi.pos()
        w, h = self.particle_roi.size()
        self.particle_region = (int(round(x)), int(round(y)), int(round(w)), int(round(h)))
        self._region_trace.clear()  # a new region starts a new trace
        self.region_curve.setData([], [])
        self.region_plot.setVisible(True)
        self.particle_region_changed.emit(*self.particle_region)
        self._update_info(None)

    def _on_click(self, event) -> None:
        if self.pick_choice.currentText() == PICK_NOTHING or self._image is None:
            return
        if not self.view.sceneBoundingRect().contains(event.scenePos()):
            return
        point = self.view.mapSceneToView(event.scenePos())
        height, width = self._image.shape
        if 0 <= point.x() < width and 0 <= point.y() < height:
            self.pick_at(point.x(), point.y())

    def _update_info(self, bin_index: int | None) -> None:
        parts = [f"levels ±{self.levels[1] * 100:.3g} % ΔI/I"]
        if bin_index is not None:
            parts.insert(0, f"bin {bin_index}")
        if self.fiducial_xy_px is not None:
            parts.append(f"fiducial ({self.fiducial_xy_px[0]:.1f}, {self.fiducial_xy_px[1]:.1f}) px")
        mean = self.mean_in_particle_region()
        if mean is not None:
            parts.append(f"particle mean ΔI/I {format_percent(mean)}")
        self.info_label.setText(" · ".join(parts))
