"""The potentiostat side of the virtual world (a part of :class:`~operascope.simulators.world.world.World`).

The simulated potentiostat device calls these; they drive the World's half cell under its lock, on the
virtual clock.
"""

from __future__ import annotations

from typing import Any, Callable

from operascope.devices.base import EchemPoint, Technique


class PotentiostatChannel:
    """Potentiostat methods of the World (expects ``_lock``, ``clock``, ``cell``, ``_update`` and
    ``_on_cell_step`` on the instance)."""

    _lock: Any
    clock: Any
    cell: Any
    _update: Callable[[float], None]
    _on_cell_step: Callable[[float, float], None]

    def potentiostat_start(self, technique: Technique, step: int = 0, cycle: int = 0) -> None:
        with self._lock:
            now = self.clock.now_s()
            self._update(now)
            self.cell.advance_to(now, exact=True, on_step=self._on_cell_step)
            self.cell.start(technique, step, cycle)

    def potentiostat_stop(self) -> None:
        with self._lock:
            now = self.clock.now_s()
            self._update(now)
            self.cell.advance_to(now, exact=True, on_step=self._on_cell_step)
            self.cell.stop("stopped")

    def potentiostat_read(self) -> list[EchemPoint]:
        with self._lock:
            self._update(self.clock.now_s())
            return self.cell.take_points()

    def potentiostat_chain_steps(self, enabled: bool) -> None:
        """A protocol's steps follow each other: each starts where the last ended, however late the
        runner asks (any --speed)."""
        with self._lock:
            self.cell.chain_steps(enabled)

    def potentiostat_started_at_s(self) -> float:
        """Virtual time the running (or last) technique started."""
        with self._lock:
            return self.cell.technique_start_s

    def potentiostat_status(self) -> tuple[bool, str]:
        """(running, end_reason)."""
        with self._lock:
            self._update(self.clock.now_s())
            return self.cell.is_running, self.cell.end_reason
