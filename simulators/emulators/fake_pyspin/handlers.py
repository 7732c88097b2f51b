"""Event-handler base classes (subclass and override, as with the real binding) and the event pump.

The pump is a thread per streaming camera with registered camera handlers: it runs the camera clock,
hands each new image to every ``ImageEventHandler`` (released after the callbacks) and each device event
to the ``DeviceEventHandler`` registered for it (or for all events).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .device import FakeDevice

log = logging.getLogger(__name__)


class ImageEventHandler:
    """Override ``OnImageEvent(image)``; images handed to it are released by the SDK afterwards."""

    def OnImageEvent(self, image: Any) -> None:  # noqa: N802
        return None


class DeviceEventHandler:
    """Override ``OnDeviceEvent(eventname)``; ``GetDeviceEventId``/``GetDeviceEventName`` describe the current event."""

    def __init__(self) -> None:
        self._event = ("", 0)

    def OnDeviceEvent(self, eventname: str) -> None:  # noqa: N802
        return None

    def GetDeviceEventId(self) -> int:  # noqa: N802
        return getattr(self, "_event", ("", 0))[1]

    def GetDeviceEventName(self) -> str:  # noqa: N802
        return getattr(self, "_event", ("", 0))[0]


class InterfaceEventHandler:
    """Override ``OnDeviceArrival`` / ``OnDeviceRemoval`` (each gets a CameraPtr)."""

    def OnDeviceArrival(self, camera: Any) -> None:  # noqa: N802
        return None

    def OnDeviceRemoval(self, camera: Any) -> None:  # noqa: N802
        return None


def dispatch_device_events(device: FakeDevice) -> None:
    """Call the device-event handlers for every pending event (outside the device lock)."""
    with device.cond:
        events = list(device.pending_events)
        device.pending_events.clear()
        handlers = list(device.device_handlers)
    for name, event_id in events:
        for handler, wanted in handlers:
            if wanted is None or wanted == name:
                handler._event = (name, event_id)
                handler.OnDeviceEvent(name)


def _pump(device: FakeDevice, generation: int) -> None:
    while True:
        image = None
        with device.cond:
            running = device.streaming and device.present and device.generation == generation
            if not running or not (device.image_handlers or device.device_handlers):
                if device.pump is threading.current_thread():
                    device.pump = None
                return
            device.advance()
            if device.image_handlers and device.queue:
                image = device.render(*device.take())
            elif not device.pending_events:
                device.cond.wait(0.01)
            handlers = list(device.image_handlers)
        dispatch_device_events(device)
        if image is not None:
            for handler in handlers:
                try:
                    handler.OnImageEvent(image)
                except Exception:  # noqa: BLE001 - a user callback must not kill the SDK's thread
                    log.exception("OnImageEvent of %r raised", handler)
            if not image._released:
                image.Release()


def start_pump(device: FakeDevice) -> None:
    """Start the camera's event pump if it streams, has camera handlers and none runs yet."""
    with device.cond:
        if device.pump is not None or not device.streaming or not (device.image_handlers or device.device_handlers):
            return
        device.pump = threading.Thread(target=_pump, args=(device, device.generation), daemon=True,
                                       name=f"fake-pyspin-events-{device.serial}")
        device.pump.start()


def stop_pump(device: FakeDevice) -> None:
    """Wait for the pump to notice the stream ended (not from the pump itself)."""
    pump = device.pump
    if pump is not None and pump is not threading.current_thread():
        pump.join(timeout=2.0)
