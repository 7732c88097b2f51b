"""980 nm serial laser driver (devices/laser.py) against the pty emulator (simulators/serial_laser.py)."""

from __future__ import annotations

import os
import time

import pytest
import serial

from operascope.config.loader import load_config
from operascope.config.schema import SerialLaserConfig
from operascope.devices.base import DeviceError, DeviceLost, DeviceTimeout, InterlockTripped, NotOpen, OutOfRange
from operascope.devices.laser import LaserError, SerialLaser
from operascope.simulators.devices.backends import build_simulated_devices
from operascope.simulators.emulators.serial_laser import FAULT_INTERLOCK, SerialLaserEmulator
from operascope.simulators.world.world import World


@pytest.fixture
def world() -> World:
    return World(load_config())


@pytest.fixture
def emulator(world: World, tmp_path):
    emu = SerialLaserEmulator(build_simulated_devices(world)["focus_laser"], link_path=tmp_path / "ttyLASER0", cdrh_delay_s=0.3)
    emu.start()
    yield emu
    emu.stop()


def make_laser(emulator: SerialLaserEmulator, **kw) -> SerialLaser:
    options = dict(port=emulator.port_path, timeout_s=0.3, max_power_w=0.02)
    options.update(kw)
    return SerialLaser(**options)


def test_raw_serial_client_sees_obis_framing(emulator: SerialLaserEmulator) -> None:
    with serial.Serial(emulator.port_path, timeout=1.0) as port:
        port.write(b"SYST:COMM:PROM Off\r")  # handshake still off: no OK, only the (last) prompt
        assert port.read_until(b">") == b"OBIS Command >"
        port.write(b"SYST:COMM:HAND On\r")
        assert port.readline() == b"OK\r\n"
        port.write(b"SOUR:POW:LIM:HIGH?\r")
        assert port.readline() == b"0.050000\r\n" and port.readline() == b"OK\r\n"
        port.write(b"sour:am:stat?\r\n")  # lower case and CR LF accepted
        assert port.readline() == b"OFF\r\n" and port.readline() == b"OK\r\n"
        port.write(b"FOO:BAR 1\r")
        assert port.readline() == b"ERR-100\r\n"


def test_open_power_emission_state_close(emulator: SerialLaserEmulator, world: World) -> None:
    config = SerialLaserConfig(driver="serial_laser", port=emulator.port_path, timeout_s=0.3, max_power_w=0.02)
    laser = SerialLaser(**config.model_dump(exclude={"driver"}))
    with laser:
        assert "980" in laser.info().model and laser.info().serial == emulator.serial_number
        assert laser.power_limits_w == (0.0, 0.02)  # the config cap is below the laser's 0.05 W
        assert emulator.mode == "CWP"
        laser.set_power(0.01)
        laser.enable(True)
        assert world.laser_enabled and world.laser_power_w == pytest.approx(0.01)  # the world's focus sensor sees it
        state = laser.state()
        assert state.enabled and state.power_setpoint_w == pytest.approx(0.01)
        assert state.power_w == pytest.approx(0.01, abs=1e-4) and state.interlock_ok and state.fault_word == 0
        laser.enable(False)
        assert laser.state().power_w == 0.0 and not world.laser_enabled
        laser.enable(True)
    assert not laser.is_open and not world.laser_enabled  # close switched emission off
    with pytest.raises(NotOpen):
        laser.state()


def test_out_of_range_power_refused_before_sending(emulator: SerialLaserEmulator) -> None:
    with make_laser(emulator) as laser:
        sent = emulator.command_count
        for bad in (0.03, -0.001, float("inf"), "lots"):
            with pytest.raises(OutOfRange, match="laser power"):
                laser.set_power(bad)  # type: ignore[arg-type]
        assert emulator.command_count == sent


def test_device_error_reply(emulator: SerialLaserEmulator) -> None:
    with make_laser(emulator, max_power_w=1.0) as laser:
        laser._limits_w = (0.0, 1.0)  # pretend the driver believed a wrong limit: the laser itself refuses
        with pytest.raises(LaserError, match="ERR-102"):
            laser.set_power(0.5)
        with pytest.raises(LaserError, match="unknown command"):
            laser._exchange("SOUR:NONSENSE 3")
        assert laser.state().power_setpoint_w < 0.06


def test_timeout_then_recovers(emulator: SerialLaserEmulator) -> None:
    with make_laser(emulator) as laser:
        emulator.muted = True
        t0 = time.monotonic()
        with pytest.raises(DeviceTimeout, match="SOUR:AM:STAT"):
            laser.state()
        assert time.monotonic() - t0 < 1.0
        emulator.muted = False
        assert laser.state().enabled is False


def test_garbled_reply(emulator: SerialLaserEmulator) -> None:
    with make_laser(emulator) as laser:
        emulator.garble_next()
        with pytest.raises(DeviceError, match="garbled"):
            laser.state()
        assert laser.state().interlock_ok


def test_interlock_trip_forces_emission_off_and_refuses(emulator: SerialLaserEmulator, world: World) -> None:
    with make_laser(emulator) as laser:
        laser.set_power(0.005)
        laser.enable(True)
        emulator.open_interlock()
        state = laser.state()
        assert not state.enabled and not state.interlock_ok and state.fault_word & FAULT_INTERLOCK
        assert not world.laser_enabled
        sent = emulator.command_count
        with pytest.raises(InterlockTripped, match="interlock open"):
            laser.enable(True)
        assert emulator.commands_since(sent) == ["SYST:LOCK?"]  # asked, then refused: emission was never requested
        emulator.close_interlock()
        laser.enable(True)
        assert world.laser_enabled
        # the simulated world's interlock fault acts through the emulator too
        world.inject_fault("focus_laser", "interlock_trip", duration_s=30.0)
        assert not laser.state().enabled
        with pytest.raises(InterlockTripped):
            laser.enable(True)
        world.clear_faults()
        laser.enable(True)
        assert laser.state().enabled


def test_unplugged_mid_stream_and_back(emulator: SerialLaserEmulator) -> None:
    laser = make_laser(emulator)
    laser.open()
    laser.set_power(0.004)
    emulator.unplug()
    with pytest.raises(DeviceLost, match="serial port"):
        laser.state()
    assert not laser.is_open  # the port was closed after the error
    with pytest.raises(DeviceLost, match="reconnect"):
        laser.state()
    with pytest.raises(DeviceLost, match="cannot open"):
        laser.reconnect()
    emulator.replug()
    laser.reconnect()
    assert laser.state().enabled is False  # back, emission off after reconnect
    laser.close()


def test_world_device_lost_unplugs_until_back(emulator: SerialLaserEmulator, world: World) -> None:
    with make_laser(emulator) as laser:
        world.inject_fault("focus_laser", "device_lost", duration_s=0.3)
        with pytest.raises((DeviceLost, DeviceTimeout)):
            laser.state()
        deadline = time.monotonic() + 2.0
        while not os.path.exists(emulator.port_path) and time.monotonic() < deadline:
            time.sleep(0.02)
        laser.reconnect()
        assert laser.state().interlock_ok


def test_missing_port_is_device_lost_and_nothing_left_open(tmp_path) -> None:
    laser = SerialLaser(port=str(tmp_path / "no-such-tty"), timeout_s=0.2)
    with pytest.raises(DeviceLost, match="no-such-tty"):
        laser.open()
    assert not laser.is_open


def test_missing_pyserial_is_a_clear_error(monkeypatch) -> None:
    import sys

    from operascope.devices.base import MissingVendorLibrary

    monkeypatch.setitem(sys.modules, "serial", None)  # as if pyserial were not installed
    laser = SerialLaser(port="/dev/ttyUSB0")
    with pytest.raises(MissingVendorLibrary, match="pip install"):
        laser.open()
    assert not laser.is_open


def test_without_the_handshake_no_ok_comes_back(emulator: SerialLaserEmulator) -> None:
    """The bug of issue 13: a driver that never sends SYST:COMM:HAND On waits for an OK that never comes."""
    with serial.Serial(emulator.port_path, timeout=0.3) as port:
        port.write(b"SOUR:AM:STAT OFF\r")
        assert b"OK" not in port.read(64)
        port.write(b"SYST:COMM:HAND?\r")
        assert port.read(64).startswith(b"OFF\r\n")  # the value, no OK, then the prompt
    with make_laser(emulator) as laser:  # the driver switches it on and the prompt off
        assert emulator.handshake and not emulator.prompt and laser.info().firmware == "EMU-1.0"


def test_emission_only_after_the_cdrh_delay(emulator: SerialLaserEmulator, world: World) -> None:
    emulator.cdrh_delay_s = 1.0
    with serial.Serial(emulator.port_path, timeout=0.5) as port:
        port.write(b"SYST:COMM:HAND On\r")
        port.read_until(b"OK\r\n")
        port.write(b"SOUR:AM:STAT ON\r")
        port.read_until(b"OK\r\n")
        port.reset_input_buffer()
        port.write(b"SYST:STAT?\r")
        status = int(port.readline().strip().decode().replace(emulator_prompt(), ""), 16)
        assert not status & 0x2 and not world.laser_enabled  # on, but no emission during the delay
        port.write(b"SOUR:AM:STAT OFF\r")
        port.read_until(b"OK\r\n")
    with make_laser(emulator) as laser:
        laser.set_power(0.01)
        started = time.monotonic()
        laser.enable(True)  # returns once the emission bit is set
        assert time.monotonic() - started >= 0.9 and laser.status_word() & 0x2 and world.laser_enabled


def emulator_prompt() -> str:
    from operascope.simulators.emulators.serial_laser import PROMPT
    return PROMPT
