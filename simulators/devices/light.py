"""Simulated Thorlabs LED (on a DC2200-like driver) and 980 nm focus laser.

The LED's current scales the camera signal (relative to ``reference_led_current_a``); the
laser's power scales the focus-sensor line (relative to ``focus_reference_power_w``).
Faults: ``interlock_trip`` forces the output off and makes ``enable(True)`` raise
InterlockTripped (for the window, or for the next ``count`` attempts); ``timeout`` makes calls
raise DeviceTimeout; ``device_lost`` raises DeviceLost until ``reconnect()``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from operascope.devices.base import (
    DeviceInfo,
    DeviceLost,
    DeviceTimeout,
    InterlockTripped,
    Laser,
    LaserState,
    LightSource,
    LightState,
    validate_in_range,
)

if TYPE_CHECKING:
    from operascope.simulators.world.world import World


class _SimulatedSource:
    """Shared open/close/fault handling of the two sources."""

    name = "source"

    def __init__(self, world: World) -> None:
        self._world = world
        self._open = False
        self._lock = threading.Lock()

    def _check_link(self) -> None:
        self._require_open()  # type: ignore[attr-defined]
        if self._world.is_lost(self.name):
            raise DeviceLost(self.name, "driver not responding (unplugged?); call reconnect() when it is back")
        if self._world.consume_fault(self.name, "timeout"):
            raise DeviceTimeout(self.name, "driver did not answer in time; check the cable")

    @property
    def is_open(self) -> bool:
        return self._open

    def reconnect(self) -> None:
        """Re-open after DeviceLost (raises DeviceLost while still absent); output stays off."""
        if not self._world.try_reconnect(self.name):
            raise DeviceLost(self.name, "driver still not responding")
        self._open = True


class SimulatedLed(_SimulatedSource, LightSource):
    """LED on a constant-current driver; current in A."""

    name = "led"

    def open(self) -> None:
        with self._lock:
            if self._world.is_lost(self.name):
                raise DeviceLost(self.name, "LED driver not found; check the USB cable")
            self._world.set_led(enabled=False)
            self._open = True

    def close(self) -> None:
        with self._lock:
            if self._open:
                self._world.set_led(enabled=False)
            self._open = False

    def info(self) -> DeviceInfo:
        return DeviceInfo(model="Simulated DC2200 + SOLIS-740C", serial="SIM-LED-0", firmware="sim", driver="simulated")

    @property
    def max_current_a(self) -> float:
        return self._world.sim.led_max_current_a

    def set_current(self, current_a: float) -> None:
        self._check_link()
        value = validate_in_range(self.name, "LED current", current_a, 0.0, self.max_current_a, "A")
        self._world.set_led(current_a=value)

    def enable(self, on: bool) -> None:
        self._check_link()
        if on and self._world.consume_fault(self.name, "interlock_trip"):
            raise InterlockTripped(self.name, "interlock open: close the enclosure / reconnect the interlock, then enable again")
        self._world.set_led(enabled=bool(on))

    def state(self) -> LightState:
        self._check_link()
        light = self._world.light_state()
        on = bool(light["led_enabled"])
        return LightState(
            enabled=on,
            current_setpoint_a=float(light["led_current_a"]),
            measured_current_a=float(light["led_current_a"]) if on else 0.0,
            interlock_ok=bool(light["led_interlock_ok"]),
        )


class SimulatedLaser(_SimulatedSource, Laser):
    """980 nm focus laser; power in W."""

    name = "focus_laser"

    def open(self) -> None:
        with self._lock:
            if self._world.is_lost(self.name):
                raise DeviceLost(self.name, "laser not found on the serial port; check the cable")
            self._world.set_laser(enabled=False)
            self._open = True

    def close(self) -> None:
        with self._lock:
            if self._open:
                self._world.set_laser(enabled=False)
            self._open = False

    def info(self) -> DeviceInfo:
        return DeviceInfo(model="Simulated 980 nm laser diode", serial="SIM-LASER-0", firmware="sim", driver="simulated")

    @property
    def power_limits_w(self) -> tuple[float, float]:
        return (0.0, self._world.sim.laser_max_power_w)

    def set_power(self, power_w: float) -> None:
        self._check_link()
        value = validate_in_range(self.name, "laser power", power_w, *self.power_limits_w, "W")
        self._world.set_laser(power_w=value)

    def enable(self, on: bool) -> None:
        self._check_link()
        if on and self._world.consume_fault(self.name, "interlock_trip"):
            raise InterlockTripped(self.name, "interlock open: emission refused; close the interlock, then enable again")
        self._world.set_laser(enabled=bool(on))

    def state(self) -> LaserState:
        self._check_link()
        light = self._world.light_state()
        on = bool(light["laser_enabled"])
        return LaserState(
            enabled=on,
            power_setpoint_w=float(light["laser_power_w"]),
            power_w=float(light["laser_power_w"]) if on else 0.0,
            interlock_ok=bool(light["laser_interlock_ok"]),
        )
