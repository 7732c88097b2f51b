"""Focus-lock faults during a long recording: never silent, never the end of the data.

:class:`LockFaultMonitor` watches the lock's state (polling, its own worker thread) while a run
records. It counts faults and the rig time spent unlocked (states ``fault``, ``lost``, ``off``),
reports every fault as an ``error`` event (the CLI prints those on stderr), and reacts as
``[focus_lock] on_fault`` says:

* ``continue`` — the recording goes on with z held where the lock stopped;
* ``stop`` — the recording is ended, with the fault as the stop reason;
* ``recentre`` — autofocus (image-based), then lock again: the travel window is re-centred on
  the new z. A failed re-centre falls back to ``continue`` (and says so).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from operascope.acquisition.worker import Worker

log = logging.getLogger(__name__)

__all__ = ["FAULT_REACTIONS", "LockFaultMonitor", "LockFaultSummary"]

FAULT_REACTIONS = ("continue", "stop", "recentre")
UNLOCKED_STATES = ("fault", "lost", "off")
Emit = Callable[[str, str], None]   # (level, message)


@dataclass
class LockFaultSummary:
    """Faults seen (rig time, message) and the rig seconds spent unlocked while monitoring."""

    faults: list[tuple[float, str]] = field(default_factory=list)
    unlocked_s: float = 0.0
    recentred: int = 0
    losses: list[tuple[float, str]] = field(default_factory=list)   # entries into ``lost`` (run time, why)
    recovered: int = 0            # re-acquisitions by the recover z search
    window_recentred: int = 0     # travel-window re-centrings on slow drift (acquisition/focus_window.py)

    def to_dict(self) -> dict[str, Any]:
        """The fields ``summary.json`` reports (analysis/lock_fault_fields.py reads them back from the run file)."""
        first = self.faults[0] if self.faults else (None, None)
        first_loss = self.losses[0] if self.losses else (None, None)
        return {"n_faults": len(self.faults), "unlocked_s": round(self.unlocked_s, 3),
                "first_fault_s": first[0], "first_fault_message": first[1],
                "n_losses": len(self.losses), "first_loss_s": first_loss[0], "first_loss_message": first_loss[1],
                "recovered": self.recovered, "recentred_after_fault": self.recentred,
                "window_recentred": self.window_recentred}

    def text(self) -> str:
        if not self.faults and self.unlocked_s == 0.0:
            return "focus lock: no fault, never unlocked"
        first = f"; first at {self.faults[0][0]:.0f} s: {self.faults[0][1]}" if self.faults else ""
        return (f"focus lock: {len(self.faults)} fault(s), unlocked {self.unlocked_s:.0f} s of rig time"
                f"{', ' + str(self.recentred) + ' re-centred' if self.recentred else ''}{first}")


class LockFaultMonitor:
    """See the module docstring. ``get_state()`` -> the lock's state; ``last_fault()`` -> its message."""

    def __init__(self, get_state: Callable[[], str], now_s: Callable[[], float], emit: Emit, reaction: str = "continue",
                 request_stop: Callable[[str], None] | None = None, recentre: Callable[[], None] | None = None,
                 poll_wall_s: float = 0.01, t0_s: float = 0.0) -> None:
        """Times in the summary and messages are ``now_s() - t0_s`` (run time when t0_s = the run's start)."""
        if reaction not in FAULT_REACTIONS:
            raise ValueError(f"on_fault {reaction!r} is not one of {', '.join(FAULT_REACTIONS)}")
        self._get_state, self._now_s, self._emit = get_state, now_s, emit
        self.reaction = reaction
        self._request_stop = request_stop
        self._recentre = recentre
        self._poll_wall_s = poll_wall_s
        self._t0_s = float(t0_s)
        self.summary = LockFaultSummary()
        self._mutex = threading.Lock()
        self._state = "locked"
        self._since_s = now_s()
        self._worker: Worker | None = None
        self.last_fault_message = ""
        self.last_warning_message = ""

    def note_event(self, level: str, message: str) -> None:
        """Feed focus-lock events: the last error message is kept as the fault's reason."""
        if level == "error":
            self.last_fault_message = message
        elif level == "warning":
            self.last_warning_message = message
        if "recovered: line found" in message:
            self.summary.recovered += 1
        if "travel window re-centred" in message:
            self.summary.window_recentred += 1

    def start(self) -> None:
        self._state, self._since_s = self._get_state(), self._now_s()
        self._worker = Worker("lock-fault-monitor", self._loop,
                              on_error=lambda exc: self._emit("error", f"lock fault monitor stopped: {exc}"))
        self._worker.start()

    def stop(self) -> LockFaultSummary:
        """Stop watching; the summary includes unlocked time up to now."""
        if self._worker is not None:
            self._worker.stop(timeout_s=60.0)
            self._worker = None
        self.poll()
        return self.summary

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(self._poll_wall_s):
            self.poll()

    def poll(self) -> None:
        """Account for the time since the last poll and react to a new fault."""
        with self._mutex:
            now, state = self._now_s(), self._get_state()
            if self._state in UNLOCKED_STATES:
                self.summary.unlocked_s += now - self._since_s
            previous, self._state, self._since_s = self._state, state, now
        if state == "fault" and previous != "fault":
            self._on_fault(now)
        if state == "lost" and previous != "lost":
            self.summary.losses.append((now - self._t0_s, self.last_warning_message or "focus signal lost"))

    def _on_fault(self, now_s: float) -> None:
        reason = self.last_fault_message or "the focus lock went to fault"
        now_s -= self._t0_s
        self.summary.faults.append((now_s, reason))
        what = {"continue": "recording continues with z held", "stop": "recording stopped",
                "recentre": "autofocus and re-lock (window re-centred)"}[self.reaction]
        self._emit("error", f"FOCUS LOCK FAULT at run time {now_s:.1f} s: {reason} — {what} (on_fault = {self.reaction})")
        if self.reaction == "stop" and self._request_stop is not None:
            self._request_stop(f"focus lock fault at {now_s:.0f} s ({reason})")
        elif self.reaction == "recentre" and self._recentre is not None:
            try:
                self._recentre()
                self.summary.recentred += 1
                self._emit("warning", f"focus lock re-centred after the fault at {now_s:.1f} s")
            except Exception as exc:  # noqa: BLE001 - fall back to continue, loudly
                self._emit("error", f"re-centre after the focus lock fault failed ({exc}); z held, recording continues")
