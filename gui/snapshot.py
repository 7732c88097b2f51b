"""GuiSnapshot: everything the window shows at one refresh, gathered without blocking the GUI thread."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class EventRow:
    """One engine event: rig-clock seconds (or None), level, source, message."""

    time_s: float | None
    level: str
    source: str
    message: str


@dataclass
class FocusRow:
    """One focus-lock loop sample: rig-clock s, error nm, z nm, state, line position px."""

    time_s: float
    error_nm: float
    z_nm: float
    state: str
    position_px: float | None = None


@dataclass
class GuiSnapshot:
    """What the window shows; None = not known (yet)."""

    opened: bool = False
    live: bool = False
    # newest camera frame
    frame: np.ndarray | None = None
    frame_id: int | None = None
    frame_host_time_s: float | None = None
    # newest differential
    differential: np.ndarray | None = None
    mask: np.ndarray | None = None
    reference: np.ndarray | None = None  # the frame the differential is relative to (I_1)
    differential_index: int | None = None
    # counters
    frames_in: int = 0
    frames_dropped: int = 0              # camera frame-id gaps (includes simulator_behind_frames)
    frames_not_binned: int = 0           # frames of the current/last recording that missed their bin (must be 0)
    simulator_behind_frames: int = 0     # simulated camera only: ids lost because the simulation fell behind
    clock_now_s: float | None = None
    # recording
    recording: bool = False
    record_path: str | None = None
    frames_recorded: int = 0
    bins_written: int = 0
    raw_written: int = 0
    writer_queue_depth: int = 0
    bytes_written: int | None = None
    # focus
    focus_state: str = "off"
    focus_rows: list[FocusRow] = field(default_factory=list)
    focus_profile: np.ndarray | None = None
    focus_position_px: float | None = None
    focus_calibration: dict | None = None
    # devices read by the monitor thread
    stage_nm: dict[str, float] | None = None
    led: object | None = None  # operascope.devices.base.LightState
    laser: object | None = None  # operascope.devices.base.LaserState
    # electrochemistry
    echem_running: bool = False
    echem_text: str = ""
    voltage_v: float | None = None
    current_a: float | None = None
    # multi-position run: one PositionStatus per position (name, state, visits, bins, last_error, ...)
    positions: list = field(default_factory=list)
    # new events since the last snapshot
    events: list[EventRow] = field(default_factory=list)
