"""Plain snapshots handed out by the engine: the summary of a recording and the engine status."""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from operascope.acquisition.position_state import PositionStatus
from operascope.acquisition.queues import ConsumerCounts

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from operascope.acquisition.microscope import Microscope


class EngineState(str, enum.Enum):
    """What the engine is doing (``MicroscopeStatus.state``)."""

    CLOSED = "closed"
    IDLE = "idle"
    LIVE = "live"
    RECORDING = "recording"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class RunSummary:
    """What a recording produced. Counts are camera frames; ``duration_s`` in rig seconds."""

    path: str
    frames_in: int
    frames_binned: int
    frames_dropped: int
    bins: int
    partial_bins: int
    raw_frames: int
    duration_s: float
    stop_reason: str
    protocol_end: str | None = None
    errors: tuple[str, ...] = ()
    focus_faults: tuple[str, ...] = ()      # "<rig s>: <reason>" per focus-lock fault (acquisition/lock_faults.py)
    focus_unlocked_s: float = 0.0           # rig seconds the lock was in fault/lost/off during the run


@dataclass(frozen=True)
class MicroscopeStatus:
    """A snapshot of the engine for progress displays and the GUI (times in rig seconds)."""

    state: str                          # "closed", "idle", "live", "recording"
    clock_s: float
    frames_in: int
    frames_dropped: int
    incomplete_frames: int
    recording_path: str | None
    record_elapsed_s: float
    record_duration_s: float | None
    frames_recorded: int
    frames_dropped_in_run: int
    bins_written: int
    raw_written: int
    binner_queue_depth: int
    writer_queue_depth: int
    consumers: tuple[ConsumerCounts, ...]
    voltage_v: float
    current_a: float
    capacity_mAh_g: float
    protocol: str | None
    protocol_step: int | None
    protocol_running: bool
    focus_state: str
    focus_error_nm: float
    error: str | None = None
    alarms: int = 0
    positions: tuple[PositionStatus, ...] = ()   # multi-position runs: one status per position, in list order


def build_status(scope: "Microscope", now_s: float) -> MicroscopeStatus:
    """A snapshot of the engine's counts, queue depths, state, voltage and focus."""
    pipeline = scope.pipeline
    capture = pipeline.capture_counts() if pipeline is not None else None
    recording = scope.recording
    session = recording.session or recording.last_session
    writer = session.writer if session is not None else None
    latest = scope.echem.latest()
    focus = scope.focus.latest_sample
    consumers = pipeline.consumer_counts() if pipeline is not None else []
    if writer is not None:
        consumers.append(writer.queue.counts())
    proto = scope.protocol
    if scope.rig is None:
        state = EngineState.CLOSED
    else:
        state = (EngineState.RECORDING if recording.is_recording
                 else (EngineState.LIVE if scope.is_live else EngineState.IDLE))
    return MicroscopeStatus(
        state=state, clock_s=now_s,
        frames_in=capture.frames_in if capture else 0,
        frames_dropped=capture.frames_dropped if capture else 0,
        incomplete_frames=capture.incomplete if capture else 0,
        recording_path=writer.setup.path if writer is not None else None,
        record_elapsed_s=(((session.end_s if session.end_s is not None else now_s) - session.t0_s)
                          if session is not None else 0.0),
        record_duration_s=session.duration_s if session is not None else None,
        frames_recorded=session.frames_in if session is not None else 0,
        frames_dropped_in_run=session.binner.frames_dropped if session is not None else 0,
        bins_written=writer.bins_written if writer is not None else 0,
        raw_written=writer.raw_written if writer is not None else 0,
        binner_queue_depth=pipeline.binner_queue.counts().depth if pipeline is not None else 0,
        writer_queue_depth=writer.queue.counts().depth if writer is not None else 0,
        consumers=tuple(consumers),
        voltage_v=latest.voltage_v if latest else math.nan,
        current_a=latest.current_a if latest else math.nan,
        capacity_mAh_g=latest.capacity_mAh_g if latest else math.nan,
        protocol=proto.spec.kind if proto is not None else None,
        protocol_step=proto.current_step.index if proto is not None and proto.current_step is not None else None,
        protocol_running=bool(proto is not None and proto.is_running),
        focus_state=scope.focus.state,
        focus_error_nm=float(getattr(focus, "error_nm", math.nan)) if focus is not None else math.nan,
        error=scope.failure(), alarms=pipeline.alarms if pipeline is not None else 0,
        positions=tuple(scope.position_statuses()),
    )
