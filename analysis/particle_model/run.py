"""Constant-current delithiation of one particle with adaptive implicit-Euler steps, and its outputs.

Outputs per accepted step: time, mean θ, perimeter-mean surface θ, state of charge (charge passed /
nominal 200 mAh/g) and the distance between the centre of mass (COM) of the whole particle and of its
'unreacted' region. With the optical model ΔI/I = κ(θ0 − θ), the paper's "differential intensity
< 0.05" means θ > θ0 − 0.05/κ. Both COMs are taken on a pixel grid (as in the measurement).

The run stops when the mean θ reaches ``target_mean_theta`` (exactly: the last step is shortened)
or when V_oc(surface θ) reaches ``cutoff_voltage_v``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from operascope.analysis.materials import MOLAR_MASS_G_MOL, FARADAY_C_MOL, SPECIFIC_CAPACITY_MAH_G
from operascope.analysis.particle_model.fem import (
    INITIAL_THETA,
    DiffusionStepper,
    DiskFem,
    RockSaltBoundary,
    check_positive,
    facet_flux_um_s,
    mean_theta_rate_per_s,
    specific_current_a_g,
)
from operascope.analysis.particle_model.transport import MaterialFunctions

#: Δθ corresponding to the nominal capacity Q = 200 mAh/g (≈ 0.727).
NOMINAL_THETA_SPAN = SPECIFIC_CAPACITY_MAH_G * 3.6 * MOLAR_MASS_G_MOL / FARADAY_C_MOL


@dataclass(frozen=True)
class RunSettings:
    """Numerics and outputs of a delithiation run.

    ``local_error_tolerance``: allowed implicit-Euler local error per step (max over nodes, in θ).
    ``steps_per_run``: dt_max = (3600/n s)/steps_per_run, so every C-rate gets similar resolution.
    """

    nrefs: int = 4
    initial_theta: float = INITIAL_THETA
    kappa_per_theta: float = 0.25
    unreacted_differential: float = 0.05
    target_mean_theta: float = 0.25
    cutoff_voltage_v: float | None = 4.3
    local_error_tolerance: float = 1e-4
    first_step_s: float = 0.01
    steps_per_run: int = 400
    picard_tolerance: float = 1e-7
    snapshot_every_soc: float = 0.1
    com_pixel_nm: float = 20.0

    def __post_init__(self) -> None:
        if not 0.0 < self.initial_theta <= 1.0:
            raise ValueError(f"initial_theta must be in (0, 1], got {self.initial_theta!r}")
        check_positive("kappa_per_theta", self.kappa_per_theta, "per unit θ")
        check_positive("unreacted_differential", self.unreacted_differential, "(ΔI/I)")
        if not 0.0 <= self.target_mean_theta < self.initial_theta:
            raise ValueError(f"target_mean_theta must be in [0, initial_theta), got {self.target_mean_theta!r}")
        for name in ("local_error_tolerance", "first_step_s", "picard_tolerance", "snapshot_every_soc", "com_pixel_nm"):
            check_positive(name, getattr(self, name), "")
        if not (isinstance(self.steps_per_run, int) and self.steps_per_run >= 10):
            raise ValueError(f"steps_per_run must be an integer >= 10, got {self.steps_per_run!r}")

    @property
    def unreacted_theta(self) -> float:
        """θ above which a point counts as unreacted: θ0 − ΔI_threshold/κ."""
        return self.initial_theta - self.unreacted_differential / self.kappa_per_theta


class ComTracker:
    """COM offset (µm) of the region θ > threshold from the COM of the whole particle, on a pixel grid."""

    def __init__(self, fem: DiskFem, pixel_nm: float) -> None:
        pitch_um = pixel_nm / 1000.0
        half = int(math.ceil(fem.radius_um / pitch_um))
        offsets = np.arange(-half, half + 1) * pitch_um
        x, y = np.meshgrid(offsets, offsets)
        inside = np.hypot(x, y) <= fem.radius_um
        self.x_um, self.y_um = x[inside], y[inside]
        self._probe = fem.probe_matrix(self.x_um, self.y_um)
        self.particle_com_um = np.array([self.x_um.mean(), self.y_um.mean()])

    def offset_um(self, theta: np.ndarray, threshold: float) -> np.ndarray:
        """(dx, dy) in µm; NaN when no pixel is unreacted."""
        unreacted = (self._probe @ theta) > threshold
        if not np.any(unreacted):
            return np.array([np.nan, np.nan])
        return np.array([self.x_um[unreacted].mean(), self.y_um[unreacted].mean()]) - self.particle_com_um


@dataclass
class ModelResult:
    """Series (one entry per accepted step, starting at t = 0) and θ snapshots of one run."""

    c_rate: float
    boundary: RockSaltBoundary
    diameter_um: float
    settings: RunSettings
    mesh_points_um: np.ndarray
    mesh_triangles: np.ndarray
    times_s: list[float] = field(default_factory=list)
    mean_theta: list[float] = field(default_factory=list)
    surface_theta: list[float] = field(default_factory=list)
    com_offset_um: list[np.ndarray] = field(default_factory=list)
    snapshot_times_s: list[float] = field(default_factory=list)
    snapshots: list[np.ndarray] = field(default_factory=list)
    stop_reason: str = ""
    rejected_steps: int = 0
    linear_solves: int = 0

    @property
    def soc(self) -> np.ndarray:
        """Charge passed / nominal capacity (0 at start)."""
        return (self.settings.initial_theta - np.asarray(self.mean_theta)) / NOMINAL_THETA_SPAN

    @property
    def com_distance_nm(self) -> np.ndarray:
        return np.hypot(*np.asarray(self.com_offset_um).T) * 1000.0


def _record(result: ModelResult, fem: DiskFem, com: ComTracker, theta: np.ndarray, t_s: float) -> None:
    result.times_s.append(t_s)
    result.mean_theta.append(fem.mean(theta))
    result.surface_theta.append(fem.surface_mean(theta))
    result.com_offset_um.append(com.offset_um(theta, result.settings.unreacted_theta))


def simulate_delithiation(
    c_rate: float = 1.0,
    boundary: RockSaltBoundary | None = None,
    diameter_um: float = 3.0,
    materials: MaterialFunctions | None = None,
    settings: RunSettings | None = None,
    progress=None,
) -> ModelResult:
    """Constant-current charge at ``c_rate`` (C) from uniform θ0 until the target θ or the cut-off.

    ``progress``: optional callable(fraction 0..1) called after each accepted step.
    """
    check_positive("c_rate", c_rate, "(C)")
    check_positive("diameter_um", diameter_um, "µm")
    boundary = boundary or RockSaltBoundary()
    materials = materials or MaterialFunctions()
    settings = settings or RunSettings()
    fem = DiskFem(diameter_um / 2.0, settings.nrefs)
    stepper = DiffusionStepper(fem, materials, settings.initial_theta, picard_tolerance=settings.picard_tolerance)
    current = specific_current_a_g(c_rate)
    load = fem.boundary_load(facet_flux_um_s(fem, boundary, current))
    mean_rate = -mean_theta_rate_per_s(current)  # > 0, θ per s
    com = ComTracker(fem, settings.com_pixel_nm)
    result = ModelResult(c_rate, boundary, diameter_um, settings, fem.mesh.p.T.copy(), fem.mesh.t.T.copy())

    dt_max = 3600.0 / c_rate / settings.steps_per_run
    dt = min(settings.first_step_s, dt_max)
    tol = settings.local_error_tolerance
    t_s, prev_rate, prev_dt = 0.0, np.zeros(fem.n_nodes), 0.0
    _record(result, fem, com, stepper.theta, t_s)
    result.snapshot_times_s.append(0.0)
    result.snapshots.append(stepper.theta.copy())
    next_snapshot_soc = settings.snapshot_every_soc
    span = settings.initial_theta - settings.target_mean_theta
    while True:
        remaining = (fem.mean(stepper.theta) - settings.target_mean_theta) / mean_rate
        last = dt >= remaining * (1 - 1e-12)
        step_dt = remaining if last else dt
        old = stepper.theta.copy()
        new = stepper.step(step_dt, load)
        rate = (new - old) / step_dt
        error = step_dt**2 * float(np.max(np.abs(rate - prev_rate))) / (step_dt + prev_dt)
        if error > 2.0 * tol and step_dt > 1e-6:
            stepper.theta = old
            result.rejected_steps += 1
            dt = step_dt * max(0.2, 0.9 * math.sqrt(tol / error))
            continue
        t_s += step_dt
        prev_rate, prev_dt = rate, step_dt
        _record(result, fem, com, new, t_s)
        soc = result.soc[-1]
        surface_v = float(materials.ocv_v(result.surface_theta[-1]))
        if last:
            result.stop_reason = "target_mean_theta"
        elif settings.cutoff_voltage_v is not None and surface_v >= settings.cutoff_voltage_v:
            result.stop_reason = "cutoff_voltage"
        if soc >= next_snapshot_soc - 1e-12 or result.stop_reason:
            result.snapshot_times_s.append(t_s)
            result.snapshots.append(new.copy())
            while next_snapshot_soc <= soc + 1e-12:
                next_snapshot_soc += settings.snapshot_every_soc
        if progress is not None:
            progress(min(1.0, (settings.initial_theta - result.mean_theta[-1]) / span))
        if result.stop_reason:
            break
        factor = 2.0 if error == 0 else min(2.0, max(0.5, 0.9 * math.sqrt(tol / error)))
        dt = min(dt_max, step_dt * factor)
    result.linear_solves = stepper.solves
    return result
