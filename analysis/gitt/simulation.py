"""Reference GITT simulator with a known D, for validating the GITT analyses.

Spherical particles of radius R = 3 V/S (V/S from the BET area) with constant D, solved on a fine
uniform vertex-centred radial grid with implicit Euler time steps (a discretisation deliberately
different from the eigenmode model in :mod:`operascope.analysis.gitt.model_fit`). The voltage is the nonlinear
OCV of the surface occupancy plus an ohmic drop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

from operascope.analysis.materials import FARADAY_C_MOL, ocv_chen2020


@dataclass(frozen=True)
class SimulatedGitt:
    """Sampled titration: time (s), voltage (V), current (A, + = charge), protocol step index."""

    time_s: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray
    step: np.ndarray
    theta_mean: np.ndarray
    radius_m: float


def _sphere_operators(n_nodes: int) -> tuple[np.ndarray, sparse.csc_matrix]:
    """Control volumes and stiffness of the unit sphere on uniform nodes r_i = i/(n-1)."""
    h = 1.0 / (n_nodes - 1)
    r = np.linspace(0.0, 1.0, n_nodes)
    upper = np.minimum(r + h / 2, 1.0)
    lower = np.maximum(r - h / 2, 0.0)
    volumes = (upper**3 - lower**3) / 3.0
    faces = (r[:-1] + h / 2) ** 2 / h
    main = np.zeros(n_nodes)
    main[:-1] += faces
    main[1:] += faces
    stiffness = sparse.diags([main, -faces, -faces], [0, 1, -1], format="csc")
    return volumes, stiffness


def particle_radius_m(bet_m2_g: float, molar_mass_g_mol: float, molar_volume_cm3_mol: float) -> float:
    """Equivalent sphere radius R = 3 V/S = 3 V_m / (M S_BET) in m (1.05 µm for the defaults)."""
    return 3.0 * molar_volume_cm3_mol * 1e-6 / (molar_mass_g_mol * bet_m2_g)


def simulate_gitt(
    d_m2_s: float,
    current_a: float,
    active_mass_g: float,
    n_pulses: int = 3,
    pulse_s: float = 900.0,
    rest_s: float = 14400.0,
    initial_rest_s: float = 600.0,
    theta_start: float = 0.9,
    series_resistance_ohm: float = 5.0,
    bet_m2_g: float = 0.6,
    molar_mass_g_mol: float = 97.46,
    molar_volume_cm3_mol: float = 20.39,
    sample_s: float = 1.0,
    step_s: float = 0.25,
    n_nodes: int = 401,
    ocv: Callable[[np.ndarray], np.ndarray] = ocv_chen2020,
) -> SimulatedGitt:
    """Simulate an initial rest then ``n_pulses`` x (constant-current pulse, rest).

    Positive ``current_a`` charges (removes Li). Time steps are ``step_s`` during pulses and the
    first 60 s of each rest, then coarser; the solution is interpolated onto a ``sample_s`` grid.
    """
    if d_m2_s <= 0 or active_mass_g <= 0 or n_pulses < 1 or pulse_s <= 0 or rest_s <= 0 or sample_s <= 0:
        raise ValueError("d_m2_s, active_mass_g, n_pulses, pulse_s, rest_s and sample_s must be positive")
    if n_nodes < 20 or step_s <= 0:
        raise ValueError(f"n_nodes must be >= 20 and step_s > 0, got {n_nodes}, {step_s}")
    radius = particle_radius_m(bet_m2_g, molar_mass_g_mol, molar_volume_cm3_mol)
    rate = d_m2_s / radius**2
    flux = current_a / (FARADAY_C_MOL * active_mass_g * bet_m2_g)
    q_pulse = -flux * molar_volume_cm3_mol * 1e-6 / radius
    volumes, stiffness = _sphere_operators(n_nodes)
    mass_matrix = sparse.diags(volumes, format="csc")
    solvers: dict[float, object] = {}

    def solver(dt: float):
        if dt not in solvers:
            solvers[dt] = splu((mass_matrix + dt * rate * stiffness).tocsc())
        return solvers[dt]

    # Phases: (duration, current, step index).
    phases = [(initial_rest_s, 0.0, 0)]
    for k in range(n_pulses):
        phases += [(pulse_s, current_a, 2 * k + 1), (rest_s, 0.0, 2 * k + 2)]
    theta = np.full(n_nodes, float(theta_start))
    times, surface, mean = [0.0], [theta[-1]], [theta_start]
    t = 0.0
    for duration, current, _step in phases:
        q = q_pulse if current else 0.0
        elapsed = 0.0
        while elapsed < duration - 1e-9:
            if current or elapsed < 60.0:
                dt = step_s
            elif elapsed < 600.0:
                dt = 10 * step_s
            else:
                dt = 100 * step_s
            dt = min(dt, duration - elapsed)
            rhs = volumes * theta
            rhs[-1] += dt * q
            theta = solver(round(dt, 12)).solve(rhs)
            elapsed += dt
            t += dt
            times.append(t)
            surface.append(theta[-1])
            mean.append(float(np.sum(volumes * theta) * 3.0))
    times_arr = np.array(times)
    samples = np.arange(0.0, times_arr[-1] + 1e-9, sample_s)
    theta_s = np.interp(samples, times_arr, surface)
    theta_m = np.interp(samples, times_arr, mean)
    boundaries = np.cumsum([p[0] for p in phases])
    phase_index = np.searchsorted(boundaries, samples + 1e-9, side="right").clip(0, len(phases) - 1)
    current_samples = np.array([phases[k][1] for k in phase_index])
    step_samples = np.array([phases[k][2] for k in phase_index])
    voltage = np.asarray(ocv(theta_s), dtype=float) + series_resistance_ohm * current_samples
    return SimulatedGitt(samples, voltage, current_samples, step_samples, theta_m, radius)
