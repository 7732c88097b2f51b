"""Simulated potentiostat channel driving the World's half cell (simulators/cell.py).

Techniques OCV / ConstantCurrent / ConstantVoltage run on the virtual clock; points come every
``record_every_s`` of virtual time whether or not anyone polls. Positive current charges.
Faults: ``link_loss``/``device_lost`` (DeviceLost on every call until ``reconnect()``; the
running technique ends with end_reason "error" and the cell rests), ``timeout``
(``read_new`` raises DeviceTimeout; no points are lost), ``limit_ignored`` (the channel's own
voltage/current limit fails and the technique runs on past it).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from operascope.devices.base import (
    DeviceInfo,
    DeviceLost,
    DeviceTimeout,
    EchemPoint,
    EndReason,
    OutOfRange,
    Potentiostat,
    Technique,
)
from operascope.simulators.world.cell import validate_technique

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from operascope.simulators.world.world import World

#: Voltage range the simulated channel accepts (V).
VOLTAGE_RANGE_V = (-10.0, 10.0)


class SimulatedPotentiostat(Potentiostat):
    """A :class:`operascope.devices.base.Potentiostat` backed by the World's cell model."""

    def __init__(self, world: World) -> None:
        self._world = world
        self._lock = threading.Lock()
        self._open = False

    def open(self) -> None:
        with self._lock:
            if self._world.is_lost(self.name):
                raise DeviceLost(self.name, "potentiostat not reachable; check the USB/Ethernet link")
            self._open = True
        log.info("simulated potentiostat opened")

    def close(self) -> None:
        with self._lock:
            if self._open and not self._world.is_lost(self.name):
                self._world.potentiostat_stop()
            self._open = False

    def info(self) -> DeviceInfo:
        return DeviceInfo(model="Simulated VMP300 channel (half-cell model)", serial="SIM-POT-0", firmware="sim", driver="simulated")

    @property
    def is_open(self) -> bool:
        return self._open

    def _check_link(self) -> None:
        self._require_open()
        if self._world.is_lost(self.name):
            raise DeviceLost(self.name, "link to the potentiostat lost; the cell is resting; call reconnect() when it is back")

    def start(self, technique: Technique, step: int = 0, cycle: int = 0) -> None:
        self._check_link()
        try:
            validate_technique(technique, self._world.sim.potentiostat_max_current_a, VOLTAGE_RANGE_V)
        except ValueError as exc:
            raise OutOfRange(self.name, f"{type(technique).__name__}: {exc}") from None
        self._world.potentiostat_start(technique, step, cycle)

    def read_new(self) -> list[EchemPoint]:
        self._check_link()
        if self._world.consume_fault(self.name, "timeout"):
            raise DeviceTimeout(self.name, "no answer from the channel; check the link")
        return self._world.potentiostat_read()

    def stop(self) -> None:
        self._check_link()
        self._world.potentiostat_stop()

    def is_running(self) -> bool:
        self._check_link()
        return self._world.potentiostat_status()[0]

    def chain_steps(self, enabled: bool) -> None:
        """While enabled, a technique started after the last one ended by itself starts at that end."""
        self._world.potentiostat_chain_steps(enabled)

    def started_at_s(self) -> float:
        """When the running technique started: right at the previous one's end when it followed it."""
        self._check_link()
        return self._world.potentiostat_started_at_s()

    def end_reason(self) -> EndReason:
        self._check_link()
        return self._world.potentiostat_status()[1]  # type: ignore[return-value]

    def reconnect(self) -> None:
        """Re-establish the link after DeviceLost (raises DeviceLost while still absent)."""
        if not self._world.try_reconnect(self.name):
            raise DeviceLost(self.name, "potentiostat still not reachable")
        self._open = True
