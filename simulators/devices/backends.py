"""Build the simulated devices of a rig around one shared :class:`World`."""

from __future__ import annotations

from operascope.devices.base import Device
from operascope.simulators.devices.camera import SimulatedCamera
from operascope.simulators.devices.focus_sensor import SimulatedFocusSensor
from operascope.simulators.devices.light import SimulatedLaser, SimulatedLed
from operascope.simulators.devices.potentiostat import SimulatedPotentiostat
from operascope.simulators.devices.stage import SimulatedStage
from operascope.simulators.world.world import World

#: Device roles, as in operascope.config.schema.DevicesConfig.
from operascope.devices.base import ROLES  # noqa: E402 - defined once, re-exported


def build_simulated_devices(world: World) -> dict[str, Device]:
    """One simulated device per role (not yet opened), all sharing ``world``."""
    return {
        "camera": SimulatedCamera(world),
        "stage": SimulatedStage(world),
        "led": SimulatedLed(world),
        "focus_laser": SimulatedLaser(world),
        "focus_sensor": SimulatedFocusSensor(world),
        "potentiostat": SimulatedPotentiostat(world),
    }
