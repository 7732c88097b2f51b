"""Fault bookkeeping for the simulated devices.

A fault is (device role, kind) plus either a virtual-time window (``duration_s > 0``: every
relevant call inside ``[start, start + duration)`` fails) or a count (``duration_s == 0``: the
next ``count`` relevant events fail). ``device_lost``/``link_loss`` are special: the device
stays lost (every call raises DeviceLost) until the window has passed AND the device was
reconnected; with ``duration_s == 0`` a reconnect works at once.

``limit_ignored`` (potentiostat) makes the channel's own limit fail: a technique runs on past its
voltage (or current) limit while the fault is in force (each limit check inside the window, or
the next ``count`` checks) -- what the software watchdog in acquisition/ must catch.

Which kinds each role supports is in :data:`FAULT_KINDS`. The devices query the board; the
board itself raises nothing but :class:`ValueError` for bad injections.
"""

from __future__ import annotations

from dataclasses import dataclass

from operascope.config.schema import FAULT_KINDS

#: Kinds that make a device disappear until reconnected.
LOSS_KINDS = ("device_lost", "link_loss")


@dataclass
class ActiveFault:
    """One injected fault."""

    device: str
    kind: str
    start_s: float
    duration_s: float
    remaining_count: int

    def window_contains(self, t_s: float) -> bool:
        """True if ``t_s`` lies inside this fault's time window (windowed faults only)."""
        return self.duration_s > 0 and self.start_s <= t_s < self.start_s + self.duration_s


def check_fault(device: str, kind: str, duration_s: float, count: int) -> None:
    """Raise ValueError unless (device, kind, duration, count) is a valid injection."""
    if device not in FAULT_KINDS:
        raise ValueError(f"fault device {device!r} is not a simulated role; allowed: {', '.join(FAULT_KINDS)}")
    if kind not in FAULT_KINDS[device]:
        raise ValueError(f"fault kind {kind!r} does not apply to {device}; allowed: {', '.join(FAULT_KINDS[device])}")
    if not duration_s >= 0:
        raise ValueError(f"fault duration_s must be >= 0 s, got {duration_s!r}")
    if int(count) < 1:
        raise ValueError(f"fault count must be >= 1, got {count!r}")


class FaultBoard:
    """The faults in force. Not thread-safe by itself: the World calls it under its lock."""

    def __init__(self) -> None:
        self._faults: list[ActiveFault] = []
        self._lost_since: dict[str, float] = {}

    def inject(self, device: str, kind: str, start_s: float, duration_s: float = 0.0, count: int = 1) -> None:
        """Register a fault starting at virtual time ``start_s``."""
        check_fault(device, kind, duration_s, count)
        self._prune(start_s)
        self._faults.append(ActiveFault(device, kind, float(start_s), float(duration_s), int(count)))
        if kind in LOSS_KINDS:
            self._lost_since[device] = float(start_s)

    def clear(self) -> None:
        """Remove every fault (lost devices come back at once)."""
        self._faults.clear()
        self._lost_since.clear()

    def _prune(self, t_s: float) -> None:
        self._faults = [
            f
            for f in self._faults
            if (f.duration_s > 0 and t_s < f.start_s + f.duration_s) or (f.duration_s == 0 and f.remaining_count > 0)
        ]

    def in_window(self, device: str, kind: str, t_s: float) -> bool:
        """True if a windowed fault of this kind covers ``t_s``."""
        return any(f.device == device and f.kind == kind and f.window_contains(t_s) for f in self._faults)

    def window_end_s(self, device: str, kind: str, t_s: float) -> float | None:
        """End time of the windowed fault covering ``t_s`` (latest if several), else None."""
        ends = [f.start_s + f.duration_s for f in self._faults if f.device == device and f.kind == kind and f.window_contains(t_s)]
        return max(ends) if ends else None

    def consume(self, device: str, kind: str, t_s: float) -> bool:
        """True if this event fails: inside a window, or one count of a count fault is used up."""
        if self.in_window(device, kind, t_s):
            return True
        for fault in self._faults:
            if (
                fault.device == device
                and fault.kind == kind
                and fault.duration_s == 0
                and fault.remaining_count > 0
            ):
                fault.remaining_count -= 1
                self._prune(t_s)
                return True
        return False

    def pending_count(self, device: str, kind: str) -> int:
        """Remaining events of count faults of this kind (0 if none)."""
        return sum(f.remaining_count for f in self._faults if f.device == device and f.kind == kind and f.duration_s == 0)

    def is_lost(self, device: str) -> bool:
        """True while the device is lost (until a successful reconnect)."""
        return device in self._lost_since

    def loss_active(self, device: str, t_s: float) -> bool:
        """True while a loss window of this device still covers ``t_s`` (reconnect refused)."""
        return any(self.in_window(device, kind, t_s) for kind in LOSS_KINDS)

    def try_reconnect(self, device: str, t_s: float) -> bool:
        """Clear the lost state if no loss window covers ``t_s``; return True on success."""
        if self.loss_active(device, t_s):
            return False
        self._lost_since.pop(device, None)
        self._faults = [f for f in self._faults if not (f.device == device and f.kind in LOSS_KINDS)]
        return True
