"""ProfileTap: a pass-through FocusSensor that keeps the newest profile for display.

The focus lock owns the sensor while it runs; the GUI must not read it then. Wrapping the sensor
when the rig is built lets the window show the very profiles the lock uses, without another read.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from operascope.devices.base import DeviceInfo, FocusSensor, Profile


class ProfileTap(FocusSensor):
    """Delegates every call to ``sensor`` and remembers the last profile read (thread-safe)."""

    def __init__(self, sensor: FocusSensor) -> None:
        self._sensor = sensor
        self._lock = threading.Lock()
        self._latest: Profile | None = None
        self._reads = 0
        self.name = sensor.name

    def open(self) -> None:
        self._sensor.open()

    def close(self) -> None:
        self._sensor.close()

    def info(self) -> DeviceInfo:
        return self._sensor.info()

    @property
    def is_open(self) -> bool:
        return self._sensor.is_open

    @property
    def n_pixels(self) -> int:
        return self._sensor.n_pixels

    def read_profile(self, timeout_s: float = 1.0) -> Profile:
        profile = self._sensor.read_profile(timeout_s)
        with self._lock:
            self._latest = profile
            self._reads += 1
        return profile

    def latest(self) -> tuple[Profile | None, int]:
        """(newest profile or None, number of profiles read so far)."""
        with self._lock:
            return self._latest, self._reads

    def __getattr__(self, name: str) -> Any:  # driver-specific extras (e.g. reconnect) pass through
        return getattr(self._sensor, name)


def tapped_rig_factory(build_rig: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap a rig factory so the built rig's focus sensor is a :class:`ProfileTap`."""

    def build(config: Any) -> Any:
        rig = build_rig(config)
        rig.devices["focus_sensor"] = ProfileTap(rig.devices["focus_sensor"])
        return rig

    return build
