"""Plain snapshots handed out by the engine: the summary of a recording and the engine status."""

from __future__ import annotations

from dataclasses import dataclass

from operascope.acquisition.queues import ConsumerCounts


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
