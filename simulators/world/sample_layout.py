"""Where the simulated sample's particles and fiducials lie, and which of them a camera ROI sees.

A sample larger than one field of view (multi-position runs, issue 19) may hold hundreds of
particles spread over millimetres; only those whose image reaches the ROI are handed to the
renderer, found with one vectorised test over arrays of their positions. The cost of a frame so
does not grow with the number of far-away particles (benchmarks/bench_positions.py measures it).

Coordinates as in :mod:`operascope.simulators.world.world`: sample (x, y) in µm equal
full-sensor image coordinates at stage (0, 0) with no drift; ``view_dx_nm`` / ``view_dy_nm``
(drift minus stage position) carry sample coordinates to image coordinates.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from operascope.config.schema import ParticleConfig
from operascope.simulators.world.optics import RoiGeometry, fiducial_reach_nm, particle_reach_nm


class SampleLayout:
    """Positions (nm, sample coordinates) of every particle and fiducial of the sample."""

    def __init__(self, particles: Sequence[ParticleConfig], fiducials_xy_um: Sequence[tuple[float, float]]) -> None:
        if not fiducials_xy_um:
            raise ValueError("a simulated sample needs at least one fiducial (simulation.fiducials_xy_um)")
        self._x_nm = np.array([p.x_um * 1000.0 for p in particles], dtype=float)
        self._y_nm = np.array([p.y_um * 1000.0 for p in particles], dtype=float)
        self._radius_nm = np.array([p.diameter_um * 500.0 for p in particles], dtype=float)
        self.fiducials_nm: tuple[tuple[float, float], ...] = tuple(
            (float(x) * 1000.0, float(y) * 1000.0) for x, y in fiducials_xy_um)

    @property
    def n_particles(self) -> int:
        return int(self._x_nm.size)

    def visible_particles(self, view_dx_nm: float, view_dy_nm: float, geom: RoiGeometry, blur_sigma_nm: float) -> np.ndarray:
        """Indices (ascending) of the particles whose image reaches ``geom``'s pixels.

        The margin is one pixel wider than the renderer's own reach, so every particle the renderer
        would draw is included (frames are the same as with every particle handed over).
        """
        if self._x_nm.size == 0:
            return np.zeros(0, dtype=np.intp)
        reach = particle_reach_nm(self._radius_nm, blur_sigma_nm) + geom.pixel_size_nm
        x = self._x_nm + view_dx_nm
        y = self._y_nm + view_dy_nm
        inside = ((x + reach >= geom.x_nm[0]) & (x - reach <= geom.x_nm[-1])
                  & (y + reach >= geom.y_nm[0]) & (y - reach <= geom.y_nm[-1]))
        return np.flatnonzero(inside)

    def visible_fiducials(self, view_dx_nm: float, view_dy_nm: float, geom: RoiGeometry,
                          blur_sigma_nm: float) -> tuple[tuple[float, float], ...]:
        """Image coordinates (nm) of the fiducials after the first whose spot reaches ``geom``."""
        reach = fiducial_reach_nm(blur_sigma_nm) + geom.pixel_size_nm
        out = []
        for x_nm, y_nm in self.fiducials_nm[1:]:
            x, y = x_nm + view_dx_nm, y_nm + view_dy_nm
            if geom.x_nm[0] - reach <= x <= geom.x_nm[-1] + reach and geom.y_nm[0] - reach <= y <= geom.y_nm[-1] + reach:
                out.append((x, y))
        return tuple(out)
