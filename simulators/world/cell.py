"""Half-cell model behind the simulated potentiostat.

One representative spherical particle (radius ~1 µm, the BET-equivalent sphere) carries the
electrode: Li occupancy θ(r) obeys ∂θ/∂t = (1/r²) ∂/∂r (r² D(θ) ∂θ/∂r), with D from
:func:`operascope.analysis.materials.diffusivity_oregan2022` and a uniform surface flux set by the current
(the mean falls at I/(m·Q_th), Q_th = theoretical capacity). Finite volumes on radial shells,
implicit Euler with D lagged one step, one tridiagonal solve per step.

Terminal voltage V = OCV(θ_surface) + E_edge(θ_surface) + I·R (OCV from Chen2020, R the series
resistance), so a current pulse shows an IR step plus a √t diffusion transient, and a rest relaxes
toward OCV(θ_mean). Positive current charges (delithiates): θ falls, V rises.

The Chen2020 fit is flat beyond its fitted range (OCV(1) = 3.49 V), so on its own a discharge never
meets a 3.0 V cut-off and θ runs past 1. E_edge models the end of the host lattice: zero inside
[EDGE_WIDTH, θ_max − EDGE_WIDTH], then −EDGE_SCALE_V·u/(1−u) as the surface fills
(u = (θ_s − θ_max + EDGE_WIDTH)/EDGE_WIDTH), diverging at θ_max, and the mirror image
towards θ = 0. So the voltage meets any lower cut-off just before the surface is full, the
mean θ (below the surface θ during lithiation) stays within [0, θ_max], and at high rates the
discharge ends early (coulombic efficiency below 100 %), as in a real diffusion-limited cell.
θ_max (``max_theta``) is the occupancy where E_edge diverges; the World sets it to the pristine θ
plus EDGE_WIDTH, so a run's charge count never goes more than ~0.5 % of capacity below zero.
A step that would carry the voltage past a constant-current cut-off by more than
LIMIT_TOLERANCE_V is retried with half the step, so the cut-off is met, not jumped over.

The cell runs one technique at a time (OCV rest, constant current with a voltage cut-off,
constant voltage with a current limit). It steps on its own schedule — adaptive steps that are
short right after a current change and never cross a recording time — so results do not
depend on how often it is polled. Points are recorded every ``record_every_s`` of virtual time.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.linalg.lapack import dgtsv

from operascope.analysis.materials import THEORETICAL_CAPACITY_MAH_G, diffusivity_oregan2022, ocv_chen2020
from operascope.devices.base import OCV, ConstantCurrent, ConstantVoltage, EchemPoint, EndReason, Technique

log = logging.getLogger(__name__)

_COULOMB_PER_MAH = 3.6
#: Shortest and longest internal step (virtual s).
MIN_STEP_S = 1e-3
#: Fraction of the time since the last current change used as the next step.
STEP_GROWTH = 0.1
#: Points of the D(θ) lookup table on [0.01, 1] (linear interpolation between them).
DIFFUSIVITY_TABLE_POINTS = 8001
#: θ span over which the lattice-edge voltage E_edge rises from 0 to ±∞ (see module docstring).
EDGE_WIDTH = 0.005
#: Scale of E_edge (V): −0.1 V at u = 0.83, −0.5 V at u = 0.96.
EDGE_SCALE_V = 0.02
#: |E_edge| is capped here (V): far beyond any cut-off, finite for the Newton solve.
EDGE_CAP_V = 5.0
#: A constant-current step may overshoot its voltage cut-off by at most this (V) before it is halved.
LIMIT_TOLERANCE_V = 0.002
#: Points kept for read_new (oldest dropped beyond this).
MAX_BUFFERED_POINTS = 200_000

StepCallback = Callable[[float, float], None]


@dataclass(frozen=True)
class CellState:
    """Snapshot of the cell."""

    time_s: float
    voltage_v: float
    current_a: float
    mean_theta: float
    surface_theta: float
    charge_mah_g: float


class SphericalDiffusionCell:
    """Diffusion-limited half cell with OCV(θ_surface) + I·R terminal voltage.

    Units: radius µm, mass g, resistance Ω, currents A, capacities mAh/g, times virtual s.
    """

    def __init__(
        self,
        active_mass_g: float,
        initial_theta: float = 0.95,
        radius_um: float = 1.0,
        n_shells: int = 40,
        resistance_ohm: float = 50.0,
        theoretical_capacity_mah_g: float = THEORETICAL_CAPACITY_MAH_G,
        max_step_s: float = 1.0,
        max_current_a: float = 0.1,
        diffusivity_m2_s: Callable[[np.ndarray], np.ndarray] = diffusivity_oregan2022,
        ocv_v: Callable[[np.ndarray | float], np.ndarray | float] = ocv_chen2020,
        max_theta: float = 1.0,
    ) -> None:
        if active_mass_g <= 0:
            raise ValueError(f"active_mass_g must be > 0 g, got {active_mass_g!r}")
        if not 0 < initial_theta <= 1:
            raise ValueError(f"initial_theta must be within (0, 1], got {initial_theta!r}")
        if not 2 * EDGE_WIDTH < max_theta <= 1 or initial_theta > max_theta:
            raise ValueError(f"max_theta must be within ({2 * EDGE_WIDTH}, 1] and >= initial_theta, got {max_theta!r}")
        if radius_um <= 0 or n_shells < 3:
            raise ValueError(f"radius_um must be > 0 and n_shells >= 3, got {radius_um!r}, {n_shells!r}")
        self.active_mass_g = float(active_mass_g)
        self.resistance_ohm = float(resistance_ohm)
        self.capacity_c_g = float(theoretical_capacity_mah_g) * _COULOMB_PER_MAH
        self.max_step_s = float(max_step_s)
        self.max_current_a = float(max_current_a)
        # D(θ) is tabulated once: the step needs it on every face, every step
        self._d_table_theta = np.linspace(0.01, 1.0, DIFFUSIVITY_TABLE_POINTS)
        self._d_table_m2_s = np.asarray(diffusivity_m2_s(self._d_table_theta), dtype=float)
        self._ocv = ocv_v
        self.initial_theta = float(initial_theta)
        self.max_theta = float(max_theta)
        radius_m = radius_um * 1e-6
        edges = np.linspace(0.0, radius_m, n_shells + 1)
        self._dr_m = radius_m / n_shells
        self._volume = (edges[1:] ** 3 - edges[:-1] ** 3) / 3.0  # per steradian, m^3
        self._area = edges[1:-1] ** 2  # inner faces, m^2 per steradian
        self._radius_m = radius_m
        #: θ units per second leaving the surface shell per unit θ-rate of the mean.
        self._flux_scale = (radius_m**3 / 3.0) / self._volume[-1]
        self.theta = np.full(n_shells, self.initial_theta)
        self.time_s = 0.0
        self.current_a = 0.0
        self.charge_c = 0.0
        self._last_change_s = 0.0
        # technique state
        self._technique: Technique | None = None
        self._technique_start_s = 0.0
        self._next_record_s = math.inf
        self._record_index = 0
        self._step_tag = 0
        self._cycle_tag = 0
        self._end_reason: EndReason = "stopped"
        self._points: deque[EchemPoint] = deque(maxlen=MAX_BUFFERED_POINTS)
        #: Fault hook ``limit_ignored(t_s) -> bool``: True = the channel's own voltage/current limit
        #: fails at virtual time t_s (the technique runs on past it). None = limits always work.
        self.limit_ignored: Callable[[float], bool] | None = None
        #: While a protocol runs its steps back to back (set by the channel), hold at a technique's own end
        #: (duration or limit) until the next ``start``/``stop``: the next step starts exactly where the last
        #: ended, whenever the request comes (an instrument running a technique sequence).
        self.hold_after_end = False
        self.holding = False
        self._wall_clock: Callable[[], float] = lambda: 0.0
        self._max_hold_wall_s = math.inf
        self._hold_began_wall_s = 0.0

    # ------------------------------------------------------------------ physics

    def _diffusivity(self, theta: np.ndarray | float) -> np.ndarray | float:
        """D (m²/s) at θ from the lookup table (θ clipped to [0.01, 1])."""
        return np.interp(theta, self._d_table_theta, self._d_table_m2_s)

    def _tridiagonal(self, dt_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lower, diagonal, upper) of the implicit-Euler matrix for the current θ (D lagged)."""
        theta_face = 0.5 * (self.theta[1:] + self.theta[:-1])
        conductance = self._area * self._diffusivity(theta_face) / self._dr_m  # per face
        coef = dt_s / self._volume
        diag = np.ones(self.theta.size)
        diag[:-1] += coef[:-1] * conductance
        diag[1:] += coef[1:] * conductance
        return -coef[1:] * conductance, diag, -coef[:-1] * conductance

    def _theta_rate_per_a(self) -> float:
        """dθ_mean/dt per ampere (1/(A·s)), negative: charge removes Li."""
        return -1.0 / (self.active_mass_g * self.capacity_c_g)

    def _surface_theta(self, theta: np.ndarray, current_a: float) -> float:
        """θ at r = R: outer shell value extrapolated with the imposed surface gradient."""
        d_surface = float(self._diffusivity(theta[-1]))
        # outward flux (θ·m/s) J = (R/3)·(−dθ_mean/dt); surface gradient dθ/dr = −J/D
        outward_flux = (self._radius_m / 3.0) * (-self._theta_rate_per_a() * current_a)
        return float(theta[-1] - outward_flux * (0.5 * self._dr_m) / d_surface)

    def _solve_step(self, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
        """θ after dt at zero current, and its change per ampere (both arrays)."""
        lower, diag, upper = self._tridiagonal(dt_s)
        rhs = np.zeros((self.theta.size, 2))
        rhs[:, 0] = self.theta
        rhs[-1, 1] = self._theta_rate_per_a() * self._flux_scale * dt_s
        sol = dgtsv(lower, diag, upper, rhs)[3]
        return sol[:, 0], sol[:, 1]

    def edge_voltage_v(self, surface_theta: float) -> float:
        """E_edge (V) at a surface occupancy: the lattice filling (θ → θ_max) or emptying (θ → 0)."""
        full = (surface_theta - (self.max_theta - EDGE_WIDTH)) / EDGE_WIDTH
        empty = (EDGE_WIDTH - surface_theta) / EDGE_WIDTH
        if full > 0:
            return -EDGE_CAP_V if full >= 1 else max(-EDGE_SCALE_V * full / (1.0 - full), -EDGE_CAP_V)
        if empty > 0:
            return EDGE_CAP_V if empty >= 1 else min(EDGE_SCALE_V * empty / (1.0 - empty), EDGE_CAP_V)
        return 0.0

    def voltage_at(self, theta: np.ndarray, current_a: float) -> float:
        """Terminal voltage (V) for a θ profile and current."""
        surface = self._surface_theta(theta, current_a)
        ocv = float(self._ocv(min(max(surface, 0.0), 1.0)))
        return ocv + self.edge_voltage_v(surface) + current_a * self.resistance_ohm

    def _current_for_voltage(self, base: np.ndarray, per_amp: np.ndarray, voltage_v: float, guess_a: float) -> float:
        """Current (A) that gives ``voltage_v`` after this step (Newton on a scalar)."""
        current = guess_a
        for _ in range(30):
            v = self.voltage_at(base + per_amp * current, current)
            h = max(1e-9, abs(current) * 1e-4)
            dv = (self.voltage_at(base + per_amp * (current + h), current + h) - v) / h
            if dv <= 0:
                break
            step = (v - voltage_v) / dv
            current = min(max(current - step, -self.max_current_a), self.max_current_a)
            if abs(step) < 1e-12 + 1e-9 * abs(current):
                break
        return current

    # ------------------------------------------------------------------ techniques

    def start(self, technique: Technique, step: int = 0, cycle: int = 0) -> None:
        """Begin a technique now (at ``self.time_s``; the end of the last technique while holding);
        records a first point at once."""
        self.holding = False
        self._technique = technique
        self._technique_start_s = self.time_s
        self._step_tag, self._cycle_tag = int(step), int(cycle)
        self._end_reason = "running"
        self._record_index = 0
        self._next_record_s = self.time_s
        new_current = self._initial_current(technique)
        self._set_current(new_current)
        self._record(self.time_s)

    def _initial_current(self, technique: Technique) -> float:
        if isinstance(technique, ConstantCurrent):
            return float(technique.current_a)
        if isinstance(technique, ConstantVoltage):
            base, per_amp = self.theta, np.zeros_like(self.theta)
            return self._current_for_voltage(base, per_amp, technique.voltage_v, 0.0)
        return 0.0

    def stop(self, reason: EndReason = "stopped") -> None:
        """End the technique (if any); the cell rests at zero current."""
        self.holding = False
        if self._technique is not None:
            self._technique = None
            self._end_reason = reason
        self._set_current(0.0)

    def _set_current(self, current_a: float) -> None:
        if current_a != self.current_a:
            self._last_change_s = self.time_s
        self.current_a = current_a

    def bound_holds(self, wall_clock: Callable[[], float], max_hold_wall_s: float) -> None:
        """A hold longer than ``max_hold_wall_s`` of ``wall_clock`` ends by itself (no next step is
        coming: the cell rests on from the technique's end)."""
        self._wall_clock = wall_clock
        self._max_hold_wall_s = float(max_hold_wall_s)

    def chain_steps(self, enabled: bool) -> None:
        """Set :attr:`hold_after_end`; turning it off lets a held cell rest on."""
        self.hold_after_end = bool(enabled)
        if not enabled:
            self.holding = False

    @property
    def technique_start_s(self) -> float:
        """Virtual time the running (or last) technique started."""
        return self._technique_start_s

    @property
    def is_running(self) -> bool:
        return self._technique is not None

    @property
    def end_reason(self) -> EndReason:
        return "running" if self._technique is not None else self._end_reason

    def take_points(self) -> list[EchemPoint]:
        """Points recorded since the last call."""
        points = list(self._points)
        self._points.clear()
        return points

    def _record(self, t_s: float) -> None:
        self._points.append(
            EchemPoint(
                time_s=t_s,
                voltage_v=self.voltage_at(self.theta, self.current_a),
                current_a=self.current_a,
                step=self._step_tag,
                cycle=self._cycle_tag,
            )
        )
        if self._technique is not None:
            self._record_index += 1
            self._next_record_s = self._technique_start_s + self._record_index * self._technique.record_every_s

    # ------------------------------------------------------------------ time stepping

    def _next_step_s(self, until_s: float) -> float:
        since_change = self.time_s - self._last_change_s
        dt = min(self.max_step_s, max(MIN_STEP_S, STEP_GROWTH * since_change))
        if self._technique is not None:
            dt = min(dt, self._next_record_s - self.time_s, self._technique_start_s + self._technique.duration_s - self.time_s)
        return max(min(dt, until_s - self.time_s), 0.0)

    def advance_to(self, t_s: float, exact: bool = False, on_step: StepCallback | None = None) -> None:
        """Step the model up to virtual time ``t_s``.

        Only whole internal steps are taken unless ``exact`` (then the last step ends at ``t_s``).
        ``on_step(dt_s, current_a)`` is called after every step (the World feeds the particles).
        Nothing moves while :attr:`holding`.
        """
        if self.holding and self._wall_clock() - self._hold_began_wall_s > self._max_hold_wall_s:
            log.info("no next technique %.1f s (wall) after the last one ended; the cell rests on",
                     self._max_hold_wall_s)
            self.holding = False
        while not self.holding and self.time_s < t_s - 1e-12:
            dt = self._next_step_s(t_s)
            if dt <= 1e-12:
                # only happens when a record/end time equals now
                self._handle_boundaries()
                if self._next_step_s(t_s) <= 1e-12:
                    break
                continue
            natural = self._next_step_s(math.inf)
            if not exact and dt < natural - 1e-12:
                break
            dt = self._step_within_limit(dt)
            if on_step is not None:
                on_step(dt, self.current_a)
            self._handle_boundaries()

    def _beyond_cc_limit_v(self) -> float:
        """How far (V) the voltage now is past the running constant-current cut-off (≤ 0: not past)."""
        technique = self._technique
        if not isinstance(technique, ConstantCurrent):
            return -math.inf
        voltage = self.voltage_at(self.theta, self.current_a)
        return voltage - technique.v_limit_v if technique.current_a >= 0 else technique.v_limit_v - voltage

    def _step_within_limit(self, dt_s: float) -> float:
        """Take one step of at most ``dt_s``, halved while it overshoots a CC cut-off; returns the step taken."""
        if self._beyond_cc_limit_v() > 0:  # already past (e.g. limit fault): no refinement
            self._step(dt_s)
            return dt_s
        saved = (self.theta.copy(), self.charge_c, self.time_s, self.current_a)
        while True:
            self._step(dt_s)
            if dt_s <= MIN_STEP_S or self._beyond_cc_limit_v() <= LIMIT_TOLERANCE_V:
                return dt_s
            self.theta, self.charge_c, self.time_s, self.current_a = saved[0].copy(), saved[1], saved[2], saved[3]
            dt_s = max(0.5 * dt_s, MIN_STEP_S)

    def _step(self, dt_s: float) -> None:
        base, per_amp = self._solve_step(dt_s)
        technique = self._technique
        current = self.current_a
        if isinstance(technique, ConstantVoltage):
            current = self._current_for_voltage(base, per_amp, technique.voltage_v, current)
            self.current_a = current
        self.theta = base + per_amp * current
        self.charge_c += current * dt_s
        self.time_s += dt_s

    def _handle_boundaries(self) -> None:
        technique = self._technique
        if technique is None:
            return
        now = self.time_s
        voltage = self.voltage_at(self.theta, self.current_a)
        end: EndReason | None = None
        if isinstance(technique, ConstantCurrent):
            charging = technique.current_a >= 0
            if (charging and voltage >= technique.v_limit_v) or (not charging and voltage <= technique.v_limit_v):
                end = "limit"
        elif isinstance(technique, ConstantVoltage):
            if now > self._technique_start_s and abs(self.current_a) < technique.i_limit_a:
                end = "limit"
        if end == "limit" and self.limit_ignored is not None and self.limit_ignored(now):
            end = None
        if end is None and now >= self._technique_start_s + technique.duration_s - 1e-9:
            end = "duration"
        if end is not None:
            self._record(now)
            self._technique = None
            self._end_reason = end
            self._set_current(0.0)
            self.holding = self.hold_after_end
            self._hold_began_wall_s = self._wall_clock()
            return
        if now >= self._next_record_s - 1e-9:
            self._record(now)

    # ------------------------------------------------------------------ read-outs

    def state(self) -> CellState:
        """Snapshot at the model's current time."""
        return CellState(
            time_s=self.time_s,
            voltage_v=self.voltage_at(self.theta, self.current_a),
            current_a=self.current_a,
            mean_theta=self.mean_theta(),
            surface_theta=self._surface_theta(self.theta, self.current_a),
            charge_mah_g=self.charge_c / self.active_mass_g / _COULOMB_PER_MAH,
        )

    def mean_theta(self) -> float:
        """Volume-averaged θ."""
        return float(np.dot(self._volume, self.theta) / self._volume.sum())


def validate_technique(technique: Technique, max_current_a: float, voltage_range_v: tuple[float, float]) -> None:
    """Raise ValueError naming the field unless the technique can run on the simulated channel."""
    if not isinstance(technique, (OCV, ConstantCurrent, ConstantVoltage)):
        raise ValueError(f"unknown technique {technique!r}; allowed: OCV, ConstantCurrent, ConstantVoltage")
    if not (technique.duration_s > 0 and math.isfinite(technique.duration_s)):
        raise ValueError(f"duration_s must be a finite number > 0 s, got {technique.duration_s!r}")
    if not (technique.record_every_s > 0 and math.isfinite(technique.record_every_s)):
        raise ValueError(f"record_every_s must be a finite number > 0 s, got {technique.record_every_s!r}")
    low, high = voltage_range_v
    if isinstance(technique, ConstantCurrent):
        if not abs(technique.current_a) <= max_current_a:
            raise ValueError(f"current_a {technique.current_a!r} A is outside [-{max_current_a:g}, {max_current_a:g}] A")
        if not low <= technique.v_limit_v <= high:
            raise ValueError(f"v_limit_v {technique.v_limit_v!r} V is outside [{low:g}, {high:g}] V")
    if isinstance(technique, ConstantVoltage):
        if not low <= technique.voltage_v <= high:
            raise ValueError(f"voltage_v {technique.voltage_v!r} V is outside [{low:g}, {high:g}] V")
        if not 0 <= technique.i_limit_a <= max_current_a:
            raise ValueError(f"i_limit_a {technique.i_limit_a!r} A is outside [0, {max_current_a:g}] A")
