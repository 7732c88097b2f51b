"""Simulated focus sensor: the reflected 980 nm line as a 1-D profile.

Line centre (px) = n/2 + slope · (stage z − interface z); the interface drifts with the sample
(``drift_z_nm_s`` plus noise). Intensity follows the laser power (dark when off); outside the
capture range the line leaves the sensor. Profiles are exposed on a grid at
``focus_sensor_rate_hz`` on the virtual clock; ``read_profile`` returns the next one.
Faults: ``timeout`` (DeviceTimeout), ``device_lost`` (DeviceLost until ``reconnect()``).
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING

from operascope.devices.base import DeviceInfo, DeviceLost, DeviceTimeout, FocusSensor, Profile

if TYPE_CHECKING:
    from operascope.simulators.world.world import World


class SimulatedFocusSensor(FocusSensor):
    """A :class:`operascope.devices.base.FocusSensor` fed by the World."""

    def __init__(self, world: World) -> None:
        self._world = world
        self._clock = world.clock
        self._lock = threading.Lock()
        self._open = False
        self._next_index = 0

    @property
    def n_pixels(self) -> int:
        return self._world.sim.focus_sensor_pixels

    @property
    def period_s(self) -> float:
        """Virtual seconds between profiles."""
        return 1.0 / self._world.sim.focus_sensor_rate_hz

    def open(self) -> None:
        with self._lock:
            if self._world.is_lost(self.name):
                raise DeviceLost(self.name, "focus camera not found; check the cable")
            self._open = True
            self._next_index = 0

    def close(self) -> None:
        with self._lock:
            self._open = False

    def info(self) -> DeviceInfo:
        return DeviceInfo(model="Simulated 980 nm line sensor", serial="SIM-FOCUS-0", firmware="sim", driver="simulated")

    @property
    def is_open(self) -> bool:
        return self._open

    def read_profile(self, timeout_s: float = 1.0) -> Profile:
        with self._lock:
            self._require_open()
            if self._world.is_lost(self.name):
                raise DeviceLost(self.name, "focus camera unplugged; call reconnect() when it is back")
            now = self._clock.now_s()
            deadline = now + timeout_s
            if self._world.consume_fault(self.name, "timeout"):
                self._clock.sleep_until_s(deadline)
                raise DeviceTimeout(self.name, f"no profile within {timeout_s:g} s")
            period = self.period_s
            index = max(self._next_index, int(math.ceil(now / period - 1e-9)))
            t_s = index * period
            if t_s > deadline:
                self._clock.sleep_until_s(deadline)
                raise DeviceTimeout(self.name, f"no profile within {timeout_s:g} s (period {period:g} s)")
            self._clock.sleep_until_s(t_s)
            self._next_index = index + 1
            values = self._world.focus_profile_at(t_s, key=index)
            return Profile(values=values, time_s=t_s)

    def reconnect(self) -> None:
        """Re-open after DeviceLost (raises DeviceLost while still absent)."""
        if not self._world.try_reconnect(self.name):
            raise DeviceLost(self.name, "focus camera still not found")
        self._open = True
