"""Simulated stage, light sources, focus sensor, virtual clock, and concurrent use of one World."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from operascope.devices.base import ConstantCurrent, DeviceError, OutOfRange, Roi
from operascope.simulators.devices.backends import ROLES, build_simulated_devices
from operascope.simulators.world.clock import VirtualClock
from tests.fakes.sim_world import fit_line_centre, make_world, open_devices


def _mean_centre(sensor, n: int = 10) -> float:
    return float(np.mean([fit_line_centre(sensor.read_profile().values) for _ in range(n)]))


def test_backends_cover_every_role():
    world = make_world()
    devices = build_simulated_devices(world)
    assert set(devices) == set(ROLES)
    for device in devices.values():
        with device:
            assert device.is_open and device.info().driver == "simulated"
        assert not device.is_open


def test_focus_line_moves_by_slope_times_dz():
    world = make_world(speed=100.0, drift_z_nm_s=0.0, drift_noise_nm=0.0)
    devices = open_devices(world)
    devices["focus_laser"].set_power(0.005)
    devices["focus_laser"].enable(True)
    sensor, z = devices["focus_sensor"], devices["stage"].axis("z")
    centres = {}
    for target in (-400.0, 0.0, 400.0, 800.0):
        z.move_to(target)
        z.wait_settled(timeout_s=1.0)
        centres[target] = _mean_centre(sensor)
    slope = world.sim.focus_slope_px_per_nm
    for target, centre in centres.items():
        assert centre - centres[0.0] == pytest.approx(slope * target, abs=0.1)
    assert centres[0.0] == pytest.approx(sensor.n_pixels / 2, abs=0.2)


def _centre_with_defocus(world, sensor) -> tuple[float, float, float]:
    """Line centre from one profile, and the true defocus and z drift at its time (bracketed)."""
    before = world.truth()
    centre = fit_line_centre(sensor.read_profile().values)
    after = world.truth()
    return centre, 0.5 * (before["defocus_nm"] + after["defocus_nm"]), 0.5 * (before["drift_z_nm"] + after["drift_z_nm"])


def test_interface_drift_moves_the_line_and_the_focus():
    world = make_world(speed=1.0, drift_z_nm_s=1000.0, drift_noise_nm=0.0, stage_noise_nm=0.0)
    devices = open_devices(world)
    devices["focus_laser"].set_power(0.005)
    devices["focus_laser"].enable(True)
    sensor = devices["focus_sensor"]
    c0, defocus0, drift0 = _centre_with_defocus(world, sensor)
    time.sleep(0.4)  # ~400 nm of interface drift
    c1, defocus1, drift1 = _centre_with_defocus(world, sensor)
    assert defocus1 - defocus0 == pytest.approx(-(drift1 - drift0), abs=1e-6)  # stage z did not move
    assert defocus1 - defocus0 < -300
    # one profile: ~0.1 px noise, plus < 5 ms of drift between the truth reads (0.1 px)
    assert c1 - c0 == pytest.approx(world.sim.focus_slope_px_per_nm * (defocus1 - defocus0), abs=0.5)


def _mean_line_integral(sensor, background: float, n_profiles: int = 16) -> float:
    """Counts above background summed over the profile, averaged over several profiles."""
    return float(np.mean([np.sum(sensor.read_profile().values - background) for _ in range(n_profiles)]))


def test_focus_line_intensity_follows_laser_and_leaves_the_sensor():
    world = make_world(speed=100.0, drift_z_nm_s=0.0)
    devices = open_devices(world)
    laser, sensor = devices["focus_laser"], devices["focus_sensor"]
    dark = sensor.read_profile().values
    laser.set_power(0.005)
    laser.enable(True)
    full = sensor.read_profile().values
    full_integral = _mean_line_integral(sensor, world.sim.focus_dark_counts)
    laser.set_power(0.0025)
    half_integral = _mean_line_integral(sensor, world.sim.focus_dark_counts)
    background = world.sim.focus_dark_counts
    assert dark.max() - background < 5 * world.sim.focus_sensor_noise * world.sim.focus_line_peak_counts
    # the integral over the line, averaged over profiles: a single profile's max is biased by its noise
    assert half_integral / full_integral == pytest.approx(0.5, rel=0.1)
    # beyond the capture range the line is gone from the sensor
    z = devices["stage"].axis("z")
    z.move_to(8000.0)  # 160 px off centre with 256 px: off the edge
    z.wait_settled(timeout_s=1.0)
    assert sensor.read_profile().values.max() - background < 0.1 * (full.max() - background)
    with pytest.raises(OutOfRange):
        laser.set_power(1.0)


def test_focus_profiles_are_paced_at_the_sensor_rate():
    world = make_world(speed=2.0, focus_sensor_rate_hz=100.0)
    sensor = open_devices(world)["focus_sensor"]
    times, returned = [], []
    for _ in range(10):
        times.append(sensor.read_profile().time_s)
        returned.append(world.clock.now_s())
    steps = np.diff(times) / 0.01
    assert np.allclose(steps, np.round(steps), atol=1e-6) and np.all(steps >= 1 - 1e-9)  # on the 100 Hz grid
    assert np.median(np.array(returned) - np.array(times)) < 0.01  # fresh: typically under one period old
    assert times[-1] - times[0] >= 9 * 0.01 - 1e-9  # reading blocks until the next exposure


def test_stage_moves_at_finite_speed_and_settles():
    world = make_world(speed=1.0, stage_speed_nm_s=1e6, stage_noise_nm=1.0)
    stage = open_devices(world)["stage"]
    x = stage.axis("x")
    x.move_to(200_000.0)  # 0.2 mm at 1 mm/s: 0.2 s
    time.sleep(0.1)
    assert x.is_moving()
    assert 50_000 < x.position_nm() < 150_000
    final = x.wait_settled(timeout_s=1.0)
    assert not x.is_moving()
    assert final == pytest.approx(200_000.0, abs=10.0)
    assert x.target_nm() == 200_000.0
    jitter = [x.position_nm() for _ in range(50) if not time.sleep(0.002)]
    assert 0.2 < np.std(jitter) < 5.0  # a few nm of closed-loop noise


def test_stage_soft_limits_refuse_before_moving():
    world = make_world(stage_limits_nm=(-1000.0, 1000.0))
    stage = open_devices(world)["stage"]
    with pytest.raises(OutOfRange, match="soft limits"):
        stage.move_to(x=500.0, z=2000.0)
    assert stage.axis("x").target_nm() == 0.0  # nothing moved
    with pytest.raises(OutOfRange, match="unknown axis"):
        stage.axis("w")


def test_led_limits_and_state():
    world = make_world()
    led = open_devices(world)["led"]
    with pytest.raises(OutOfRange, match="LED current"):
        led.set_current(5.0)
    with pytest.raises(OutOfRange):
        led.set_current(-0.1)
    led.set_current(0.3)
    state = led.state()
    assert state.enabled and state.current_setpoint_a == 0.3 and state.measured_current_a == 0.3
    led.enable(False)
    assert led.state().measured_current_a == 0.0
    led.close()
    with pytest.raises(DeviceError, match="not open"):
        led.state()


def test_virtual_clock_speed_and_rebase():
    clock = VirtualClock(speed=50.0)
    start_wall = time.monotonic()
    clock.sleep_s(5.0)
    assert time.monotonic() - start_wall == pytest.approx(0.1, abs=0.05)
    before = clock.now_s()
    clock.speed = 1.0
    after = clock.now_s()
    assert after - before < 0.05  # no jump on a speed change
    assert clock.speed == 1.0
    with pytest.raises(ValueError, match="speed"):
        clock.speed = 0.0


def test_concurrent_devices_share_one_world():
    world = make_world(speed=50.0)
    devices = open_devices(world)
    camera, sensor, potentiostat, z = devices["camera"], devices["focus_sensor"], devices["potentiostat"], devices["stage"].axis("z")
    devices["focus_laser"].set_power(0.005)
    devices["focus_laser"].enable(True)
    camera.configure(exposure_ms=2.5, frame_rate_hz=10.0, roi=Roi(0, 0, 128, 128))
    camera.start()
    potentiostat.start(ConstantCurrent(current_a=2e-4, v_limit_v=4.3, duration_s=1000.0, record_every_s=1.0))
    stop = threading.Event()
    errors: list[BaseException] = []
    counts = {"frames": 0, "profiles": 0, "points": 0}

    def run(name, action):
        try:
            while not stop.is_set():
                counts[name] += action()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    def lock_step():
        sensor.read_profile()
        z.move_to(float(np.random.uniform(-50, 50)))
        return 1

    threads = [
        threading.Thread(target=run, args=("frames", lambda: camera.read() is not None)),
        threading.Thread(target=run, args=("profiles", lock_step)),
        threading.Thread(target=run, args=("points", lambda: len(potentiostat.read_new()) or time.sleep(0.01) or 0)),
    ]
    for thread in threads:
        thread.start()
    # all three run concurrently until each has done its share (no wall-time figure: the machine is shared)
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline and not (counts["frames"] >= 200 and counts["profiles"] >= 200
                                               and counts["points"] >= 20) and not errors:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(timeout=5.0)
    assert not errors
    assert counts["frames"] >= 200 and counts["profiles"] >= 200 and counts["points"] >= 20
