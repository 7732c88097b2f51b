"""SciencePanel: the reaction front while it happens, per particle of the live mask.

Fed by the window on every new differential bin (the differential image, the live mask, the capacity of the
electrochemistry log at that moment): per particle, the unreacted-region COM distance (nm) vs SOC and the
mean ΔI/I (%) vs capacity, computed by gui.particle_science with the functions and defaults of
``operascope analyze`` (the rim-aware front COM, with the live reference frame when the engine gives it).
A new mask (new reference, new picks) starts new curves. Particles the sample configuration knows
(the simulator's) are labelled aged or fresh (gui.sample_labels); aged ones are drawn dashed.
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtWidgets

from operascope.analysis.materials import SPECIFIC_CAPACITY_MAH_G
from operascope.gui.particle_science import ParticleRegion, crop_margin_px, measure_particles, particle_regions
from operascope.gui.sample_labels import SampleParticle

#: centroids (px) of the particles found -> the sample's particle each one is (None = not known)
SampleMatcher = Callable[[Sequence[tuple[float, float]]], Sequence["SampleParticle | None"]]

log = logging.getLogger(__name__)

CURVE_COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))
MAX_PARTICLES = 12


def _finite_points(x: list[float], y: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """The points where both x and y are finite (NaN = no front yet / front has swept the particle)."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    return xs[keep], ys[keep]


class SciencePanel(QtWidgets.QWidget):
    """Two plots (COM distance vs SOC, mean ΔI/I vs capacity) with one curve per particle."""

    def __init__(self, pixel_size_nm: float, sample_matcher: SampleMatcher | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        if not pixel_size_nm > 0:
            raise ValueError(f"pixel_size_nm must be > 0, got {pixel_size_nm}")
        self.pixel_size_nm = float(pixel_size_nm)
        self.sample_matcher = sample_matcher
        self.regions: list[ParticleRegion] = []
        #: per region: the sample's particle (aged/fresh, γ, η) or None where the sample is not known
        self.sample: list[SampleParticle | None] = []
        self._mask_key: tuple | None = None
        self._last_index: int | None = None
        self.soc: list[float] = []
        self.capacity_mAh_g: list[float] = []
        self.com_nm: list[list[float]] = []
        self.mean_percent: list[list[float]] = []
        self.com_plot = pg.PlotWidget()
        self.com_plot.setLabel("left", "unreacted COM distance (nm)")
        self.com_plot.setLabel("bottom", "SOC")
        self.com_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.mean_plot = pg.PlotWidget()
        self.mean_plot.setLabel("left", "mean ΔI/I (%)")
        self.mean_plot.setLabel("bottom", "capacity (mAh/g)")
        self.mean_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.particles_label = QtWidgets.QLabel("waiting for the first differential bin")
        self.particles_label.setWordWrap(True)
        plots = QtWidgets.QHBoxLayout()
        plots.addWidget(self.com_plot)
        plots.addWidget(self.mean_plot)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(plots, 1)
        layout.addWidget(self.particles_label)
        self._com_curves: list[pg.PlotDataItem] = []
        self._mean_curves: list[pg.PlotDataItem] = []

    @property
    def n_points(self) -> int:
        return len(self.soc)

    def add_bin(self, index: int | None, diff: np.ndarray, mask: np.ndarray | None,
                capacity_mAh_g: float | None, reference: np.ndarray | None = None) -> bool:
        """Add the numbers of one differential bin; False if it was already added or there is no mask.

        ``reference``: the frame ``diff`` is relative to (the rim's coverage is then corrected as in
        ``operascope analyze``); None = the rim is eroded instead."""
        if mask is None or diff is None or (index is not None and index == self._last_index):
            return False
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != np.shape(diff):
            log.debug("mask %s and differential %s differ in shape; bin skipped", mask.shape, np.shape(diff))
            return False
        key = (mask.shape, int(mask.sum()), hash(np.packbits(mask).tobytes()))
        if key != self._mask_key:
            self._new_mask(mask, key)
        self._last_index = index
        capacity = float(capacity_mAh_g) if capacity_mAh_g is not None else math.nan
        self.capacity_mAh_g.append(capacity)
        self.soc.append(capacity / SPECIFIC_CAPACITY_MAH_G)
        if reference is not None and np.shape(reference) != mask.shape:
            log.debug("reference %s and mask %s differ in shape; rim eroded instead", np.shape(reference), mask.shape)
            reference = None
        for j, measure in enumerate(measure_particles(np.asarray(diff, dtype=np.float32), self.regions,
                                                      self.pixel_size_nm, reference)):
            self.com_nm[j].append(measure.com_distance_nm)
            self.mean_percent[j].append(measure.mean_differential * 100.0)
            self._com_curves[j].setData(*_finite_points(self.soc, self.com_nm[j]))
            self._mean_curves[j].setData(*_finite_points(self.capacity_mAh_g, self.mean_percent[j]))
        return True

    def _new_mask(self, mask: np.ndarray, key: tuple) -> None:
        """A new mask: new particles, empty curves."""
        self._mask_key = key
        self.regions = particle_regions(mask, margin_px=crop_margin_px(self.pixel_size_nm))[:MAX_PARTICLES]
        self.sample = self._match_sample()
        self.soc, self.capacity_mAh_g = [], []
        self.com_nm = [[] for _ in self.regions]
        self.mean_percent = [[] for _ in self.regions]
        for plot in (self.com_plot, self.mean_plot):
            plot.clear()      # curves only: no legend (pyqtgraph legend items crash when deleted)
        self._com_curves, self._mean_curves = [], []
        names = []
        for j, region in enumerate(self.regions):
            colour = CURVE_COLOURS[j % len(CURVE_COLOURS)]
            known = self.sample[j]
            style = QtCore.Qt.DashLine if known is not None and known.ageing == "aged" else QtCore.Qt.SolidLine
            pen = pg.mkPen(colour, width=2, style=style)
            self._com_curves.append(self.com_plot.plot(pen=pen, symbol="o", symbolSize=4, symbolBrush=colour))
            self._mean_curves.append(self.mean_plot.plot(pen=pen, symbol="o", symbolSize=4, symbolBrush=colour))
            x, y = region.centroid_xy_px
            what = f" <b>{known.describe()}</b>" if known is not None else ""
            names.append(f'<span style="color: rgb{colour}">● {region.name}</span>{what} ({x:.0f}, {y:.0f}) px')
        self.particles_label.setText("particles: " + "  ".join(names) if names else
                                     "no particle in the mask (min 30 px)")

    def _match_sample(self) -> list[SampleParticle | None]:
        """The sample's particle for each region (all None without a matcher or if it fails)."""
        if self.sample_matcher is None or not self.regions:
            return [None] * len(self.regions)
        try:
            matches = list(self.sample_matcher([r.centroid_xy_px for r in self.regions]))
        except Exception as exc:  # noqa: BLE001 - labels are a help; never lose the curves over them
            log.warning("particles not labelled aged/fresh: %s", exc)
            return [None] * len(self.regions)
        return (matches + [None] * len(self.regions))[: len(self.regions)]

    def labels(self) -> list[str]:
        """One text per particle: its name, and aged/fresh where the sample is known."""
        return [f"{r.name} {known.describe()}" if known is not None else r.name
                for r, known in zip(self.regions, self.sample)]
