"""A simulated particle whose θ field comes from the finite-element model (analysis/particle_model/fem.py).

Implements the :class:`operascope.simulators.world.particles.ParticleLithiation` seam: the World calls
``advance(dt_s, specific_current_a_g)`` with whatever current the cell passes (charge, discharge,
rest), and the camera samples ``theta_at`` on a pixel grid. The rock-salt arc (fraction γ, flux ratio
η) is centred on ``rsl_angle_deg`` in image coordinates (from +x towards +y, i.e. y downwards), so an
aged particle (γ > 0, η < 1) delithiates from the open side first and keeps an unreacted region on the
blocked side.

Speed: small mesh (nrefs 3 → 145 nodes), D lagged one step, the LU factor (one per stepping thread) reused while the
step length is unchanged and D has moved by less than ``refactor_relative_d``, and the probe matrix
for ``theta_at`` cached for a repeated grid. Mass balance is exact whatever the step: the mean θ
falls by I·M/F·dt, the same law as :class:`operascope.simulators.world.particles.UniformParticle`.
"""

from __future__ import annotations

import math

import numpy as np

from operascope.analysis.particle_model.fem import (
    INITIAL_THETA,
    DiffusionStepper,
    DiskFem,
    RockSaltBoundary,
    check_positive,
    mean_theta_rate_per_s,
)
from operascope.analysis.particle_model.transport import MaterialFunctions

#: Below this θ spread a particle at rest is taken as uniform (no solve needed).
_UNIFORM_SPREAD = 1e-12


class FemParticle:
    """θ(x, y, t) of a cylindrical particle of ``diameter_um`` with a rock-salt arc (γ, η, angle)."""

    def __init__(
        self,
        diameter_um: float,
        gamma: float = 0.0,
        eta: float = 1.0,
        rsl_angle_deg: float = 0.0,
        initial_theta: float = INITIAL_THETA,
        nrefs: int = 3,
        max_step_s: float = 5.0,
        materials: MaterialFunctions | None = None,
        refactor_relative_d: float = 0.02,
    ) -> None:
        check_positive("diameter_um", diameter_um, "µm")
        check_positive("max_step_s", max_step_s, "s")
        if not 0.0 < initial_theta <= 1.0:
            raise ValueError(f"initial_theta must be in (0, 1], got {initial_theta!r}")
        self.boundary = RockSaltBoundary(gamma=gamma, eta=eta, rsl_angle_deg=rsl_angle_deg)
        self.fem = DiskFem(diameter_um / 2.0, nrefs)
        self._stepper = DiffusionStepper(
            self.fem,
            materials or MaterialFunctions(),
            initial_theta,
            picard_tolerance=None,
            refactor_relative_d=refactor_relative_d,
        )
        self.max_step_s = float(max_step_s)
        # nodal load that removes θ from the mesh at a mean rate of 1 per second
        self._unit_load = self.fem.boundary_load(self.fem.flux_weights(self.boundary) * self.fem.area_um2)
        self._probe_key: tuple[np.ndarray, np.ndarray] | None = None
        self._probe = None
        self.probe_matrices_built = 0

    @property
    def theta_nodes(self) -> np.ndarray:
        """θ at the mesh nodes (read-only view)."""
        view = self._stepper.theta.view()
        view.flags.writeable = False
        return view

    @property
    def linear_solves(self) -> int:
        return self._stepper.solves

    def advance(self, dt_s: float, specific_current_a_g: float) -> None:
        """Advance ``dt_s`` s at ``specific_current_a_g`` (A per g of NMC; + = charge = delithiation)."""
        if not (math.isfinite(dt_s) and dt_s >= 0):
            raise ValueError(f"dt_s must be a finite number >= 0 s, got {dt_s!r}")
        if not math.isfinite(specific_current_a_g):
            raise ValueError(f"specific_current_a_g must be finite (A/g), got {specific_current_a_g!r}")
        if dt_s == 0:
            return
        theta = self._stepper.theta
        if specific_current_a_g == 0 and float(np.ptp(theta)) < _UNIFORM_SPREAD:
            return
        load = self._unit_load * (-mean_theta_rate_per_s(specific_current_a_g))
        steps = max(1, math.ceil(dt_s / self.max_step_s - 1e-9))
        step_s = dt_s / steps
        for _ in range(steps):
            self._stepper.step(step_s, load)

    def mean_theta(self) -> float:
        """Area-averaged θ."""
        return self.fem.mean(self._stepper.theta)

    def surface_theta(self) -> float:
        """Perimeter-averaged θ."""
        return self.fem.surface_mean(self._stepper.theta)

    def theta_at(self, dx_um: np.ndarray, dy_um: np.ndarray) -> np.ndarray:
        """θ (clipped to [0, 1]) at offsets (µm, image axes) from the centre; outside the disk: the edge value."""
        dx, dy = np.broadcast_arrays(np.asarray(dx_um, dtype=float), np.asarray(dy_um, dtype=float))
        key = self._probe_key
        if key is None or key[0].shape != dx.shape or not (np.array_equal(key[0], dx) and np.array_equal(key[1], dy)):
            self._probe = self.fem.probe_matrix(dx, dy)
            self._probe_key = (dx.copy(), dy.copy())
            self.probe_matrices_built += 1
        values = self._probe @ self._stepper.theta
        return np.clip(values, 0.0, 1.0).reshape(dx.shape)
