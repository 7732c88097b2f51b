"""Start every protocol emulator in-process around ONE simulated World.

:func:`start_emulators` serves the world's simulated devices through the real vendor
protocols, so the real drivers (devices/attocube.py, thorlabs.py, laser.py, biologic.py,
flir.py, focus_sensor.py) run unchanged against them:

- stage: an AMC100 JSON-RPC server on 127.0.0.1, ephemeral port (operascope.simulators.emulators.amc100);
- LED: the pyvisa-sim DC2200 instrument (simulators/dc2200.yaml), coupled to the world's LED
  by :func:`couple_visa_led` (setpoint and output go to the world, measured current and
  interlock come back);
- focus laser: an OBIS-style serial laser on a pseudo-terminal (operascope.simulators.emulators.serial_laser);
- potentiostat: the real easy-biologic package over the fake EC-Lab library (operascope.simulators.emulators.fake_eclib)
  at a unique address;
- camera and focus sensor: the fake PySpin bus (operascope.simulators.emulators.fake_pyspin.attach_world).

Only roles whose driver in the config is a real one get an emulator; the returned config
has their host/port/resource/address/serial fields pointing at the emulators.
"""

from __future__ import annotations

import importlib.resources
import re
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any, Callable

from operascope.config.schema import RigConfig
from operascope.devices.base import DeviceError, DeviceLost, DeviceTimeout, InterlockTripped, LightSource

#: Name of the pyvisa-sim instrument file shipped in this package.
DC2200_YAML = "dc2200.yaml"


def dc2200_yaml_path() -> Path:
    """Path of the packaged pyvisa-sim DC2200 file (works from a non-editable install)."""
    return Path(str(importlib.resources.files("operascope.simulators.emulators").joinpath(DC2200_YAML)))


def couple_visa_led(visa_library: str, resource: str, led: LightSource) -> Callable[[], None]:
    """Couple the pyvisa-sim instrument ``resource`` of ``visa_library`` to a LightSource backend.

    Before each command reaches the instrument, its ``measured_current`` and
    ``interlock_tripped`` properties are refreshed from ``led.state()`` (an open interlock also
    forces ``output`` to 0); after it, a changed ``cc_current`` or ``output`` is applied to
    ``led``. A setpoint above the instrument's ``current_limit`` is refused (old value kept,
    error queued). Backend faults: DeviceTimeout swallows the command (the VISA read times out),
    DeviceLost raises a VISA connection-lost error. Returns a function that undoes the coupling.
    """
    import pyvisa
    from pyvisa import constants
    from pyvisa.errors import VisaIOError

    manager = pyvisa.ResourceManager(visa_library)  # pyvisa caches the library per path: the driver shares it
    device = manager.visalib.devices[pyvisa.rname.to_canonical_name(resource)]
    properties = device._properties  # pyvisa-sim keeps the instrument state here
    original_write = device.write
    lock = threading.Lock()

    def set_property(name: str, value: Any) -> None:
        properties[name].set_value(str(value))

    def coupled_write(data: bytes) -> None:
        data = _boolean_words_as_numbers(data)
        with lock:
            try:
                state = led.state()
            except DeviceTimeout:
                return
            except DeviceLost:
                raise VisaIOError(constants.StatusCode.error_connection_lost) from None
            set_property("measured_current", f"{state.measured_current_a:f}")
            set_property("interlock_tripped", 0 if state.interlock_ok else 1)
            if not state.enabled:
                set_property("output", 0)
            before_current = float(properties["cc_current"].get_value())
            original_write(data)
            current = float(properties["cc_current"].get_value())
            if current != before_current:
                if current > float(properties["current_limit"].get_value()) or current > led.max_current_a:
                    set_property("cc_current", f"{before_current:f}")
                    device.error_response("command_error")
                else:
                    _apply(led.set_current, current)
            output = int(properties["output"].get_value()) == 1
            if output != state.enabled:
                try:
                    led.enable(output)
                except InterlockTripped:
                    set_property("output", 0)
                    set_property("interlock_tripped", 1)
                except DeviceError:
                    set_property("output", int(state.enabled))

    def _apply(function: Callable[[float], None], value: float) -> None:
        try:
            function(value)
        except DeviceError:
            pass

    device.write = coupled_write

    def uncouple() -> None:
        device.write = original_write
        manager.close()

    return uncouple


#: Boolean settings the DC2200 accepts as ON/OFF as well as 1/0 (Thorlabs' PyVISA example sends ON/OFF);
#: pyvisa-sim matches one spelling per property, so the words are turned into numbers before matching.
_BOOLEAN_SETTINGS = re.compile(rb"^(OUTPUT1:STATE)\s+(ON|OFF)(\s*)$", re.IGNORECASE)
#: Real-valued settings: SCPI takes "5" or "1e-2" as well as "5.000000"; pyvisa-sim's "{:f}" only the last.
_REAL_SETTINGS = re.compile(rb"^(SOURCE1:(?:CCURENT:CURRENT|PWM:CURRENT|PWM:FREQUENCY|CURRENT:LIMIT))\s+"
                            rb"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(\s*)$")


def _boolean_words_as_numbers(data: bytes) -> bytes:
    """``data`` in the one spelling the YAML matches (ON/OFF -> 1/0, any real number -> fixed point)."""
    match = _BOOLEAN_SETTINGS.match(data)
    if match is not None:
        return match.group(1).upper() + b" " + (b"1" if match.group(2).upper() == b"ON" else b"0") + match.group(3)
    match = _REAL_SETTINGS.match(data)
    if match is not None:
        return match.group(1) + b" " + f"{float(match.group(2)):f}".encode("ascii") + match.group(3)
    return data


def start_emulators(world: Any, config: RigConfig) -> tuple[RigConfig, Callable[[], None]]:
    """Start the emulators for every role of ``config`` on a real driver, all around ``world``.

    Returns ``(config_with_endpoints, stop)``; ``stop()`` shuts every emulator down (idempotent).
    """
    from operascope.simulators.devices.backends import build_simulated_devices

    backends = build_simulated_devices(world)
    devices = config.devices.model_copy(deep=True)
    stops: list[Callable[[], None]] = []
    tag = uuid.uuid4().hex[:8]  # unique names: several emulated rigs may live in one process (tests, GUI restarts)

    def stop_all() -> None:
        while stops:
            try:
                stops.pop()()
            except Exception:  # noqa: BLE001 - stop the others regardless
                pass

    try:
        if devices.stage.driver == "attocube":
            from operascope.simulators.emulators.amc100 import Amc100Server

            server = Amc100Server(backends["stage"], "127.0.0.1", 0)  # type: ignore[arg-type]
            host, port = server.start()
            stops.append(server.stop)
            devices.stage = devices.stage.model_copy(update={"host": host, "port": port})

        if devices.focus_laser.driver == "serial_laser":
            from operascope.simulators.emulators.serial_laser import SerialLaserEmulator

            laser = SerialLaserEmulator(backends["focus_laser"], seed=world.seed, clock=world.clock)  # type: ignore[arg-type]
            port_path = laser.start()
            stops.append(laser.stop)
            devices.focus_laser = devices.focus_laser.model_copy(update={"port": port_path})

        if devices.led.driver == "thorlabs":
            folder = Path(tempfile.mkdtemp(prefix="operascope-dc2200-"))
            yaml_copy = folder / DC2200_YAML  # one copy per start: pyvisa-sim keeps instrument state per file
            shutil.copyfile(dc2200_yaml_path(), yaml_copy)
            stops.append(lambda: shutil.rmtree(folder, ignore_errors=True))
            visa_library = f"{yaml_copy}@sim"
            led = backends["led"]
            led.open()
            stops.append(led.close)
            resource = "USB0::0x1313::0x80C8::M00000000::INSTR"
            stops.append(couple_visa_led(visa_library, resource, led))  # type: ignore[arg-type]
            devices.led = devices.led.model_copy(update={"visa_library": visa_library, "resource": resource})

        if devices.potentiostat.driver == "biologic":
            from operascope.simulators.emulators import fake_eclib

            address = f"EMU-VMP300-{tag}"
            fake_eclib.attach(address, backends["potentiostat"], channel=devices.potentiostat.channel, clock=world.clock)  # type: ignore[arg-type]
            stops.append(lambda: fake_eclib.detach(address))
            devices.potentiostat = devices.potentiostat.model_copy(update={"address": address, "library": "operascope.simulators.emulators.fake_eclib"})

        camera_real = devices.camera.driver == "flir"
        focus_real = devices.focus_sensor.driver == "flir_line"
        if camera_real or focus_real:
            from operascope.simulators.emulators import fake_pyspin

            camera_serial, focus_serial = f"EMU-CAM-{tag}", f"EMU-FOCUS-{tag}"
            profile_axis = devices.focus_sensor.profile_axis if focus_real else 1
            fake_pyspin.attach_world(world, camera_serial=camera_serial, focus_serial=focus_serial, focus_profile_axis=profile_axis)
            stops.append(lambda: (fake_pyspin.detach(camera_serial), fake_pyspin.detach(focus_serial)))
            if camera_real:
                devices.camera = devices.camera.model_copy(update={"serial": camera_serial, "sdk_module": "operascope.simulators.emulators.fake_pyspin"})
            if focus_real:
                devices.focus_sensor = devices.focus_sensor.model_copy(update={"serial": focus_serial, "sdk_module": "operascope.simulators.emulators.fake_pyspin"})
    except Exception:
        stop_all()
        raise

    return config.model_copy(update={"devices": devices}), stop_all
