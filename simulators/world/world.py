"""The virtual world: one ground truth shared by every simulated device, on one virtual clock.

Holds the stage axes, the sample drift (x, y: slow drift + noise, moving the image; z: the
cover-glass interface drifting, moving the focus), LED and laser state, the half-cell model
and the particles' Li occupancy, and the injected faults. Devices call in from several threads
(camera, focus lock, potentiostat); every access to the state happens under one lock, and the
expensive image rendering happens outside it on a snapshot. State only moves forward in time (a
frame rendered late for an earlier exposure sees the state as it is now, never a replayed past).

Coordinates: sample (x, y) in µm equal full-sensor image coordinates at stage (0, 0) with no
drift (pixel (col, row) centre at (col·a, row·a), a = pixel size). A sample drift of +d moves
features towards +col/+row; moving the stage by +s moves them by −s.
Interface defocus (focus sensor) = stage z − (z_focus + interface drift z); sample defocus
(camera) = interface defocus − sample z relative to the interface (swelling ∝ SOC + creep).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Sequence

import numpy as np

from operascope.analysis.materials import THEORETICAL_CAPACITY_MAH_G
from operascope.config.schema import FaultConfig, RigConfig
from operascope.devices.base import Roi
from operascope.simulators.world.cell import EDGE_WIDTH, SphericalDiffusionCell
from operascope.simulators.world.clock import TimeSeriesNoise, VirtualClock, event_rng
from operascope.simulators.world.fault_injection import FaultInjection
from operascope.simulators.world.faults import FaultBoard
from operascope.simulators.world.optics import (
    POISSON_EXACT_BELOW_E,
    SENSOR_SHAPE,
    GaussianTable,
    ParticleView,
    RoiGeometry,
    SceneView,
    SensorModel,
    defocus_sigma_nm,
    expected_electrons,
    focus_line_profile,
    sensor_counts,
)
from operascope.simulators.world.particles import (  # noqa: F401 - factories re-exported
    PARTICLE_MODELS,
    ParticleFactory,
    ParticleLithiation,
    fem_particle_factory,
    uniform_particle_factory,
)
from operascope.simulators.world.potentiostat_channel import PotentiostatChannel
from operascope.simulators.world.particle_truth import front_truth, front_truth_columns
from operascope.simulators.world.sample_layout import SampleLayout
from operascope.simulators.devices.stage import AxisMotion

# Noise stream ids (keep distinct; part of the seeded behaviour).
_STREAM_DRIFT = {"x": 11, "y": 12, "z": 13}
_STREAM_STAGE = {"x": 21, "y": 22, "z": 23}
_STREAM_FRAME = 31
_STREAM_PROFILE = 32
_STREAM_RENDER = 33
_STREAM_RETURN = {"x": 41, "y": 42}
#: Stage jitter correlation step (virtual s).
_STAGE_NOISE_STEP_S = 0.01
#: Virtual seconds between re-evaluations of a particle's θ grid.
_THETA_GRID_REFRESH_S = 0.5
_MAX_ROI_CACHE = 8
#: Wall seconds the cell waits, at a technique's end, for the next step before resting on.
_MAX_STEP_HOLD_WALL_S = 5.0


class World(FaultInjection, PotentiostatChannel):
    """Ground truth of the simulated rig. See the module docstring for conventions."""

    def __init__(self, config: RigConfig, particle_factory: ParticleFactory | None = None) -> None:
        """Build the world from a validated config; ``particle_factory(particle_config, θ0)``
        overrides ``simulation.particle_model`` (e.g. for tests)."""
        sim = config.simulation
        self.config = config
        self.sim = sim
        self.seed = int(sim.seed)
        self.pixel_size_nm = float(config.acquisition.pixel_size_nm)
        self.clock = VirtualClock(sim.speed)
        self._lock = threading.RLock()
        self.faults = FaultBoard()
        self._scheduled_faults: list[FaultConfig] = sorted(sim.faults, key=lambda f: f.at_s)
        self._updated_to_s = -math.inf
        self._drift_noise = {
            axis: TimeSeriesNoise(self.seed, stream, sim.drift_noise_nm, sim.drift_noise_step_s)
            for axis, stream in _STREAM_DRIFT.items()
        }
        self._axes = {
            axis: AxisMotion(0.0, sim.stage_speed_nm_s, sim.stage_settle_s, TimeSeriesNoise(self.seed, stream, sim.stage_noise_nm, _STAGE_NOISE_STEP_S),
                             *self._return_error(axis))
            for axis, stream in _STREAM_STAGE.items()
        }
        # light sources
        self.led_enabled = False
        self.led_current_a = float(config.acquisition.led_current_a)
        self.laser_enabled = False
        self.laser_power_w = float(config.focus_lock.laser_power_w)
        # electrochemistry
        self.active_mass_g = config.sample.active_mass_mg * 1e-3
        self.specific_capacity_mah_g = float(config.electrochemistry.specific_capacity_mah_g)
        self.cell = SphericalDiffusionCell(
            active_mass_g=self.active_mass_g, initial_theta=sim.initial_theta, radius_um=sim.cell_particle_radius_um,
            n_shells=sim.cell_shells, resistance_ohm=sim.cell_resistance_ohm, theoretical_capacity_mah_g=THEORETICAL_CAPACITY_MAH_G,
            max_step_s=sim.cell_max_step_s, max_current_a=sim.potentiostat_max_current_a,
            max_theta=min(max(sim.initial_theta, sim.cell_full_theta) + EDGE_WIDTH, 1.0),
        )
        self.cell.limit_ignored = lambda t_s: self.faults.consume("potentiostat", "limit_ignored", t_s)
        self.cell.bound_holds(time.monotonic, _MAX_STEP_HOLD_WALL_S)
        factory = particle_factory or PARTICLE_MODELS[sim.particle_model]
        self._particle_configs = list(sim.particles)
        self.layout = SampleLayout(self._particle_configs, sim.fiducial_positions_um())
        self.particles: list[ParticleLithiation] = [factory(p, sim.initial_theta) for p in self._particle_configs]
        self._pending_dt_s = 0.0
        self._pending_charge_c = 0.0
        self._theta_grids: list[tuple[float, np.ndarray | None, float]] = [(-math.inf, None, sim.initial_theta)] * len(self.particles)
        self._roi_cache: dict[tuple[int, int, int, int], RoiGeometry] = {}
        self.sensor = SensorModel(read_noise_e=sim.read_noise_e, full_well_e=sim.full_well_e)
        self._normal = GaussianTable()
        self._render_counter = 0

    # ------------------------------------------------------------------ time and state updates

    def _update(self, t_s: float) -> None:
        """Bring lazy state (faults, cell, particles) up to ``t_s``, never back: a late render must not replay it."""
        t_s = max(t_s, self._updated_to_s)
        self._updated_to_s = t_s
        while self._scheduled_faults and self._scheduled_faults[0].at_s <= t_s:
            f = self._scheduled_faults.pop(0)
            self._inject(f.device, f.kind, f.at_s, f.duration_s, f.count)
        if self.faults.in_window("led", "interlock_trip", t_s):
            self.led_enabled = False
        if self.faults.in_window("focus_laser", "interlock_trip", t_s):
            self.laser_enabled = False
        potentiostat_cut = self.faults.loss_active("potentiostat", t_s)
        if potentiostat_cut and self.cell.is_running:
            self.cell.advance_to(t_s, exact=True, on_step=self._on_cell_step)
            self.cell.stop("error")
        self.cell.advance_to(t_s, on_step=self._on_cell_step)

    def _on_cell_step(self, dt_s: float, current_a: float) -> None:
        self._pending_dt_s += dt_s
        self._pending_charge_c += current_a * dt_s
        if self._pending_dt_s >= self.sim.particle_step_s:
            self._flush_particles()

    def _flush_particles(self) -> None:
        if self._pending_dt_s <= 0:
            return
        specific_current_a_g = self._pending_charge_c / self._pending_dt_s / self.active_mass_g
        for particle in self.particles:
            particle.advance(self._pending_dt_s, specific_current_a_g)
        self._pending_dt_s = 0.0
        self._pending_charge_c = 0.0

    # ------------------------------------------------------------------ drift and stage

    def _drift_nm(self, axis: str, t_s: float) -> float:
        if axis == "z":
            rate = self.sim.drift_z_nm_s
        else:
            rate = self.sim.drift_xy_nm_s[0 if axis == "x" else 1]
        return rate * t_s + self._drift_noise[axis].value(t_s)

    def _return_error(self, axis: str) -> tuple[float, object]:
        """(σ, seeded generator per move) of an axis' return error: x and y only (z is the focus lock's)."""
        if axis not in _STREAM_RETURN or self.sim.stage_repeatability_nm == 0:
            return 0.0, None
        return self.sim.stage_repeatability_nm, lambda move: event_rng(self.seed, _STREAM_RETURN[axis], move)

    def stage_return_error_nm(self, axis: str) -> float:
        """True minus reported position of ``axis`` now (nm): the return error of its last move."""
        with self._lock:
            return self._axes[axis].return_error_nm(self.clock.now_s())

    def stage_limits_nm(self, axis: str) -> tuple[float, float]:
        return tuple(self.sim.stage_limits_nm)  # same soft limits on every axis

    def stage_position_nm(self, axis: str) -> float:
        with self._lock:
            return self._axes[axis].position_nm(self.clock.now_s())

    def stage_target_nm(self, axis: str) -> float:
        with self._lock:
            return self._axes[axis].target_nm

    def stage_move(self, axis: str, target_nm: float) -> None:
        with self._lock:
            self._axes[axis].move_to(self.clock.now_s(), target_nm)

    def stage_is_moving(self, axis: str) -> bool:
        with self._lock:
            return self._axes[axis].is_moving(self.clock.now_s())

    def stage_halt(self, axis: str) -> None:
        with self._lock:
            self._axes[axis].halt(self.clock.now_s())

    def _swelling_nm(self, t_s: float) -> float:
        """Sample z relative to the interface (nm): swelling ∝ SOC plus creep. Lock held, state at t_s."""
        sim = self.sim
        if sim.swelling_nm_per_soc == 0.0 and sim.swelling_creep_nm_s == 0.0:
            return 0.0
        soc = (self.sim.initial_theta - self.cell.mean_theta()) * THEORETICAL_CAPACITY_MAH_G / self.specific_capacity_mah_g
        return sim.swelling_nm_per_soc * soc + sim.swelling_creep_nm_s * t_s

    def _interface_defocus_nm(self, t_s: float) -> float:
        """Stage z minus where the interface is in focus: what the focus sensor sees."""
        return self._axes["z"].position_nm(t_s) - (self.sim.z_focus_nm + self._drift_nm("z", t_s))

    def _defocus_nm(self, t_s: float) -> float:
        """Stage z minus where the sample is in focus: what the camera sees."""
        return self._interface_defocus_nm(t_s) - self._swelling_nm(t_s)

    # ------------------------------------------------------------------ light sources

    def set_led(self, enabled: bool | None = None, current_a: float | None = None) -> None:
        with self._lock:
            self._update(self.clock.now_s())
            if current_a is not None:
                self.led_current_a = float(current_a)
            if enabled is not None:
                self.led_enabled = bool(enabled)

    def set_laser(self, enabled: bool | None = None, power_w: float | None = None) -> None:
        with self._lock:
            self._update(self.clock.now_s())
            if power_w is not None:
                self.laser_power_w = float(power_w)
            if enabled is not None:
                self.laser_enabled = bool(enabled)

    def light_state(self) -> dict[str, float | bool]:
        """LED and laser state now (after faults)."""
        with self._lock:
            now = self.clock.now_s()
            self._update(now)
            return {
                "led_enabled": self.led_enabled,
                "led_current_a": self.led_current_a,
                "led_interlock_ok": self._interlock_ok("led", now),
                "laser_enabled": self.laser_enabled,
                "laser_power_w": self.laser_power_w,
                "laser_interlock_ok": self._interlock_ok("focus_laser", now),
            }

    def _interlock_ok(self, device: str, now_s: float) -> bool:
        return not (self.faults.in_window(device, "interlock_trip", now_s) or self.faults.pending_count(device, "interlock_trip"))

    # ------------------------------------------------------------------ ground truth

    def truth(self) -> dict:
        """Ground truth now (virtual time ``time_s``); lengths in nm."""
        with self._lock:
            t = self.clock.now_s()
            self._update(t)
            cell = self.cell.state()
            charge_mah_g = (self.sim.initial_theta - cell.mean_theta) * THEORETICAL_CAPACITY_MAH_G
            return {
                "time_s": t,
                "drift_x_nm": self._drift_nm("x", t),
                "drift_y_nm": self._drift_nm("y", t),
                "drift_z_nm": self._drift_nm("z", t),
                "defocus_nm": self._defocus_nm(t),
                "interface_defocus_nm": self._interface_defocus_nm(t),
                "sample_z_rel_interface_nm": self._swelling_nm(t),
                "stage_x_nm": self._axes["x"].position_nm(t),
                "stage_y_nm": self._axes["y"].position_nm(t),
                "stage_z_nm": self._axes["z"].position_nm(t),
                "stage_return_error_x_nm": self._axes["x"].return_error_nm(t),
                "stage_return_error_y_nm": self._axes["y"].return_error_nm(t),
                "particle_theta": [float(p.mean_theta()) for p in self.particles],
                "soc": min(max(charge_mah_g / self.specific_capacity_mah_g, 0.0), 1.0),
                "cell_voltage_v": cell.voltage_v,
                "cell_current_a": cell.current_a,
                "cell_theta_mean": cell.mean_theta,
                "cell_theta_surface": cell.surface_theta,
            }

    def _view_shift_nm(self, t_s: float) -> tuple[float, float]:
        return tuple(self._drift_nm(a, t_s) - self._axes[a].sample_position_nm(t_s) for a in ("x", "y"))  # type: ignore[return-value]

    def drift_nm(self, t_s: float) -> tuple[float, float, float]:
        """True sample drift (x, y, interface z) in nm at virtual time ``t_s`` (deterministic)."""
        with self._lock:
            return self._drift_nm("x", t_s), self._drift_nm("y", t_s), self._drift_nm("z", t_s)

    def image_shift_nm(self, t_s: float) -> tuple[float, float]:
        """What moves the image at virtual time ``t_s`` (x, y nm): sample drift minus stage position (with
        its jitter). Exact for times since the last stage move started."""
        with self._lock:
            return self._view_shift_nm(t_s)

    def stage_return_error_at_nm(self, axis: str, t_s: float) -> float:
        """True minus reported position of ``axis`` (nm) at virtual time ``t_s`` (moves are kept in history)."""
        with self._lock:
            return self._axes[axis].return_error_nm(t_s)

    def particle_truth(self, indices: Sequence[int] | None = None) -> dict:
        """Now: cell SOC and each particle's θ, SOC, unreacted fraction and front COM (nm) as the analysis
        measures them (:mod:`~operascope.simulators.world.particle_truth`); NaN for particles not in ``indices``."""
        with self._lock:
            t = self.clock.now_s()
            self._update(t)
            wanted = range(len(self.particles)) if indices is None else set(int(i) for i in indices)
            soc_per_theta = THEORETICAL_CAPACITY_MAH_G / self.specific_capacity_mah_g
            states = [front_truth(p, c.diameter_um, self.pixel_size_nm, self.sim.initial_theta, self.sim.contrast_per_theta,
                                  soc_per_theta) if k in wanted else None
                      for k, (p, c) in enumerate(zip(self.particles, self._particle_configs))]
            soc = (self.sim.initial_theta - self.cell.mean_theta()) * soc_per_theta
        return {"particle_time_s": t, "soc": soc, **front_truth_columns(states, len(states))}

    def particle_geometry(self) -> list[dict]:
        """Per particle: x_um, y_um, diameter_um, gamma, eta, rsl_angle_deg, brightness."""
        return [
            {
                "x_um": p.x_um,
                "y_um": p.y_um,
                "diameter_um": p.diameter_um,
                "gamma": p.gamma,
                "eta": p.eta,
                "rsl_angle_deg": p.rsl_angle_deg,
                "brightness": p.brightness,
            }
            for p in self._particle_configs
        ]

    # ------------------------------------------------------------------ camera rendering

    def _theta_grid(self, index: int, t_s: float) -> tuple[np.ndarray | None, float]:
        """θ of particle ``index`` on its pixel grid (None if uniform) and its mean. Lock held."""
        stamp, grid, mean = self._theta_grids[index]
        if t_s - stamp < _THETA_GRID_REFRESH_S and t_s >= stamp:
            return grid, mean
        particle = self.particles[index]
        config = self._particle_configs[index]
        half = int(math.ceil(config.diameter_um * 500.0 / self.pixel_size_nm)) + 2
        offsets_um = np.arange(-half, half + 1) * (self.pixel_size_nm / 1000.0)
        dx, dy = np.meshgrid(offsets_um, offsets_um)
        values = np.asarray(particle.theta_at(dx, dy), dtype=np.float32)
        mean = float(particle.mean_theta())
        grid = None if float(values.max() - values.min()) < 1e-6 else values
        self._theta_grids[index] = (t_s, grid, mean)
        return grid, mean

    def _scene(self, t_s: float, exposure_ms: float, geom: RoiGeometry) -> SceneView:
        """Snapshot of what the camera sees at ``t_s`` in ``geom`` (only particles reaching it). Lock held."""
        sim = self.sim
        view_dx, view_dy = self._view_shift_nm(t_s)
        led = (self.led_current_a / sim.reference_led_current_a) if self.led_enabled else 0.0
        background = sim.background_e * led * (exposure_ms / sim.reference_exposure_ms)
        blur = defocus_sigma_nm(self._defocus_nm(t_s), sim.depth_of_field_nm)
        particles = []
        for i in self.layout.visible_particles(view_dx, view_dy, geom, blur).tolist():
            p = self._particle_configs[i]
            grid, mean = self._theta_grid(i, t_s)
            particles.append(
                ParticleView(
                    x_nm=p.x_um * 1000.0 + view_dx,
                    y_nm=p.y_um * 1000.0 + view_dy,
                    radius_nm=p.diameter_um * 500.0,
                    contrast=sim.particle_contrast * p.brightness,
                    kappa=sim.contrast_per_theta,
                    theta0=sim.initial_theta,
                    theta_mean=mean,
                    theta_grid=grid,
                )
            )
        return SceneView(
            background_e=background,
            pixel_size_nm=self.pixel_size_nm,
            blur_sigma_nm=blur,
            fiducial_x_nm=self.layout.fiducials_nm[0][0] + view_dx,
            fiducial_y_nm=self.layout.fiducials_nm[0][1] + view_dy,
            fiducial_peak_contrast=sim.fiducial_brightness,
            particles=tuple(particles),
            extra_fiducials_nm=self.layout.visible_fiducials(view_dx, view_dy, geom, blur),
        )

    def _geometry(self, roi: Roi) -> RoiGeometry:
        key = (roi.x, roi.y, roi.width, roi.height)
        geom = self._roi_cache.get(key)
        if geom is None:
            if len(self._roi_cache) >= _MAX_ROI_CACHE:
                self._roi_cache.pop(next(iter(self._roi_cache)))
            geom = RoiGeometry(roi.x, roi.y, roi.width, roi.height, self.pixel_size_nm, self.sim.illumination_falloff)
            self._roi_cache[key] = geom
        return geom

    def render_at(self, t_s: float, roi: Roi, exposure_ms: float, gain_db: float, frame_key: int, stream: int = _STREAM_FRAME) -> np.ndarray:
        """One noisy uint16 frame (0..4095) of ``roi`` exposed at virtual time ``t_s``.

        ``frame_key`` seeds the noise, so the same (seed, key, state) gives the same frame.
        """
        check_roi(roi)
        with self._lock:
            self._update(max(t_s, 0.0))
            geom = self._geometry(roi)
            scene = self._scene(t_s, exposure_ms, geom)
        expected = expected_electrons(scene, geom)
        dim = scene.background_e * (1.0 + self.sim.fiducial_brightness) < POISSON_EXACT_BELOW_E
        return sensor_counts(expected, self.sensor, gain_db, event_rng(self.seed, stream, frame_key), self._normal, exact_poisson=dim)

    def render(self, roi: Roi, exposure_ms: float, gain_db: float = 0.0) -> np.ndarray:
        """One noisy frame now (uint16, 12-bit counts) with the current stage/LED/world state."""
        with self._lock:
            self._render_counter += 1
            key = self._render_counter
        return self.render_at(self.clock.now_s(), roi, exposure_ms, gain_db, key, stream=_STREAM_RENDER)

    # ------------------------------------------------------------------ focus sensor

    def focus_line_centre_px(self, t_s: float | None = None) -> float:
        """Noise-free centre of the reflected line on the focus sensor (px)."""
        with self._lock:
            t = self.clock.now_s() if t_s is None else t_s
            return self.sim.focus_sensor_pixels / 2.0 + self.sim.focus_slope_px_per_nm * self._interface_defocus_nm(t)

    def focus_profile_at(self, t_s: float, key: int) -> np.ndarray:
        """Noisy focus-sensor profile (float64 counts) at virtual time ``t_s``."""
        sim = self.sim
        with self._lock:
            self._update(max(t_s, 0.0))
            centre = sim.focus_sensor_pixels / 2.0 + sim.focus_slope_px_per_nm * self._interface_defocus_nm(t_s)
            power = self.laser_power_w if self.laser_enabled else 0.0
        peak = sim.focus_line_peak_counts * power / sim.focus_reference_power_w
        noise = sim.focus_sensor_noise * sim.focus_line_peak_counts
        return focus_line_profile(
            sim.focus_sensor_pixels, centre, sim.focus_line_sigma_px, peak, sim.focus_dark_counts, noise, event_rng(self.seed, _STREAM_PROFILE, key)
        )

    def focus_profile(self) -> np.ndarray:
        """One noisy focus-sensor profile now."""
        with self._lock:
            self._render_counter += 1
            key = self._render_counter
        return self.focus_profile_at(self.clock.now_s(), key + (1 << 40))


def check_roi(roi: Roi) -> None:
    """Raise ValueError unless ``roi`` lies on the 1920x1200 sensor with a positive size."""
    height, width = SENSOR_SHAPE
    if roi.width < 1 or roi.height < 1 or roi.x < 0 or roi.y < 0 or roi.x + roi.width > width or roi.y + roi.height > height:
        raise ValueError(f"roi {roi} must lie within the {width}x{height} sensor with width, height >= 1 px")
