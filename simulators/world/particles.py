"""The particle seam: how a simulated particle's Li occupancy θ evolves with the current.

The World holds one :class:`ParticleLithiation` per configured particle and, every
``particle_step_s`` of virtual time, calls ``advance(dt_s, specific_current_a_g)`` with the
mean specific current the cell passed over that interval (A per g of active material;
positive = charge = delithiation, so θ falls). The camera asks ``theta_at`` for θ on a fixed
grid of offsets around the particle centre (µm, image axes: x to the right, y downwards)
and maps it to scattering intensity I = I0 (1 + κ (θ0 − θ)).

Any object with these three methods fits (e.g. a finite-element particle in
``simulators/fem_particle.py``); pass a factory to ``World(config, particle_factory=...)``.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from operascope.analysis.materials import THEORETICAL_CAPACITY_MAH_G
from operascope.config.schema import ParticleConfig

#: Coulombs per gram per (mAh/g).
_COULOMB_PER_MAH = 3.6


class ParticleLithiation(Protocol):
    """Li occupancy θ (0..1) of one particle driven by the cell current."""

    def advance(self, dt_s: float, specific_current_a_g: float) -> None:
        """Advance by ``dt_s`` virtual seconds at ``specific_current_a_g`` (A/g, + = charge)."""

    def mean_theta(self) -> float:
        """Volume-averaged θ."""

    def theta_at(self, dx_um: np.ndarray, dy_um: np.ndarray) -> np.ndarray:
        """θ at offsets (µm) from the particle centre; same shape as the inputs."""


def theta_rate_per_s(specific_current_a_g: float, theoretical_capacity_mah_g: float = THEORETICAL_CAPACITY_MAH_G) -> float:
    """dθ/dt (1/s) of the particle average for a specific current (A/g); negative on charge."""
    return -specific_current_a_g / (theoretical_capacity_mah_g * _COULOMB_PER_MAH)


class UniformParticle:
    """A particle whose θ is uniform and follows the charge passed (no transport limitation).

    θ changes by −q/Q_th for q mAh/g passed, Q_th = theoretical capacity (≈ 275 mAh/g, so the
    nominal 200 mAh/g corresponds to Δθ ≈ 0.727). θ is kept within [0, 1].
    """

    def __init__(self, initial_theta: float = 0.95, theoretical_capacity_mah_g: float = THEORETICAL_CAPACITY_MAH_G) -> None:
        if not 0.0 <= initial_theta <= 1.0:
            raise ValueError(f"initial_theta must be within [0, 1], got {initial_theta!r}")
        if theoretical_capacity_mah_g <= 0:
            raise ValueError(f"theoretical_capacity_mah_g must be > 0 mAh/g, got {theoretical_capacity_mah_g!r}")
        self._theta = float(initial_theta)
        self._capacity_mah_g = float(theoretical_capacity_mah_g)

    def advance(self, dt_s: float, specific_current_a_g: float) -> None:
        if dt_s < 0:
            raise ValueError(f"dt_s must be >= 0 s, got {dt_s!r}")
        self._theta += theta_rate_per_s(specific_current_a_g, self._capacity_mah_g) * dt_s
        self._theta = min(max(self._theta, 0.0), 1.0)

    def mean_theta(self) -> float:
        return self._theta

    def theta_at(self, dx_um: np.ndarray, dy_um: np.ndarray) -> np.ndarray:
        return np.full(np.broadcast(np.asarray(dx_um), np.asarray(dy_um)).shape, self._theta, dtype=np.float64)


ParticleFactory = Callable[[ParticleConfig, float], "ParticleLithiation"]


def uniform_particle_factory(particle: ParticleConfig, initial_theta: float) -> ParticleLithiation:
    """Default particle model: uniform θ following the charge."""
    return UniformParticle(initial_theta=initial_theta)


def fem_particle_factory(particle: ParticleConfig, initial_theta: float) -> ParticleLithiation:
    """Finite-element particle (simulators/fem_particle.py), imported only when selected."""
    try:
        from operascope.simulators.world.fem_particle import FemParticle
    except ImportError as exc:
        raise ValueError(f"simulation.particle_model = 'fem' needs operascope.simulators.world.fem_particle.FemParticle ({exc}); use 'uniform'") from None
    return FemParticle(
        diameter_um=particle.diameter_um,
        gamma=particle.gamma,
        eta=particle.eta,
        rsl_angle_deg=particle.rsl_angle_deg,
        initial_theta=initial_theta,
    )


#: Particle factories selectable by ``simulation.particle_model``.
PARTICLE_MODELS: dict[str, ParticleFactory] = {"uniform": uniform_particle_factory, "fem": fem_particle_factory}
