"""Controller-side state of the AMC100 emulator (per axis, injected faults) and its test hooks."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class AxisState:
    """Controller-side state of one axis."""

    output: bool = False
    move: bool = False
    target_nm: int = 0
    target_range_nm: int = 100
    amplitude_mv: int = 45_000
    frequency_mhz: int = 1_000_000
    actor: str = "ECSx5050"
    eot_forward: bool = False
    eot_backward: bool = False
    connected: bool = True
    eot_output_deactive: bool = True
    offset_nm: float = 0.0  # backend position of the counter's zero (moved by setReset)
    reference_valid: bool = False
    reference_nm: int = 0
    n_steps: int = 1
    continuous: int = 0  # 1 forward, -1 backward, 0 off


@dataclass
class _Injected:
    """Pending injected faults."""

    errors: dict[str, list[int]] = field(default_factory=dict)  # method -> error numbers to return
    garbled: int = 0


class FaultHooks:
    """Test hooks of :class:`~operascope.simulators.emulators.amc100.Amc100Server` (expects ``_lock``,
    ``_injected``, ``axes``, ``_clients``, ``_refuse_until`` and ``_backend_axis`` on the instance)."""

    _lock: threading.Lock
    _injected: _Injected
    axes: list[AxisState]
    _clients: Any
    _refuse_until: float
    _backend_axis: Callable[[int], Any]

    def fail_next(self, method: str, error_number: int, count: int = 1) -> None:
        """The next ``count`` calls of ``method`` (full name) answer ``[error_number]``."""
        with self._lock:
            self._injected.errors.setdefault(method, []).extend([int(error_number)] * int(count))

    def garble_next(self, count: int = 1) -> None:
        """The next ``count`` replies are not JSON."""
        with self._lock:
            self._injected.garbled += int(count)

    def disconnect_positioner(self, axis: int, connected: bool = False) -> None:
        """Unplug (or replug) the positioner cable of controller axis ``axis``."""
        with self._lock:
            state = self.axes[axis]
            state.connected = bool(connected)
            if not connected:
                state.output = False
                state.move = False
                self._backend_axis(axis).halt()

    def drop_connections(self, refuse_s: float = 0.0) -> None:
        """Close every client socket; refuse new clients for ``refuse_s`` wall seconds."""
        with self._lock:
            self._refuse_until = time.monotonic() + refuse_s
            clients = list(self._clients)
            self._clients.clear()
        for client in clients:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            client.close()

