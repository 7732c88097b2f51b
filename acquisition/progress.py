"""Progress display for headless runs: one updating line on a TTY, periodic lines otherwise."""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import TextIO

from operascope.acquisition.status import MicroscopeStatus

log = logging.getLogger(__name__)


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h:d}:{m:02d}:{s:02d}"


def _num(value: float, fmt: str) -> str:
    return format(value, fmt) if math.isfinite(value) else "-"


def format_status(status: MicroscopeStatus) -> str:
    """One line: elapsed/remaining, frames, bins, voltage, current, dropped, focus state."""
    remaining = (status.record_duration_s - status.record_elapsed_s) if status.record_duration_s else math.nan
    focus = status.focus_state
    if math.isfinite(status.focus_error_nm):
        focus += f" {status.focus_error_nm:+.0f} nm"
    parts = [
        f"t {_clock(status.record_elapsed_s)}" + (f" (-{_clock(remaining)})" if math.isfinite(remaining) else ""),
        f"frames {status.frames_recorded}",
        f"bins {status.bins_written}",
        f"V {_num(status.voltage_v, '.3f')}",
        f"I {_num(status.current_a * 1e6, '.1f')} uA",
        f"Q {_num(status.capacity_mAh_g, '.1f')} mAh/g",
        f"dropped {status.frames_dropped_in_run}",
        f"focus {focus}",
    ]
    if status.protocol:
        parts.append(f"{status.protocol} step {status.protocol_step}")
    return " | ".join(parts)


class ProgressPrinter:
    """Callable for ``Microscope.record(progress=...)``. On a TTY rewrites one line; otherwise
    prints a line every ``every_s`` wall seconds (and the final one)."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._next = 0.0
        self._last_len = 0

    def __call__(self, status: MicroscopeStatus) -> None:
        line = format_status(status)
        if self.is_tty:
            pad = " " * max(0, self._last_len - len(line))
            self.stream.write("\r" + line + pad)
            self._last_len = len(line)
            self.stream.flush()
            return
        now = time.monotonic()
        if now >= self._next or status.state != "recording":
            self.stream.write(line + "\n")
            self.stream.flush()
            self._next = now + self.every_s

    def finish(self) -> None:
        """End the updating line on a TTY."""
        if self.is_tty and self._last_len:
            self.stream.write("\n")
            self.stream.flush()
