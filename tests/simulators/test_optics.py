"""Simulated camera image content, measured on rendered frames."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.devices.base import ConstantCurrent, Roi
from tests.fakes.sim_world import fit_spot, make_world, open_devices

ROI = Roi(0, 0, 320, 288)


def _mean_frame(world, n: int = 4, exposure_ms: float = 2.5) -> np.ndarray:
    return np.mean([world.render(ROI, exposure_ms).astype(float) for _ in range(n)], axis=0)


def _fiducial_px(world) -> tuple[float, float]:
    x_um, y_um = world.sim.fiducial_xy_um
    return x_um * 1000 / world.pixel_size_nm, y_um * 1000 / world.pixel_size_nm


def test_frame_format_and_noise_level():
    world = make_world(drift_noise_nm=0.0)
    open_devices(world)
    frame = world.render(ROI, 2.5)
    assert frame.dtype == np.uint16 and frame.shape == (288, 320)
    assert frame.max() <= 4095
    # a flat background patch: mean ≈ 20 000 e- / (32000/4095) e-/count, noise ≈ shot + read
    patch = frame[250:280, 250:300].astype(float)
    e_per_count = 32_000 / 4095
    # illumination = 1 - falloff * (distance from sensor centre / centre-to-corner distance)^2
    cx, cy = 959.5, 599.5
    u = ((275 - cx) ** 2 + (265 - cy) ** 2) / (cx**2 + cy**2)
    expected_mean = 20_000 * (1 - 0.1 * u) / e_per_count
    assert patch.mean() == pytest.approx(expected_mean, rel=0.03)
    expected_sd = np.sqrt(20_000 + 7.0**2) / e_per_count
    assert patch.std() == pytest.approx(expected_sd, rel=0.15)


def test_full_frame_renders_whole_sensor():
    world = make_world()
    open_devices(world)
    frame = world.render(Roi(0, 0, 1920, 1200), 2.5)
    assert frame.shape == (1200, 1920)
    # illumination falls off towards the corners
    assert frame[:50, :50].mean() < frame[575:625, 935:985].mean()


def test_led_off_gives_dark_frame():
    world = make_world()
    devices = open_devices(world)
    bright = world.render(ROI, 2.5)
    devices["led"].enable(False)
    dark = world.render(ROI, 2.5)
    assert bright.mean() > 1000
    assert dark.mean() < 3  # read noise only (7 e- ≈ 0.9 count)
    assert dark.max() < 10


def test_doubling_exposure_doubles_signal():
    world = make_world()
    open_devices(world)
    short = world.render(ROI, 1.0).astype(float).mean()
    long = world.render(ROI, 2.0).astype(float).mean()
    assert long / short == pytest.approx(2.0, rel=0.01)


def test_led_current_scales_signal():
    world = make_world()
    devices = open_devices(world)
    full = world.render(ROI, 1.0).astype(float).mean()
    devices["led"].set_current(0.25)
    half = world.render(ROI, 1.0).astype(float).mean()
    assert half / full == pytest.approx(0.5, rel=0.01)


def test_defocus_lowers_and_widens_fiducial():
    world = make_world(drift_noise_nm=0.0, drift_z_nm_s=0.0, stage_noise_nm=0.0)
    devices = open_devices(world)
    z = devices["stage"].axis("z")
    x_px, y_px = _fiducial_px(world)
    fits = {}
    for dz_nm in (0.0, 150.0, 300.0):
        z.move_to(dz_nm)
        z.wait_settled(timeout_s=1.0)
        fits[dz_nm] = fit_spot(_mean_frame(world), x_px, y_px)
    # PSF σ ≈ 111 nm ≈ 3.2 px in focus
    assert fits[0.0]["sigma"] == pytest.approx(111.0 / 34.7, rel=0.1)
    assert fits[0.0]["amplitude"] > fits[150.0]["amplitude"] > fits[300.0]["amplitude"]
    assert fits[0.0]["sigma"] < fits[150.0]["sigma"] < fits[300.0]["sigma"]
    # going below focus is symmetric
    z.move_to(-300.0)
    z.wait_settled(timeout_s=1.0)
    below = fit_spot(_mean_frame(world), x_px, y_px)
    assert below["sigma"] == pytest.approx(fits[300.0]["sigma"], rel=0.1)


def test_stage_xy_moves_the_field():
    world = make_world(drift_noise_nm=0.0, drift_xy_nm_s=(0.0, 0.0), stage_noise_nm=0.0)
    devices = open_devices(world)
    x_px, y_px = _fiducial_px(world)
    before = fit_spot(_mean_frame(world), x_px, y_px)
    devices["stage"].move_to(x=-347.0, y=694.0)  # +10 px right, -20 px up in the image
    devices["stage"].axis("x").wait_settled(timeout_s=1.0)
    devices["stage"].axis("y").wait_settled(timeout_s=1.0)
    after = fit_spot(_mean_frame(world), x_px + 10, y_px - 20)
    assert after["x"] - before["x"] == pytest.approx(10.0, abs=0.1)
    assert after["y"] - before["y"] == pytest.approx(-20.0, abs=0.1)


def _frame_with_truth(world, key: int) -> tuple[np.ndarray, float, float]:
    """One frame exposed now and the true drift (x, y nm) at exactly that virtual time."""
    t = world.clock.now_s()
    frame = world.render_at(t, ROI, 2.5, 0.0, key).astype(float)
    dx, dy, _ = world.drift_nm(t)
    return frame, dx, dy


def test_lateral_drift_moves_the_image_as_truth_says():
    world = make_world(speed=1.0, drift_xy_nm_s=(2000.0, -1000.0), drift_noise_nm=0.5, drift_z_nm_s=0.0)
    open_devices(world)
    x_px, y_px = _fiducial_px(world)
    frame0, dx0, dy0 = _frame_with_truth(world, 1)
    first = fit_spot(frame0, x_px + dx0 / world.pixel_size_nm, y_px + dy0 / world.pixel_size_nm)
    world.clock.sleep_s(0.5)  # about 1000 nm and -500 nm of drift
    frame1, dx1, dy1 = _frame_with_truth(world, 2)
    second = fit_spot(frame1, x_px + dx1 / world.pixel_size_nm, y_px + dy1 / world.pixel_size_nm)
    measured_dx_nm = (second["x"] - first["x"]) * world.pixel_size_nm
    measured_dy_nm = (second["y"] - first["y"]) * world.pixel_size_nm
    assert measured_dx_nm == pytest.approx(dx1 - dx0, abs=15.0)
    assert measured_dy_nm == pytest.approx(dy1 - dy0, abs=15.0)
    assert measured_dx_nm > 800 and measured_dy_nm < -400


def _particle_to_background_ratio(world, frame: np.ndarray) -> float:
    p = world.particle_geometry()[0]
    a = world.pixel_size_nm / 1000.0
    y, x = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]]
    r_um = np.hypot(x * a - p["x_um"], y * a - p["y_um"])
    inside = frame[r_um < 0.6 * p["diameter_um"] / 2]
    ring = frame[(r_um > p["diameter_um"] / 2 + 0.6) & (r_um < p["diameter_um"] / 2 + 1.0)]
    return float(inside.mean() / ring.mean())


def test_charging_raises_particle_intensity():
    world = make_world(speed=5000.0, drift_noise_nm=0.0, drift_xy_nm_s=(0.0, 0.0), drift_z_nm_s=0.0)
    devices = open_devices(world)
    before = _particle_to_background_ratio(world, _mean_frame(world))
    theta_before = world.truth()["particle_theta"][0]
    potentiostat = devices["potentiostat"]
    one_c_a = world.active_mass_g * 0.2  # 200 mA/g
    potentiostat.start(ConstantCurrent(current_a=10 * one_c_a, v_limit_v=4.3, duration_s=150.0, record_every_s=10.0))
    while potentiostat.is_running():
        world.clock.sleep_s(10.0)
    theta_after = world.truth()["particle_theta"][0]
    after = _particle_to_background_ratio(world, _mean_frame(world))
    assert theta_before - theta_after == pytest.approx(10 * 0.727 * 150 / 3600, rel=0.05)
    measured_rise = after / before - 1.0
    expected_rise = 0.25 * (theta_before - theta_after)  # κ = contrast_per_theta
    assert measured_rise > 0.05
    assert measured_rise == pytest.approx(expected_rise, rel=0.2)


class _HalfReactedParticle:
    """Test particle: after any charge, the right half (dx > 0) is delithiated to 0.55."""

    def __init__(self, initial_theta: float) -> None:
        self.theta0 = initial_theta
        self.charged = False

    def advance(self, dt_s: float, specific_current_a_g: float) -> None:
        self.charged = self.charged or specific_current_a_g > 0

    def mean_theta(self) -> float:
        return (self.theta0 + 0.55) / 2 if self.charged else self.theta0

    def theta_at(self, dx_um, dy_um):
        dx = np.asarray(dx_um, dtype=float) + 0 * np.asarray(dy_um, dtype=float)
        return np.where((dx > 0) & self.charged, 0.55, self.theta0)


def test_non_uniform_theta_field_is_rendered_where_it_is():
    from operascope.config.loader import load_config
    from operascope.simulators.world.world import World

    config = load_config(overrides={"simulation": {"speed": 5000.0, "drift_z_nm_s": 0.0, "drift_xy_nm_s": [0.0, 0.0]}})
    world = World(config, particle_factory=lambda p, theta0: _HalfReactedParticle(theta0))
    devices = open_devices(world)
    reference = _mean_frame(world, 6)
    devices["potentiostat"].start(ConstantCurrent(current_a=2e-4, v_limit_v=4.3, duration_s=5.0, record_every_s=1.0))
    world.clock.sleep_s(10.0)
    charged = _mean_frame(world, 6)
    ratio = charged / reference
    p = world.particle_geometry()[0]
    a = world.pixel_size_nm / 1000.0
    col, row, r_px = p["x_um"] / a, p["y_um"] / a, p["diameter_um"] / 2 / a
    rows = slice(int(row - r_px / 2), int(row + r_px / 2))
    right = ratio[rows, int(col + 0.2 * r_px) : int(col + 0.7 * r_px)].mean()
    left = ratio[rows, int(col - 0.7 * r_px) : int(col - 0.2 * r_px)].mean()
    assert left == pytest.approx(1.0, abs=0.005)
    assert right - 1.0 == pytest.approx(0.25 * (0.95 - 0.55), rel=0.1)  # κ Δθ on the reacted half only


def test_particle_model_is_selected_by_config(monkeypatch):
    import sys
    import types

    from operascope.config.loader import ConfigError, load_config
    from operascope.simulators.world.world import World

    made = []

    class FakeFemParticle(_HalfReactedParticle):
        def __init__(self, diameter_um, gamma, eta, rsl_angle_deg, initial_theta=0.95):
            super().__init__(initial_theta)
            made.append((diameter_um, gamma, eta, rsl_angle_deg, initial_theta))

    monkeypatch.setitem(sys.modules, "operascope.simulators.world.fem_particle", types.SimpleNamespace(FemParticle=FakeFemParticle))
    world = World(load_config(overrides={"simulation": {"particle_model": "fem"}}))
    assert len(world.particles) == 3 and made[1] == (2.6, 0.3, 0.2, 30.0, 0.95)
    with pytest.raises(ConfigError, match="particle_model"):
        load_config(overrides={"simulation": {"particle_model": "pde"}})
