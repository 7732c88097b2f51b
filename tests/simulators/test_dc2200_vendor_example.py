"""DC2200 emulator: accepts what Thorlabs' own PyVISA example sends (OUTPUT1:STATE ON/OFF, SOURCE1:PWM:*), refuses an
unknown SCPI header with -113, and the configurable terminal write (write_terminal, default False)."""

from __future__ import annotations

import shutil
import time

import pytest
import pyvisa

from operascope.config.loader import load_config
from operascope.config.schema import ThorlabsLedConfig
from operascope.devices.base import DeviceError
from operascope.devices.thorlabs import ThorlabsError, ThorlabsLed
from operascope.simulators.devices.backends import build_simulated_devices
from operascope.simulators.emulators.rig import couple_visa_led, dc2200_yaml_path
from operascope.simulators.world.world import World

RESOURCE = "USB0::0x1313::0x80C8::M00000000::INSTR"
NO_ERROR = '+0,"No error"'


@pytest.fixture
def visa_library(tmp_path) -> str:
    path = tmp_path / "dc2200.yaml"
    shutil.copyfile(dc2200_yaml_path(), path)
    return f"{path}@sim"


@pytest.fixture
def coupled(visa_library: str):
    world = World(load_config())
    led = build_simulated_devices(world)["led"]
    led.open()
    uncouple = couple_visa_led(visa_library, RESOURCE, led)  # type: ignore[arg-type]
    yield visa_library, world
    uncouple()
    led.close()


def open_instrument(visa_library: str):
    rm = pyvisa.ResourceManager(visa_library)
    return rm, rm.open_resource(RESOURCE, read_termination="\n", write_termination="\n")


def write_ok(instr, command: str) -> None:
    instr.write(command)
    assert instr.query("SYST:ERR?") == NO_ERROR, command


def test_thorlabs_pyvisa_example_sequence_is_accepted(coupled) -> None:
    visa_library, world = coupled
    rm, instr = open_instrument(visa_library)
    try:
        assert instr.query("*IDN?").startswith("Thorlabs,DC2200")
        write_ok(instr, "SOURCE1:MODE CC")
        write_ok(instr, "SOURCE1:CCURENT:CURRENT 0.01")  # the example's spelling: no fixed decimals
        write_ok(instr, "OUTPUT1:STATE ON")
        assert world.led_enabled and instr.query("OUTPUT1:STATE?") == "1"
        time.sleep(0.01)
        assert float(instr.query("SENSE3:CURRENT:DATA?")) == pytest.approx(0.01, abs=1e-3)
        write_ok(instr, "OUTPUT1:STATE OFF")
        assert not world.led_enabled and instr.query("OUTPUT1:STATE?") == "0"
        write_ok(instr, "SOURCE1:MODE PWM")
        write_ok(instr, "SOURCE1:PWM:CURRENT 0.01")
        write_ok(instr, "SOURCE1:PWM:FREQUENCY 5")
        write_ok(instr, "SOURCE1:PWM:DCYCLE 50")
        write_ok(instr, "SOURCE1:PWM:COUNT 20")
        write_ok(instr, "OUTPUT1:STATE ON")
        assert world.led_enabled
        assert float(instr.query("SOURCE1:PWM:CURRENT?")) == pytest.approx(0.01)
        assert instr.query("SOURCE1:PWM:DCYCLE?") == "50" and instr.query("SOURCE1:PWM:COUNT?") == "20"
        write_ok(instr, "OUTPUT1:STATE OFF")
    finally:
        instr.close()
        rm.close()


def test_unknown_scpi_header_is_refused_with_minus_113(coupled) -> None:
    visa_library, world = coupled
    rm, instr = open_instrument(visa_library)
    try:
        instr.write("SOURCE1:BRIGHTNESS 1")
        assert instr.query("SYST:ERR?").startswith("-113")
        assert instr.query("SYST:ERR?") == NO_ERROR  # the queue is emptied by reading it
        instr.write("OUTPUT1:STATE MAYBE")
        assert instr.query("SYST:ERR?").startswith("-113") and not world.led_enabled
    finally:
        instr.close()
        rm.close()
    with ThorlabsLed(RESOURCE, visa_library=visa_library) as led:
        with pytest.raises(ThorlabsError) as info:
            led._setting("SOURCE1:BRIGHTNESS 1")
        assert info.value.code == -113 and "BRIGHTNESS" in info.value.command


def test_write_terminal_is_configurable_and_off_by_default(visa_library: str, monkeypatch) -> None:
    assert ThorlabsLedConfig(driver="thorlabs").write_terminal is False
    settings: list[str] = []
    original = ThorlabsLed._setting

    def recording(self, command: str) -> None:
        settings.append(command)
        original(self, command)

    monkeypatch.setattr(ThorlabsLed, "_setting", recording)
    device = pyvisa.ResourceManager(visa_library).visalib.devices[pyvisa.rname.to_canonical_name(RESOURCE)]
    device._properties["terminal"].set_value("2")  # someone selected terminal 2 on the front panel
    with pytest.raises(DeviceError, match="terminal 2"):
        ThorlabsLed(RESOURCE, visa_library=visa_library).open()  # default: read, refuse, write nothing
    assert not any("TERMINAL" in command for command in settings)
    section = ThorlabsLedConfig(driver="thorlabs", resource=RESOURCE, visa_library=visa_library, write_terminal=True)
    with ThorlabsLed(**section.model_dump(exclude={"driver"})) as led:
        assert "OUTPUT1:TERMINAL 1" in settings and led._query("OUTPUT1:TERMINAL?") == "1"
