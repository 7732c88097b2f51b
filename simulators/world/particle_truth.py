"""Each particle's true reaction state, as the analysis measures it (simulated rigs only).

The analysis calls a pixel of a particle "unreacted" while its ΔI/I is below ``threshold`` (0.05 by
default); the simulated intensity changes by ``contrast_per_theta`` per unit of Li removed, so the
true unreacted region is the particle's disk where θ > θ0 − threshold / contrast_per_theta. The front
COM is the distance between that region's centre of mass and the disk's, on the rendering grid
(one camera pixel), in nm. A particle with no unreacted pixel left has a NaN COM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

#: ΔI/I below which the analysis calls a pixel unreacted (``operascope analyze`` default).
DEFAULT_UNREACTED_THRESHOLD = 0.05


@dataclass(frozen=True)
class ParticleFrontTruth:
    """One particle now: mean occupancy, its state of charge, unreacted fraction, front COM (nm)."""

    theta: float
    soc: float
    unreacted_fraction: float
    com_distance_nm: float


def front_truth(particle: Any, diameter_um: float, pixel_size_nm: float, initial_theta: float,
                contrast_per_theta: float, soc_per_theta: float,
                threshold: float = DEFAULT_UNREACTED_THRESHOLD) -> ParticleFrontTruth:
    """The state of ``particle`` (a ParticleLithiation) on its pixel grid. ``soc_per_theta``: SOC per unit
    of θ removed (theoretical / nominal specific capacity)."""
    half = int(math.ceil(diameter_um * 500.0 / pixel_size_nm)) + 2
    offsets_um = np.arange(-half, half + 1) * (pixel_size_nm / 1000.0)
    dx, dy = np.meshgrid(offsets_um, offsets_um)
    inside = dx**2 + dy**2 <= (diameter_um / 2.0) ** 2
    theta = np.asarray(particle.theta_at(dx, dy), dtype=float)
    mean = float(particle.mean_theta())
    if contrast_per_theta > 0:
        unreacted = inside & (theta > initial_theta - threshold / contrast_per_theta)
    else:
        unreacted = np.zeros_like(inside)
    fraction = float(unreacted[inside].mean()) if inside.any() else float("nan")
    if unreacted.any():
        com_nm = math.hypot(dx[unreacted].mean() - dx[inside].mean(), dy[unreacted].mean() - dy[inside].mean()) * 1e3
    else:
        com_nm = float("nan")
    return ParticleFrontTruth(mean, (initial_theta - mean) * soc_per_theta, fraction, com_nm)


def front_truth_columns(states: Sequence[ParticleFrontTruth | None], n_particles: int) -> dict[str, list[float]]:
    """Per-particle columns (width ``n_particles``, NaN where ``states[i]`` is None) for the run file."""
    columns: dict[str, list[float]] = {"particle_theta": [], "particle_soc": [], "particle_unreacted_fraction": [],
                                       "particle_com_distance_nm": []}
    for k in range(n_particles):
        s = states[k] if k < len(states) else None
        for name, value in zip(columns, (s.theta, s.soc, s.unreacted_fraction, s.com_distance_nm) if s else
                               (math.nan,) * 4):
            columns[name].append(float(value))
    return columns
