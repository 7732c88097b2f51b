"""Model-based GITT: fit a spherical-diffusion model to each pulse (and the rest after it) for D.

Model: Li diffuses in spheres of radius R = 3 V/S (the same V/S as the Weppner–Huggins equation)
with a constant D; the current I(t) leaves through the surface as a uniform flux I/(F S).
The cell voltage is::

    V(t) = E0 + U' * (theta_surface(t) - theta_0) + U''/2 * (theta_surface(t) - theta_0)^2 + R_s * I(t)

with the local OCV slope U' (V per unit occupancy), series resistance R_s (ohm) and E0 fitted
linearly for each trial D, and the OCV curvature U'' (V per unit occupancy², default 0) given by the
caller from neighbouring relaxed potentials (:func:`ocv_curvature_v`), since a linear OCV biases D on
a curved OCV by ~10 %; and D found by a 1-D search on log D (variable projection).
theta_surface comes from a finite-volume discretisation of the sphere (shells refined towards the
surface) solved exactly in time through its eigenmodes, so any sampling is handled without time
stepping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh
from scipy.optimize import minimize_scalar

from operascope.analysis.gitt.pulses import GittSegment
from operascope.analysis.materials import FARADAY_C_MOL


@dataclass(frozen=True)
class SphereModes:
    """Eigenmodes of the discretised unit sphere: rates lambda_m and surface weights w_m."""

    eigenvalues: np.ndarray     # lambda_m (dimensionless; decay rate = lambda_m D / R^2)
    surface_weights: np.ndarray  # phi_m(surface shell)^2


def sphere_modes(n_shells: int = 48, refinement_power: float = 2.0) -> SphereModes:
    """Modes of a finite-volume unit sphere with ``n_shells`` shells, thinner near the surface."""
    if n_shells < 4:
        raise ValueError(f"n_shells must be >= 4, got {n_shells}")
    u = np.linspace(0.0, 1.0, n_shells + 1)
    edges = 1.0 - (1.0 - u) ** refinement_power
    centres = 0.5 * (edges[1:] + edges[:-1])
    volumes = (edges[1:] ** 3 - edges[:-1] ** 3) / 3.0
    conductance = edges[1:-1] ** 2 / np.diff(centres)
    stiffness = np.zeros((n_shells, n_shells))
    idx = np.arange(n_shells - 1)
    stiffness[idx, idx] += conductance
    stiffness[idx + 1, idx + 1] += conductance
    stiffness[idx, idx + 1] -= conductance
    stiffness[idx + 1, idx] -= conductance
    values, vectors = eigh(stiffness, np.diag(volumes))
    values = np.maximum(values, 0.0)
    values[0] = 0.0
    return SphereModes(values, vectors[-1, :] ** 2)


def surface_step_response(modes: SphereModes, rate_per_s: float, t_s: np.ndarray) -> np.ndarray:
    """Surface occupancy after a unit input step at t = 0 (zero for t < 0); rate = D/R² (1/s)."""
    t = np.maximum(np.asarray(t_s, dtype=float), 0.0)
    kl = rate_per_s * modes.eigenvalues[1:, None]
    transient = (modes.surface_weights[1:, None] * (-np.expm1(-kl * t[None, :])) / kl).sum(axis=0)
    return modes.surface_weights[0] * t + transient


@dataclass(frozen=True)
class ModelFit:
    """Diffusion-model fit of one pulse."""

    d_m2_s: float
    series_resistance_ohm: float
    ocv_slope_v: float           # U' (V per unit occupancy)
    e0_v: float
    rms_residual_v: float
    n_points: int
    at_bound: bool               # D hit the search bound: not determined by the data

    @property
    def d_cm2_s(self) -> float:
        """D in cm²/s."""
        return self.d_m2_s * 1e4


def _thin_indices(t_from_end: np.ndarray, max_points: int) -> np.ndarray:
    """Indices keeping about ``max_points`` samples, log-spaced in time (dense early)."""
    if t_from_end.size <= max_points:
        return np.arange(t_from_end.size)
    targets = np.geomspace(max(t_from_end[1] if t_from_end.size > 1 else 1.0, 1e-3), t_from_end[-1], max_points)
    idx = np.unique(np.searchsorted(t_from_end, targets).clip(0, t_from_end.size - 1))
    return np.union1d(idx, [0])


def fit_pulse_model(
    segment: GittSegment,
    time_s: np.ndarray,
    voltage_v: np.ndarray,
    current_a: np.ndarray,
    radius_m: float,
    surface_area_m2: float,
    molar_volume_m3_mol: float,
    modes: SphereModes | None = None,
    d_bounds_m2_s: tuple[float, float] = (1e-20, 1e-10),
    max_points_per_phase: int = 300,
    ocv_curvature_v: float = 0.0,
) -> ModelFit:
    """Fit D (and U', R_s, E0) of the spherical-diffusion model to one pulse and the rest after it.

    ``radius_m`` = 3 V/S; ``surface_area_m2`` = active mass x BET area. The end of the previous
    rest anchors E0; the particle is assumed relaxed (uniform) at the pulse start.
    """
    if radius_m <= 0 or surface_area_m2 <= 0 or molar_volume_m3_mol <= 0:
        raise ValueError("radius_m, surface_area_m2 and molar_volume_m3_mol must be > 0")
    lo, hi = d_bounds_m2_s
    if not (0 < lo < hi):
        raise ValueError(f"d_bounds_m2_s must satisfy 0 < low < high, got {d_bounds_m2_s}")
    modes = modes or sphere_modes()
    t = np.asarray(time_s, dtype=float)
    v = np.asarray(voltage_v, dtype=float)
    i = np.asarray(current_a, dtype=float)
    b0, b1 = segment.rest_before
    p0, p1 = segment.pulse
    a0, a1 = segment.rest_after
    t_on = t[p0]
    t_off = t[a0]
    current = float(np.mean(i[p0:p1]))
    before = np.arange(b0, b1)
    before = before[t[before] >= t[b1 - 1] - max(60.0, 0.05 * (t[b1 - 1] - t[b0]))]
    pulse = np.arange(p0, p1)[_thin_indices(t[p0:p1] - t_on, max_points_per_phase)]
    after = np.arange(a0, a1)[_thin_indices(t[a0:a1] - t_off, max_points_per_phase)]
    sel = np.concatenate([before, pulse, after])
    ts, vs, is_ = t[sel], v[sel], i[sel]
    # Input q = -J / (N_L R): occupancy rate of the surface shell per unit volume fraction.
    flux_mol_m2_s = current / (FARADAY_C_MOL * surface_area_m2)
    q = -flux_mol_m2_s * molar_volume_m3_mol / radius_m

    def response(rate: float) -> np.ndarray:
        return q * (surface_step_response(modes, rate, ts - t_on) - surface_step_response(modes, rate, ts - t_off))

    def design(rate: float) -> tuple[np.ndarray, np.ndarray]:
        r = response(rate)
        return np.column_stack([np.ones_like(ts), r, is_]), vs - 0.5 * ocv_curvature_v * r**2

    def residual_norm(log_rate: float) -> float:
        a, target = design(10.0**log_rate)
        coef, *_ = np.linalg.lstsq(a, target, rcond=None)
        return float(np.sum((target - a @ coef) ** 2))

    r2 = radius_m**2
    log_lo, log_hi = math.log10(lo / r2), math.log10(hi / r2)
    grid = np.linspace(log_lo, log_hi, 41)
    costs = np.array([residual_norm(g) for g in grid])
    best = int(np.argmin(costs))
    left, right = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    result = minimize_scalar(residual_norm, bounds=(left, right), method="bounded", options={"xatol": 1e-4})
    log_rate = float(result.x) if result.fun <= costs[best] else float(grid[best])
    a, target = design(10.0**log_rate)
    coef, *_ = np.linalg.lstsq(a, target, rcond=None)
    rms = float(np.sqrt(np.mean((target - a @ coef) ** 2)))
    at_bound = best in (0, grid.size - 1)
    return ModelFit(
        d_m2_s=10.0**log_rate * r2, series_resistance_ohm=float(coef[2]), ocv_slope_v=float(coef[1]),
        e0_v=float(coef[0]), rms_residual_v=rms, n_points=int(sel.size), at_bound=bool(at_bound),
    )


def ocv_curvature_v(occupancy: np.ndarray, relaxed_v: np.ndarray, index: int) -> float:
    """U'' (V per unit occupancy²) at relaxed point ``index`` from a parabola through it and its neighbours.

    ``occupancy`` and ``relaxed_v`` are the relaxed states between pulses (before the first pulse,
    after each pulse). Uses the points index-1..index+2 that exist (3 or 4); 0 with fewer than 3.
    """
    occ = np.asarray(occupancy, dtype=float)
    volt = np.asarray(relaxed_v, dtype=float)
    sel = np.arange(max(index - 1, 0), min(index + 3, occ.size))
    sel = sel[np.isfinite(occ[sel]) & np.isfinite(volt[sel])]
    if sel.size < 3 or np.ptp(occ[sel]) <= 0:
        return 0.0
    return float(2.0 * np.polyfit(occ[sel], volt[sel], 2)[0])
