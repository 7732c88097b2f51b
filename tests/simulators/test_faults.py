"""Every injected fault surfaces as the right typed error, and devices recover afterwards."""

from __future__ import annotations

import pytest

from operascope.config.loader import ConfigError, load_config
from operascope.devices.base import (
    OCV,
    ConstantCurrent,
    DeviceLost,
    DeviceTimeout,
    EndOfTravel,
    IncompleteFrame,
    InterlockTripped,
    Roi,
)
from operascope.simulators.world.faults import FAULT_KINDS
from operascope.simulators.world.world import World
from tests.fakes.sim_world import make_world, open_devices

ROI = Roi(0, 0, 64, 64)


@pytest.fixture
def rig():
    world = make_world(speed=20.0)
    devices = open_devices(world)
    devices["camera"].configure(exposure_ms=2.5, frame_rate_hz=10.0, roi=ROI)
    devices["camera"].start()
    devices["focus_laser"].set_power(0.005)
    devices["focus_laser"].enable(True)
    return world, devices


def test_camera_timeout_incomplete_and_drops(rig):
    world, devices = rig
    camera = devices["camera"]
    last = camera.read().frame_id
    world.inject_fault("camera", "timeout")
    with pytest.raises(DeviceTimeout):
        camera.read(timeout_s=0.5)
    after_timeout = camera.read().frame_id
    assert after_timeout > last + 1  # frames of the timed-out interval are gone
    world.inject_fault("camera", "incomplete_frame", count=2)
    with pytest.raises(IncompleteFrame):
        camera.read()
    with pytest.raises(IncompleteFrame):
        camera.read()
    resumed = camera.read().frame_id
    assert resumed == after_timeout + 3  # each incomplete frame consumed one id
    world.inject_fault("camera", "drop_frames", count=4)
    assert camera.read().frame_id == resumed + 5  # a gap of exactly 4 ids
    world.inject_fault("camera", "drop_frames", duration_s=1.0)  # 10 frames at 10 Hz
    before = world.clock.now_s()
    starts_s = [camera.read(timeout_s=2.0).camera_time_ns * 1e-9 for _ in range(3)]
    # frames exposed before the window may still arrive; none exposed inside it does
    assert not any(before <= t < before + 1.0 for t in starts_s)
    assert starts_s[-1] >= before + 1.0


def test_camera_device_lost_until_duration_then_reconnect(rig):
    world, devices = rig
    camera = devices["camera"]
    camera.read()
    world.inject_fault("camera", "device_lost", duration_s=2.0)
    with pytest.raises(DeviceLost):
        camera.read()
    with pytest.raises(DeviceLost):
        camera.settings() if False else camera.start()
    with pytest.raises(DeviceLost):
        camera.reconnect()  # still unplugged
    world.clock.sleep_s(2.1)
    camera.reconnect()
    camera.start()
    frame = camera.read()
    assert frame.pixels.shape == (64, 64)


def test_stage_faults(rig):
    world, devices = rig
    z = devices["stage"].axis("z")
    world.inject_fault("stage", "end_of_travel")
    with pytest.raises(EndOfTravel):
        z.move_to(100.0)
    z.move_to(100.0)  # count fault used up
    world.inject_fault("stage", "timeout")
    with pytest.raises(DeviceTimeout):
        z.position_nm()
    world.inject_fault("stage", "link_loss", duration_s=1.0)
    with pytest.raises(DeviceLost):
        z.position_nm()
    with pytest.raises(DeviceLost):
        devices["stage"].reconnect()
    world.clock.sleep_s(1.1)
    devices["stage"].reconnect()
    assert z.wait_settled(timeout_s=1.0) == pytest.approx(100.0, abs=10.0)


@pytest.mark.parametrize("role", ["led", "focus_laser"])
def test_interlock_trip_forces_output_off(rig, role):
    world, devices = rig
    source = devices[role]
    source.enable(True)
    assert source.state().enabled
    world.inject_fault(role, "interlock_trip", duration_s=1.0)
    state = source.state()
    assert not state.enabled and not state.interlock_ok
    with pytest.raises(InterlockTripped):
        source.enable(True)
    world.clock.sleep_s(1.1)
    assert not source.state().enabled  # stays off until enabled again
    source.enable(True)
    assert source.state().enabled and source.state().interlock_ok


def test_a_late_render_of_an_exposure_inside_a_trip_leaves_the_laser_on(rig):
    """A camera whose host lags renders old exposures; the world's state must not go back in time with them."""
    world, devices = rig
    laser = devices["focus_laser"]
    laser.enable(True)
    trip_s = world.clock.now_s()
    world.inject_fault("focus_laser", "interlock_trip", duration_s=1.0)
    world.clock.sleep_s(1.1)
    laser.enable(True)  # the operator switches it back on after the trip
    world.render_at(trip_s + 0.5, Roi(0, 0, 64, 64), 10.0, 0.0, frame_key=1)  # a frame exposed during the trip
    assert laser.state().enabled


def test_interlock_trip_darkens_camera_and_focus_sensor(rig):
    world, devices = rig
    bright = devices["camera"].read().pixels.mean()
    line = devices["focus_sensor"].read_profile().values.max()
    world.inject_fault("led", "interlock_trip", duration_s=5.0)
    world.inject_fault("focus_laser", "interlock_trip", duration_s=5.0)
    assert devices["camera"].read().pixels.mean() < 0.01 * bright
    assert devices["focus_sensor"].read_profile().values.max() < 0.1 * line


@pytest.mark.parametrize("role", ["led", "focus_laser", "focus_sensor"])
def test_timeout_and_loss_on_sources_and_sensor(rig, role):
    world, devices = rig
    device = devices[role]
    call = (lambda: device.read_profile(timeout_s=0.2)) if role == "focus_sensor" else device.state
    call()
    world.inject_fault(role, "timeout")
    with pytest.raises(DeviceTimeout):
        call()
    call()
    world.inject_fault(role, "device_lost")
    with pytest.raises(DeviceLost):
        call()
    device.reconnect()
    call()


def test_potentiostat_link_loss_rests_the_cell(rig):
    world, devices = rig
    potentiostat = devices["potentiostat"]
    potentiostat.start(ConstantCurrent(current_a=2e-4, v_limit_v=4.3, duration_s=1000.0))
    world.clock.sleep_s(5.0)
    world.inject_fault("potentiostat", "timeout")
    with pytest.raises(DeviceTimeout):
        potentiostat.read_new()
    assert potentiostat.read_new()  # points were kept
    world.inject_fault("potentiostat", "link_loss", duration_s=3.0)
    with pytest.raises(DeviceLost):
        potentiostat.read_new()
    assert world.truth()["cell_current_a"] == 0.0  # the cell rests
    world.clock.sleep_s(3.1)
    potentiostat.reconnect()
    assert not potentiostat.is_running()
    assert potentiostat.end_reason() == "error"
    potentiostat.start(OCV(duration_s=10.0))
    assert potentiostat.is_running()


def test_faults_from_config_fire_at_their_time():
    config = load_config(
        overrides={
            "simulation": {
                "speed": 10.0,
                "faults": [
                    {"device": "camera", "kind": "device_lost", "at_s": 2.0, "duration_s": 1.0},
                    {"device": "led", "kind": "interlock_trip", "at_s": 1.0, "duration_s": 10.0},
                ],
            }
        }
    )
    world = World(config)
    devices = open_devices(world)
    camera = devices["camera"]
    camera.configure(exposure_ms=2.5, frame_rate_hz=10.0, roi=ROI)
    camera.start()
    assert devices["led"].state().enabled
    camera.read()
    world.clock.sleep_until_s(1.2)
    assert not devices["led"].state().enabled
    world.clock.sleep_until_s(2.1)
    with pytest.raises(DeviceLost):
        camera.read()
    world.clock.sleep_until_s(3.1)
    camera.reconnect()


def test_bad_injections_are_refused_with_the_allowed_values():
    world = make_world()
    with pytest.raises(ValueError, match="allowed: timeout, incomplete_frame"):
        world.inject_fault("camera", "interlock_trip")
    with pytest.raises(ValueError, match="not a simulated role"):
        world.inject_fault("microscope", "timeout")
    with pytest.raises(ConfigError, match="does not apply to led"):
        load_config(overrides={"simulation": {"faults": [{"device": "led", "kind": "drop_frames", "at_s": 1.0}]}})
    assert set(FAULT_KINDS) == {"camera", "stage", "led", "focus_laser", "focus_sensor", "potentiostat"}


def test_clear_faults_restores_devices(rig):
    world, devices = rig
    world.inject_fault("camera", "device_lost", duration_s=100.0)
    world.inject_fault("led", "interlock_trip", duration_s=100.0)
    world.clear_faults()
    devices["camera"].reconnect()
    devices["camera"].start()
    devices["camera"].read()
    devices["led"].enable(True)
