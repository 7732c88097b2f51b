"""The device error hierarchy: every message names the device and what to do."""

from __future__ import annotations


class DeviceError(Exception):
    """A device failed. ``device`` names it; the message says what to do."""

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device
        self.detail = message


class DeviceTimeout(DeviceError):
    """The device did not answer (or deliver a frame) in time."""


class DeviceLost(DeviceError):
    """The device disappeared (unplugged, link dropped, controller gone)."""


class IncompleteFrame(DeviceError):
    """The camera delivered a frame with missing data; it must not be stored."""


class OutOfRange(DeviceError, ValueError):
    """A requested value lies outside what the device allows; nothing was sent."""


class EndOfTravel(DeviceError):
    """A positioner hit its end-of-travel switch."""


class InterlockTripped(DeviceError):
    """A safety interlock is open; the source refuses to emit."""


class NotOpen(DeviceError):
    """The device was used before ``open()`` or after ``close()``."""


class MissingVendorLibrary(DeviceError):
    """A vendor SDK needed by a real driver is not installed."""


class LimitExceeded(DeviceError):
    """A safety limit (e.g. a voltage cut-off) was passed."""
