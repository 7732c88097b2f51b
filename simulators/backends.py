"""Build the simulated devices of a rig around one shared :class:`World`."""

from __future__ import annotations

from devices.base import Device
from simulators.sim_camera import SimulatedCamera
from simulators.sim_focus_sensor import SimulatedFocusSensor
from simulators.sim_light import SimulatedLaser, SimulatedLed
from simulators.sim_potentiostat import SimulatedPotentiostat
from simulators.sim_stage import SimulatedStage
from simulators.world import World

#: Device roles, as in config.schema.DevicesConfig.
ROLES = ("camera", "stage", "led", "focus_laser", "focus_sensor", "potentiostat")


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
