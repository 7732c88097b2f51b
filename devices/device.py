"""The base of every device: a context manager with ``open``/``close`` and :class:`DeviceInfo`."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from operascope.devices.errors import NotOpen



@dataclass(frozen=True)
class DeviceInfo:
    """Identity of an opened device."""

    model: str
    serial: str
    firmware: str = ""
    driver: str = ""


class Device(abc.ABC):
    """Base of every device: a context manager with ``open``/``close`` and ``info``."""

    #: The role name used in messages ("camera", "stage", ...).
    name: str = "device"

    @abc.abstractmethod
    def open(self) -> None:
        """Connect to the device and bring it to a known, safe state."""

    @abc.abstractmethod
    def close(self) -> None:
        """Leave the device safe and release every vendor resource. Idempotent."""

    @abc.abstractmethod
    def info(self) -> DeviceInfo:
        """Model, serial and firmware of the opened device."""

    @property
    @abc.abstractmethod
    def is_open(self) -> bool:
        """True between ``open()`` and ``close()``."""

    def _require_open(self) -> None:
        if not self.is_open:
            raise NotOpen(self.name, "not open; call open() or use it as a context manager")

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
