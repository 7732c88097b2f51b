"""simulators/emulators.py: every emulator around one World, and the real drivers built from the returned config."""

from __future__ import annotations

import os
import socket
import time

import numpy as np
import pytest

from operascope.config.loader import load_config, preset_path
from operascope.devices.attocube import AttocubeStage
from operascope.devices.base import OCV, DeviceLost, Roi
from operascope.devices.biologic import BiologicPotentiostat
from operascope.devices.flir import FlirCamera
from operascope.devices.focus_sensor import FlirLineSensor
from operascope.devices.laser import SerialLaser
from operascope.devices.thorlabs import ThorlabsLed
from operascope.simulators.emulators import fake_eclib
from operascope.simulators.emulators.rig import start_emulators
from operascope.simulators.world.world import World

DRIVERS = {
    "stage": AttocubeStage,
    "led": ThorlabsLed,
    "focus_laser": SerialLaser,
    "potentiostat": BiologicPotentiostat,
    "camera": FlirCamera,
    "focus_sensor": FlirLineSensor,
}


def build(config, role: str):
    """Construct a driver exactly as the rig factory does."""
    section = getattr(config.devices, role)
    return DRIVERS[role](**section.model_dump(exclude={"driver"}))


@pytest.fixture
def emulated():
    config = load_config(preset_path("emulated"), overrides={"simulation": {"speed": 20.0}})
    world = World(config)
    endpoints, stop = start_emulators(world, config)
    yield world, config, endpoints
    stop()
    stop()  # idempotent


def test_endpoints_point_at_the_emulators(emulated) -> None:
    world, original, config = emulated
    devices = config.devices
    assert devices.stage.host == "127.0.0.1" and devices.stage.port not in (0, original.devices.stage.port)
    assert os.path.exists(devices.focus_laser.port) and devices.focus_laser.port != original.devices.focus_laser.port
    yaml_path = devices.led.visa_library.removesuffix("@sim")
    assert devices.led.visa_library.endswith("@sim") and os.path.isfile(yaml_path)
    assert devices.potentiostat.library == "operascope.simulators.emulators.fake_eclib" and devices.potentiostat.address.startswith("EMU-VMP300")
    assert devices.camera.serial.startswith("EMU-CAM") and devices.focus_sensor.serial.startswith("EMU-FOCUS")
    assert original.devices.stage.port == 9090  # the input config is not modified


def test_real_drivers_move_the_shared_world(emulated) -> None:
    world, _, config = emulated
    with build(config, "stage") as stage, build(config, "led") as led, build(config, "focus_laser") as laser:
        stage.move_to(z=2_000.0)
        stage.axis("z").wait_settled(timeout_s=3.0, poll_s=0.01)
        assert abs(world.stage_position_nm("z") - 2_000.0) < 10.0
        led.set_current(0.3)
        led.enable(True)
        laser.set_power(0.004)
        laser.enable(True)
        light = world.light_state()
        assert light["led_enabled"] and light["led_current_a"] == pytest.approx(0.3)
        assert light["laser_enabled"] and light["laser_power_w"] == pytest.approx(0.004)
        assert led.state().measured_current_a == pytest.approx(0.3)
    light = world.light_state()
    assert not light["led_enabled"] and not light["laser_enabled"]  # the drivers left the sources off


def test_cameras_and_potentiostat_through_their_fake_libraries(emulated) -> None:
    world, _, config = emulated
    with build(config, "camera") as camera, build(config, "led") as led, build(config, "potentiostat") as pot:
        led.set_current(0.5)
        led.enable(True)
        camera.configure(2.5, 10.0, Roi(0, 0, 64, 48), "Mono16")
        camera.start()
        frame = camera.read(timeout_s=3.0)
        camera.stop()
        assert frame.pixels.shape == (48, 64) and float(frame.pixels.mean()) > 100.0  # lit by the world's LED
        pot.start(OCV(duration_s=10.0, record_every_s=1.0))
        deadline = time.monotonic() + 5.0
        points = []
        while pot.is_running() and time.monotonic() < deadline:
            points += pot.read_new()
            time.sleep(0.05)
        points += pot.read_new()
        assert len(points) == 11 and all(3.0 < p.voltage_v < 4.5 for p in points)
    with build(config, "focus_sensor") as line:
        profile = line.read_profile(timeout_s=3.0)
        assert profile.values.size == 256


def test_stop_takes_every_emulator_down() -> None:
    config = load_config(preset_path("emulated"))
    endpoints, stop = start_emulators(World(config), config)
    devices = endpoints.devices
    stop()
    with pytest.raises(OSError):
        socket.create_connection((devices.stage.host, devices.stage.port), timeout=0.5).close()
    assert not os.path.exists(devices.focus_laser.port)
    assert not os.path.exists(devices.led.visa_library.removesuffix("@sim"))
    with pytest.raises(fake_eclib.EcLibFailure):  # the fake DLL has no instrument there any more (-201)
        fake_eclib.BUS.instrument(devices.potentiostat.address)
    with pytest.raises(DeviceLost):
        FlirCamera(serial=devices.camera.serial, sdk_module="operascope.simulators.emulators.fake_pyspin").open()


def test_only_real_roles_get_emulators_and_two_worlds_do_not_mix() -> None:
    simulated = load_config(overrides={"devices": {"stage": {"driver": "attocube", "output_settle_s": 0.0}}, "simulation": {"start_emulators": True}})
    first_world, second_world = World(simulated), World(simulated)
    first, stop_first = start_emulators(first_world, simulated)
    second, stop_second = start_emulators(second_world, simulated)
    try:
        assert first.devices.led.driver == "simulated" and first.devices.focus_laser.driver == "simulated"
        assert first.devices.stage.port != second.devices.stage.port
        with build(first, "stage") as stage_one, build(second, "stage") as stage_two:
            stage_one.move_to(x=1_000.0)
            stage_two.move_to(x=-1_000.0)
            stage_one.axis("x").wait_settled(2.0, poll_s=0.01)
            stage_two.axis("x").wait_settled(2.0, poll_s=0.01)
        assert abs(first_world.stage_position_nm("x") - 1_000.0) < 10.0
        assert abs(second_world.stage_position_nm("x") + 1_000.0) < 10.0
        assert np.sign(first_world.stage_position_nm("x")) != np.sign(second_world.stage_position_nm("x"))
    finally:
        stop_first()
        stop_second()


def test_rig_factory_opens_the_emulated_rig() -> None:
    from operascope.acquisition.rig import build_rig

    rig = build_rig(load_config(preset_path("emulated")))
    stage_port = rig.config.devices.stage.port
    try:
        rig.open()
        drivers = {role: type(device).__name__ for role, device in rig.devices.items()}
        assert drivers == {"camera": "FlirCamera", "stage": "AttocubeStage", "led": "ThorlabsLed", "focus_laser": "SerialLaser",
                           "focus_sensor": "FlirLineSensor", "potentiostat": "BiologicPotentiostat"}
        assert rig.stage.info().model.startswith("AMC100") and rig.potentiostat.info().model == "VMP300"
    finally:
        problems = rig.close()
    assert problems == []
    with pytest.raises(OSError):  # the emulators went down with the rig
        socket.create_connection(("127.0.0.1", stage_port), timeout=0.5).close()
