"""Starting a multi-position recording: check the list against the rig, build the router and the schedule."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from operascope.acquisition.position_router import PositionRouter, build_router
from operascope.acquisition.position_schedule import PositionSchedule, ScheduleTimeouts
from operascope.acquisition.positions import PositionList, check_soft_limits, load_positions

if TYPE_CHECKING:
    from operascope.acquisition.microscope import Microscope

log = logging.getLogger(__name__)


def check_dwell_bins(dwell_bins: Any) -> int:
    """``dwell_bins`` as an int >= 1, or one clear ValueError."""
    if isinstance(dwell_bins, bool) or not isinstance(dwell_bins, int) or not 1 <= dwell_bins <= 100_000:
        raise ValueError(f"dwell_bins must be a whole number of bins per visit, 1..100000, got {dwell_bins!r}")
    return dwell_bins


def stage_soft_limits_um(rig: Any) -> dict[str, tuple[float, float]]:
    """The x/y soft limits of the rig's stage in µm."""
    limits = {}
    for axis in ("x", "y"):
        low, high = rig.stage.axis(axis).limits_nm
        limits[axis] = (low / 1000.0, high / 1000.0)
    return limits


def resolve_positions(positions: PositionList | str | Path, rig: Any) -> PositionList:
    """A PositionList (or a TOML path) checked against the stage's soft limits."""
    limits = stage_soft_limits_um(rig)
    if isinstance(positions, (str, Path)):
        return load_positions(positions, soft_limits_um=limits)
    if not isinstance(positions, PositionList):
        raise TypeError(f"positions must be a PositionList or a TOML file path, got {type(positions).__name__}")
    if not positions.positions:
        raise ValueError("positions: empty position list; give at least one position")
    check_soft_limits(positions, limits, source="positions")
    return positions


def prepare_positions(scope: "Microscope", positions: PositionList | str | Path, bin_size: int,
                      dwell_bins: int) -> tuple[PositionList, PositionRouter]:
    """Everything checked before the run file is created: the list, the ROIs, the router."""
    rig = scope.require_rig()
    plist = resolve_positions(positions, rig)
    dwell_bins = check_dwell_bins(dwell_bins)
    router = build_router(plist, rig.camera.settings(), scope.config.acquisition.pixel_size_nm,
                          scope.live.differential, bin_size, dwell_bins)
    return plist, router


def start_schedule(scope: "Microscope", plist: PositionList, router: PositionRouter,
                   timeouts: ScheduleTimeouts | None = None) -> PositionSchedule:
    """Start cycling the positions of the recording that just began."""
    rig = scope.require_rig()
    session = scope.recording.session
    if session is None:
        raise RuntimeError("no recording is running; the position schedule runs only while recording")
    lock = scope.focus.existing_lock
    use_lock = bool(lock is not None and lock.is_running)
    schedule = PositionSchedule(plist, router, rig, scope.focus, use_lock, session.writer, scope.events.emit,
                                1.0 / rig.camera.settings().frame_rate_hz, timeouts,
                                refresher=lambda: getattr(scope.focus_services, "refresher", None))
    return schedule.start()
