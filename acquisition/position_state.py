"""Plain records of a multi-position run: each position's state and status, and one visit's times."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass


class PositionState(str, enum.Enum):
    """What the schedule is doing at a position (``PositionStatus.state``)."""

    WAITING = "waiting"
    MOVING = "moving"
    FOCUSING = "focusing"
    RECORDING = "recording"
    FAILED = "failed"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


class VisitStatus(str, enum.Enum):
    """How a visit ended (column ``status`` of /entry/visits)."""

    RECORDED = "recorded"
    MOVE_FAILED = "move failed"
    FOCUS_NOT_REACQUIRED = "focus not reacquired"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class PositionStatus:
    """A snapshot of one position of a multi-position run (times in rig seconds since the run start)."""

    name: str
    state: PositionState
    visits: int = 0                     # visits that recorded bins
    bins: int = 0
    last_error: str | None = None
    last_visit_time_s: float = math.nan


@dataclass(frozen=True)
class Visit:
    """One visit of a position; absolute rig-clock seconds (the writer stores them since start_time).

    ``time_s`` the start of the move, ``settled_time_s`` the stage settled, ``focus_time_s`` the lock back
    (or focus set), ``end_time_s`` the last frame of the visit binned (or the failure)."""

    time_s: float
    position_index: int
    settled_time_s: float = math.nan
    focus_time_s: float = math.nan
    end_time_s: float = math.nan
    n_bins: int = 0
    status: str = VisitStatus.RECORDED.value
