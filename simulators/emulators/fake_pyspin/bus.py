"""What the real SDK keeps per process: the attached cameras, the System, live references, handlers.

The SDK has one process-global system; so has this emulator (:data:`BUS`), cleared between tests by
``fake_pyspin.reset()``.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any

from .constants import SPINNAKER_ERR_INVALID_HANDLE, SPINNAKER_ERR_IO
from .device import FakeDevice
from .errors import SpinnakerException


class Bus:
    """Attached cameras, the System instance and its reference count, live camera/interface pointers, handlers."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.clear()

    def clear(self) -> None:
        """Forget everything (between tests)."""
        with self.lock:
            self.devices: OrderedDict[str, FakeDevice] = OrderedDict()
            self.system: Any = None
            self.system_refs = 0
            self.live_cameras: weakref.WeakSet[Any] = weakref.WeakSet()
            self.live_interfaces: weakref.WeakSet[Any] = weakref.WeakSet()
            self.handlers: list[Any] = []

    def present_devices(self) -> list[FakeDevice]:
        with self.lock:
            return [d for d in self.devices.values() if d.present]

    def device(self, serial: str) -> FakeDevice:
        try:
            return self.devices[str(serial)]
        except KeyError:
            raise KeyError(f"no fake camera with serial {serial!r}; attached: {list(self.devices)}") from None


BUS = Bus()


class Handle:
    """What a CameraPtr points at: one device in one plug-in generation."""

    def __init__(self, device: FakeDevice | None) -> None:
        self.device = device
        self.generation = device.generation if device is not None else -1

    def is_valid(self) -> bool:
        return self.device is not None and self.device.present and self.device.generation == self.generation

    def check_present(self) -> None:
        if self.device is None:
            raise SpinnakerException("Invalid camera handle", SPINNAKER_ERR_INVALID_HANDLE)
        if not self.is_valid():
            raise SpinnakerException("Camera was removed (USB I/O error)", SPINNAKER_ERR_IO)


def sync_world_loss(device: FakeDevice, allow_return: bool = False) -> None:
    """Unplug a camera the simulated world has lost; with ``allow_return``, replug it once the world allows."""
    from .hooks import replug, unplug

    if device.faults is None:
        return
    if device.present:
        if device.faults.is_lost():
            device.lost_by_world = True
            unplug(device.serial)
    elif allow_return and device.lost_by_world and device.faults.try_reconnect():
        device.lost_by_world = False
        replug(device.serial)
