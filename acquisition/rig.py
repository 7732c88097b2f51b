"""Rig factory: builds the six devices of a configuration, opens and closes them in order.

Driver "simulated" uses the simulator (one shared ``operascope.simulators.world.world.World``); any other driver
is the real driver class, imported lazily by name and constructed with its config section's
fields as keyword arguments (minus ``driver``).
"""

from __future__ import annotations

import importlib
import inspect
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from operascope.config.schema import RigConfig
from operascope.devices.base import Camera, Clock, Device, DeviceError, FocusSensor, Laser, LightSource, Potentiostat, Stage, WallClock

from operascope.devices.base import ROLES  # noqa: E402 - defined once, re-exported

log = logging.getLogger(__name__)

REAL_DRIVERS: dict[str, str] = {
    "flir": "operascope.devices.flir.FlirCamera",
    "attocube": "operascope.devices.attocube.AttocubeStage",
    "thorlabs": "operascope.devices.thorlabs.ThorlabsLed",
    "serial_laser": "operascope.devices.laser.SerialLaser",
    "flir_line": "operascope.devices.focus_sensor.FlirLineSensor",
    "biologic": "operascope.devices.biologic.BiologicPotentiostat",
}


class RigError(RuntimeError):
    """The rig could not be assembled (a driver is missing or a device failed to open)."""


@dataclass
class Rig:
    """The devices of one configuration, their shared clock and (in simulation) the world."""

    config: RigConfig
    devices: dict[str, Device]
    clock: Clock
    world: Any = None
    stop_emulators: Callable[[], None] | None = None
    opened: list[str] = field(default_factory=list)

    @property
    def camera(self) -> Camera:
        return self.devices["camera"]  # type: ignore[return-value]

    @property
    def stage(self) -> Stage:
        return self.devices["stage"]  # type: ignore[return-value]

    @property
    def led(self) -> LightSource:
        return self.devices["led"]  # type: ignore[return-value]

    @property
    def laser(self) -> Laser:
        return self.devices["focus_laser"]  # type: ignore[return-value]

    @property
    def focus_sensor(self) -> FocusSensor:
        return self.devices["focus_sensor"]  # type: ignore[return-value]

    @property
    def potentiostat(self) -> Potentiostat:
        return self.devices["potentiostat"]  # type: ignore[return-value]

    def open(self) -> None:
        """Open every device in ROLES order; on failure close those already open and raise."""
        for role in ROLES:
            try:
                self.devices[role].open()
            except Exception:
                log.error("%s failed to open; closing the devices already open", role)
                self.close()
                raise
            log.info("%s opened (%s)", role, type(self.devices[role]).__name__)
            self.opened.append(role)

    def close(self) -> list[str]:
        """Close opened devices in reverse order, then the emulators. Returns problems (never raises)."""
        problems = []
        for role in reversed(self.opened):
            try:
                self.devices[role].close()
            except Exception as exc:  # noqa: BLE001 - keep closing the others
                log.warning("%s: close failed", role, exc_info=True)
                problems.append(f"{role}: close failed: {exc}")
        self.opened.clear()
        if self.stop_emulators is not None:
            try:
                self.stop_emulators()
            except Exception as exc:  # noqa: BLE001
                log.warning("emulators: stop failed", exc_info=True)
                problems.append(f"emulators: stop failed: {exc}")
            self.stop_emulators = None
        return problems


def _import_class(dotted: str) -> type:
    module_name, _, class_name = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RigError(f"driver module {module_name} cannot be imported ({exc})") from exc
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise RigError(f"driver class {dotted} does not exist") from None


def _needs_world(config: RigConfig) -> bool:
    return any(getattr(config.devices, r).driver == "simulated" for r in ROLES) or config.simulation.start_emulators


def build_rig(config: RigConfig) -> Rig:
    """Create (not open) the devices of ``config``."""
    world = None
    stop_emulators = None
    clock: Clock = WallClock()
    if _needs_world(config):
        try:
            from operascope.simulators.world.world import World
        except ImportError as exc:
            raise RigError(f"the simulator is not available ({exc}); use real drivers in the config") from exc
        world = World(config)
        clock = world.clock
    if config.simulation.start_emulators:
        from operascope.simulators.emulators.rig import start_emulators

        config, stop_emulators = start_emulators(world, config)
    simulated: dict[str, Device] = {}
    if any(getattr(config.devices, r).driver == "simulated" for r in ROLES):
        from operascope.simulators.devices.backends import build_simulated_devices

        simulated = build_simulated_devices(world)
    devices: dict[str, Device] = {}
    try:
        for role in ROLES:
            section = getattr(config.devices, role)
            if section.driver == "simulated":
                devices[role] = simulated[role]
                continue
            cls = _import_class(REAL_DRIVERS[section.driver])
            kwargs = section.model_dump(exclude={"driver"})
            if "clock" in inspect.signature(cls).parameters:
                kwargs["clock"] = clock  # one time base for frames, echem and logs
            devices[role] = cls(**kwargs)
    except Exception:
        if stop_emulators is not None:
            stop_emulators()
        raise
    return Rig(config, devices, clock, world, stop_emulators)


def describe_device(role: str, device: Device, driver: str) -> tuple[str, str, str, str]:
    """(role, driver, "model / serial", status) after trying to open ``device``; closes it again."""
    try:
        device.open()
        try:
            info = device.info()
            ident = f"{info.model} / {info.serial}"
        finally:
            device.close()
        return role, driver, ident, "answering"
    except DeviceError as exc:
        return role, driver, "-", f"error: {exc}"
    except Exception as exc:  # noqa: BLE001 - the table must list every role
        return role, driver, "-", f"error: {type(exc).__name__}: {exc}"
