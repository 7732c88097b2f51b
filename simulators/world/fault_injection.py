"""Fault injection on the virtual world (a part of :class:`~operascope.simulators.world.world.World`).

The World owns the state (``faults``, ``cell``, light-source switches, its lock and clock); these
methods inject, consume and clear faults on it under that lock, on the virtual clock.
"""

from __future__ import annotations

from typing import Any, Callable

from operascope.simulators.world.faults import check_fault


class FaultInjection:
    """Fault methods of the World (expects ``_lock``, ``clock``, ``faults``, ``cell``, ``_update``,
    ``_on_cell_step``, ``led_enabled`` and ``laser_enabled`` on the instance)."""

    _lock: Any
    clock: Any
    faults: Any
    cell: Any
    led_enabled: bool
    laser_enabled: bool
    _update: Callable[[float], None]
    _on_cell_step: Callable[[float, float], None]

    def _inject(self, device: str, kind: str, start_s: float, duration_s: float, count: int) -> None:
        self.faults.inject(device, kind, start_s, duration_s, count)
        if kind == "interlock_trip":
            if device == "led":
                self.led_enabled = False
            else:
                self.laser_enabled = False
        if device == "potentiostat" and kind in ("link_loss", "device_lost") and self.cell.is_running:
            self.cell.advance_to(max(start_s, self.cell.time_s), exact=True, on_step=self._on_cell_step)
            self.cell.stop("error")

    def inject_fault(self, device: str, kind: str, duration_s: float = 0.0, count: int = 1) -> None:
        """Inject a fault now. Kinds per device role: see :data:`operascope.simulators.world.faults.FAULT_KINDS`.

        ``duration_s > 0``: every relevant call within that many virtual seconds fails;
        ``0``: the next ``count`` relevant events fail (device_lost/link_loss: lost until reconnect).
        """
        check_fault(device, kind, duration_s, count)
        with self._lock:
            now = self.clock.now_s()
            self._update(now)
            self._inject(device, kind, now, float(duration_s), int(count))

    def clear_faults(self) -> None:
        """Remove every injected fault; lost devices may reconnect at once."""
        with self._lock:
            self.faults.clear()

    def consume_fault(self, device: str, kind: str, t_s: float | None = None) -> bool:
        """True if an event of ``device`` at ``t_s`` (default now) is hit by a ``kind`` fault."""
        with self._lock:
            now = self.clock.now_s()
            self._update(now)
            return self.faults.consume(device, kind, now if t_s is None else t_s)

    def fault_active(self, device: str, kind: str) -> bool:
        """True if a ``kind`` fault window covers now or count events are pending (no consumption)."""
        with self._lock:
            now = self.clock.now_s()
            self._update(now)
            return self.faults.in_window(device, kind, now) or self.faults.pending_count(device, kind) > 0

    def is_lost(self, device: str) -> bool:
        """True while ``device`` is lost (until a reconnect succeeds)."""
        with self._lock:
            self._update(self.clock.now_s())
            return self.faults.is_lost(device)

    def try_reconnect(self, device: str) -> bool:
        """Reconnect ``device`` if its loss window has passed; True on success."""
        with self._lock:
            now = self.clock.now_s()
            self._update(now)
            return self.faults.try_reconnect(device, now)

