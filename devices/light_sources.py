"""Light-source interfaces: the LED (illumination) and the focus-lock laser."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from operascope.devices.device import Device



@dataclass(frozen=True)
class LightState:
    """State of an LED driver."""

    enabled: bool
    current_setpoint_a: float
    measured_current_a: float
    interlock_ok: bool = True


class LightSource(Device):
    """An LED on a current driver."""

    name = "led"

    @property
    @abc.abstractmethod
    def max_current_a(self) -> float:
        """Current limit in A; larger setpoints are refused."""

    @abc.abstractmethod
    def set_current(self, current_a: float) -> None:
        """Set the constant-current setpoint (A). OutOfRange beyond [0, max_current_a]."""

    @abc.abstractmethod
    def enable(self, on: bool) -> None:
        """Switch the output on or off."""

    @abc.abstractmethod
    def state(self) -> LightState:
        """Read back output state and currents."""


@dataclass(frozen=True)
class LaserState:
    """State of a laser."""

    enabled: bool
    power_setpoint_w: float
    power_w: float
    interlock_ok: bool
    fault_word: int = 0


class Laser(Device):
    """A laser with emission on/off and a power setpoint (W)."""

    name = "focus_laser"

    @property
    @abc.abstractmethod
    def power_limits_w(self) -> tuple[float, float]:
        """Allowed power setpoints (low, high) in W."""

    @abc.abstractmethod
    def set_power(self, power_w: float) -> None:
        """Set the power setpoint (W). OutOfRange outside ``power_limits_w``."""

    @abc.abstractmethod
    def enable(self, on: bool) -> None:
        """Emission on/off. InterlockTripped when the interlock is open."""

    @abc.abstractmethod
    def state(self) -> LaserState:
        """Read back emission, setpoint, actual power and interlock."""
