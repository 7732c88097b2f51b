"""Thorlabs DC2200 driver (devices/thorlabs.py) against the pyvisa-sim instrument (simulators/dc2200.yaml)."""

from __future__ import annotations

import shutil

import pytest
import pyvisa

from operascope.config.loader import load_config
from operascope.config.schema import ThorlabsLedConfig
from operascope.devices.base import DeviceError, DeviceLost, DeviceTimeout, InterlockTripped, MissingVendorLibrary, NotOpen, OutOfRange
from operascope.devices.thorlabs import ThorlabsError, ThorlabsLed, parse_error_entry
from operascope.simulators.devices.backends import build_simulated_devices
from operascope.simulators.emulators.rig import couple_visa_led, dc2200_yaml_path
from operascope.simulators.world.world import World

RESOURCE = "USB0::0x1313::0x80C8::M00000000::INSTR"


@pytest.fixture
def visa_library(tmp_path) -> str:
    """A private copy of the YAML (pyvisa-sim keeps one instrument state per file path)."""
    path = tmp_path / "dc2200.yaml"
    shutil.copyfile(dc2200_yaml_path(), path)
    return f"{path}@sim"


@pytest.fixture
def world() -> World:
    return World(load_config())


@pytest.fixture
def coupled(visa_library: str, world: World):
    led = build_simulated_devices(world)["led"]
    led.open()
    uncouple = couple_visa_led(visa_library, RESOURCE, led)  # type: ignore[arg-type]
    yield visa_library
    uncouple()
    led.close()


def sim_device(visa_library: str):
    return pyvisa.ResourceManager(visa_library).visalib.devices[pyvisa.rname.to_canonical_name(RESOURCE)]


def test_plain_yaml_instrument_start_up_sequence(visa_library: str) -> None:
    """Without any coupling: the driver's canonical strings all match the YAML (no -113 anywhere)."""
    config = ThorlabsLedConfig(driver="thorlabs", resource=RESOURCE, visa_library=visa_library, current_limit_a=0.8, timeout_s=0.5)
    led = ThorlabsLed(**config.model_dump(exclude={"driver"}))
    with led:
        info = led.info()
        assert info.model.startswith("Thorlabs DC2200") and info.serial == "M00000000" and info.firmware == "1.2.0"
        props = sim_device(visa_library)._properties
        assert props["terminal"].get_value() == 1 and props["mode"].get_value() == "CC"
        assert props["current_limit"].get_value() == pytest.approx(0.8)
        led.set_current(0.25)
        led.enable(True)
        state = led.state()
        assert state.enabled and state.current_setpoint_a == pytest.approx(0.25) and state.interlock_ok
        assert props["cc_current"].get_value() == pytest.approx(0.25)
    assert not led.is_open
    assert sim_device(visa_library)._properties["output"].get_value() == 0  # output off on close
    with pytest.raises(NotOpen):
        led.state()


def test_coupled_to_the_world_led(coupled: str, world: World) -> None:
    with ThorlabsLed(resource=RESOURCE, visa_library=coupled, current_limit_a=1.0, timeout_s=0.5) as led:
        led.set_current(0.4)
        led.enable(True)
        assert world.led_enabled and world.led_current_a == pytest.approx(0.4)
        assert world.light_state()["led_current_a"] == pytest.approx(0.4)
        state = led.state()
        assert state.measured_current_a == pytest.approx(0.4) and state.enabled
        led.enable(False)
        assert not world.led_enabled and led.state().measured_current_a == 0.0


def test_out_of_range_current_refused_before_sending(visa_library: str) -> None:
    with ThorlabsLed(resource=RESOURCE, visa_library=visa_library, current_limit_a=0.5, timeout_s=0.5) as led:
        props = sim_device(visa_library)._properties
        for bad in (0.6, -0.1, float("nan"), "bright"):
            with pytest.raises(OutOfRange, match="LED current"):
                led.set_current(bad)  # type: ignore[arg-type]
        assert props["cc_current"].get_value() == 0.0


def test_error_queue_is_read_after_every_setting(coupled: str) -> None:
    with ThorlabsLed(resource=RESOURCE, visa_library=coupled, current_limit_a=1.0, timeout_s=0.5) as led:
        led.current_limit_a = 5.0  # the driver now believes a larger limit than the instrument has (1 A)
        with pytest.raises(ThorlabsError, match="-113") as info:
            led.set_current(2.0)
        assert info.value.code == -113 and "CCURENT" in info.value.command
        assert led.state().current_setpoint_a == 0.0  # refused by the instrument: unchanged
        with pytest.raises(ThorlabsError, match="Undefined header"):
            led._setting("SOURCE1:MODE BRIGHT")  # not a valid mode: the YAML rejects it
        led.set_current(0.3)  # queue drained: the next setting is clean
    assert parse_error_entry('+0,"No error"') == (0, "No error")


def test_garbled_reply(visa_library: str) -> None:
    with ThorlabsLed(resource=RESOURCE, visa_library=visa_library, timeout_s=0.5) as led:
        device = sim_device(visa_library)
        original = device.write

        def garbling_write(data: bytes) -> None:  # the next query is answered with noise
            device.write = original
            device._output_buffers.append(bytearray(b"\x15#noise\n"))

        device.write = garbling_write
        with pytest.raises(DeviceError, match="garbled"):
            led.state()
        assert led.state().current_setpoint_a == 0.0  # the session is still usable


def test_interlock_trip(coupled: str, world: World) -> None:
    with ThorlabsLed(resource=RESOURCE, visa_library=coupled, timeout_s=0.5) as led:
        led.set_current(0.2)
        led.enable(True)
        world.inject_fault("led", "interlock_trip", duration_s=5.0)
        state = led.state()
        assert not state.enabled and not state.interlock_ok and not world.led_enabled
        with pytest.raises(InterlockTripped):
            led.enable(True)
        assert not world.led_enabled
        world.clear_faults()
        led.enable(True)
        assert world.led_enabled


def test_timeout_then_recovers(coupled: str, world: World) -> None:
    with ThorlabsLed(resource=RESOURCE, visa_library=coupled, timeout_s=0.2) as led:
        world.inject_fault("led", "timeout", count=1)
        with pytest.raises(DeviceTimeout, match="no reply"):
            led.state()
        assert led.is_open
        assert led.state().interlock_ok


def test_unplugged_mid_stream_closes_the_session_and_comes_back(coupled: str, world: World) -> None:
    led = ThorlabsLed(resource=RESOURCE, visa_library=coupled, timeout_s=0.3)
    led.open()
    led.set_current(0.1)
    world.inject_fault("led", "device_lost", duration_s=0.2)
    with pytest.raises(DeviceLost, match="VISA error"):
        led.set_current(0.2)
    assert not led.is_open and led._rm is None  # session and resource manager closed
    with pytest.raises(DeviceLost, match="reconnect"):
        led.state()
    world.clock.sleep_s(0.25)
    assert world.try_reconnect("led")
    led.reconnect()
    state = led.state()
    assert not state.enabled and state.current_setpoint_a == 0.0  # back in the safe start-up state
    led.close()


@pytest.mark.filterwarnings("ignore:read string doesn't end")
def test_wrong_resource_fails_cleanly(visa_library: str) -> None:
    led = ThorlabsLed(resource="USB0::0x1313::0x80C8::NOPE::INSTR", visa_library=visa_library, timeout_s=0.2)
    with pytest.raises(DeviceError, match="NOPE"):
        led.open()
    assert not led.is_open and led._rm is None


def test_missing_pyvisa_is_a_clear_error(monkeypatch) -> None:
    import sys

    from operascope.devices.base import MissingVendorLibrary

    monkeypatch.setitem(sys.modules, "pyvisa", None)  # as if pyvisa were not installed
    led = ThorlabsLed()
    with pytest.raises(MissingVendorLibrary, match="pip install"):
        led.open()
    assert not led.is_open


def test_unloadable_visa_library_is_a_clear_error(tmp_path) -> None:
    led = ThorlabsLed(visa_library=f"{tmp_path / 'missing.yaml'}@sim")
    with pytest.raises(MissingVendorLibrary, match="cannot load visa_library"):
        led.open()
    assert not led.is_open
