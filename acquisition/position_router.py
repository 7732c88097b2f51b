"""PositionRouter: the binner-thread side of a multi-position recording.

The schedule (:mod:`operascope.acquisition.position_schedule`) opens a *visit window* once a position's
stage move has settled and its focus is back; only frames whose exposure started inside that window are
binned, into that position's own binner, and the window closes by itself after ``dwell_bins`` bins.
The window opens at the camera's own time stamp latched at that moment (exact however late frames are
read); a camera without a latch falls back to the rig-clock estimate of each frame's exposure start
plus one frame period of margin. Bins carry exposure mid-times from the recording's ``stamper``.
Every other frame (taken while moving, focusing, or between visits) is counted and discarded.
Each position has its own :class:`LiveDifferential` (the reference I_1 belongs to a field of view).

The router stands in for the session's :class:`Binner` in the counts (``frames_in``, ``frames_dropped``,
``bins_out``) so summaries and status work unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from operascope.acquisition.binner import BinnedFrame, Binner, FrameStamper
from operascope.acquisition.live_differential import LiveDifferential
from operascope.devices.base import Frame

log = logging.getLogger(__name__)


@dataclass
class PositionTarget:
    """One position's record: its binner (fresh per visit, bin indices continue), differential and crop."""

    index: int
    name: str
    differential: LiveDifferential
    crop: tuple[slice, slice] | None = None
    bins: int = 0
    visits_recorded: int = 0


@dataclass(frozen=True)
class RoutedBin:
    """A finished bin of ``target`` taken during visit ``visit_index`` (for the differential thread)."""

    target: PositionTarget
    visit_index: int


@dataclass
class _OpenVisit:
    target: PositionTarget
    visit_index: int
    t_open_s: float
    binner: Binner
    bins_wanted: int
    since_camera_ns: int | None = None
    done: threading.Event = field(default_factory=threading.Event)
    bins_done: int = 0
    first_frame_time_s: float = math.nan
    last_frame_time_s: float = math.nan
    end_time_s: float = math.nan


class PositionRouter:
    """Gates frames into per-position binners by exposure time; see the module docstring."""

    def __init__(self, targets: list[PositionTarget], bin_size: int, dwell_bins: int, exposure_s: float,
                 frame_period_s: float) -> None:
        if isinstance(dwell_bins, bool) or not isinstance(dwell_bins, int) or dwell_bins < 1:
            raise ValueError(f"dwell_bins must be an integer >= 1 bin per visit, got {dwell_bins!r}")
        Binner(bin_size)   # validates bin_size
        self.targets = targets
        self.bin_size = int(bin_size)
        self.dwell_bins = int(dwell_bins)
        self.exposure_s = float(exposure_s)
        self.margin_s = float(frame_period_s)   # one frame period of safety before a window opens
        self.frames_in = 0          # every camera frame the recording received
        self.frames_binned = 0      # frames that went into a position's bin
        self.frames_discarded = 0   # taken while moving / focusing / between visits
        self.frames_dropped = 0     # frame-id gaps of the camera stream
        self.bins_out = 0
        self._last_id: int | None = None
        self._min_lag_s = math.inf
        self._lock = threading.Lock()
        self._visit: _OpenVisit | None = None
        #: the recording's ExposureStamper (set before the first frame): bin times are exposure mid-times
        self.stamper: FrameStamper | None = None
        #: set by the schedule when the recording ends during a visit: ``on_close(n_bins, end_time_s)``
        #: is called once the recording's end has binned that visit's last frames (see :meth:`flush`)
        self.on_close: Callable[[int, float], None] | None = None

    # ------------------------------------------------------------------ schedule thread
    def open_visit(self, index: int, visit_index: int, t_open_s: float,
                   since_camera_ns: int | None = None) -> threading.Event:
        """Bin frames exposed from ``t_open_s`` on (rig s; exactly: from camera time ``since_camera_ns`` on,
        when the camera latched it) into position ``index``; the event is set after ``dwell_bins`` bins."""
        target = self.targets[index]
        binner = Binner(self.bin_size, self.stamper)
        binner.bins_out = target.bins     # bin indices of a position continue across visits
        visit = _OpenVisit(target, visit_index, float(t_open_s), binner, self.dwell_bins,
                           int(since_camera_ns) if since_camera_ns is not None else None)
        with self._lock:
            self._visit = visit
        return visit.done

    def close_visit(self) -> tuple[int, float]:
        """End the open visit (done, timed out or stopping): (bins recorded, end time); the partial bin is dropped."""
        with self._lock:
            visit, self._visit = self._visit, None
            if visit is None:
                return 0, math.nan
            self.frames_discarded += visit.binner.pending
            self.frames_binned -= visit.binner.pending
        return visit.bins_done, visit.end_time_s

    # ------------------------------------------------------------------ binner thread
    def exposure_start_s(self, frame: Frame) -> float:
        """The frame's exposure start on the rig clock: the camera timestamp mapped by the smallest
        read lag seen (exact when one frame was read as soon as it was ready), else host time − exposure."""
        host_start_s = frame.host_time_s - self.exposure_s
        if not frame.camera_time_ns:
            return host_start_s
        camera_s = frame.camera_time_ns * 1e-9
        self._min_lag_s = min(self._min_lag_s, frame.host_time_s - camera_s)
        return min(host_start_s, camera_s + self._min_lag_s - self.exposure_s)

    def add_frame(self, frame: Frame) -> list[tuple[BinnedFrame, RoutedBin]]:
        """Count one frame; bin it if it belongs to the open visit. Returns finished bins (0 or 1)."""
        if self._last_id is not None and frame.frame_id > self._last_id + 1:
            self.frames_dropped += frame.frame_id - self._last_id - 1
        self._last_id = frame.frame_id
        self.frames_in += 1
        start_s = self.exposure_start_s(frame)
        with self._lock:
            visit = self._visit
            if visit is None or visit.done.is_set() or not self._in_window(visit, frame, start_s):
                self.frames_discarded += 1
                if self.stamper is not None:
                    self.stamper.observe(frame)   # every frame's (camera, host) pair sharpens the clock map
                return []
            if math.isnan(visit.first_frame_time_s):
                visit.first_frame_time_s = start_s
            crop = visit.target.crop
            if crop is not None:
                frame = dataclasses.replace(frame, pixels=frame.pixels[crop])
            self.frames_binned += 1
            visit.last_frame_time_s = frame.host_time_s
            binned = visit.binner.add(frame)
            if binned is None:
                return []
            visit.bins_done += 1
            visit.target.bins += 1
            self.bins_out += 1
            if visit.bins_done >= visit.bins_wanted:
                visit.end_time_s = frame.host_time_s
                visit.target.visits_recorded += 1
                visit.done.set()
            return [(binned, RoutedBin(visit.target, visit.visit_index))]

    def _in_window(self, visit: _OpenVisit, frame: Frame, start_s: float) -> bool:
        if visit.since_camera_ns is not None and frame.camera_time_ns > 0:
            return frame.camera_time_ns >= visit.since_camera_ns
        return start_s >= visit.t_open_s + self.margin_s

    def flush(self) -> list[tuple[BinnedFrame, RoutedBin]]:
        """At the end of the recording: the open visit's partial bin (marked partial), if any."""
        with self._lock:
            visit, self._visit = self._visit, None
        out: list[tuple[BinnedFrame, RoutedBin]] = []
        if visit is None:
            return out
        partial = None if visit.done.is_set() else visit.binner.flush()
        if partial is not None:
            visit.target.bins += 1
            visit.bins_done += 1
            self.bins_out += 1
            out.append((partial, RoutedBin(visit.target, visit.visit_index)))
        on_close, self.on_close = self.on_close, None
        if on_close is not None:
            on_close(visit.bins_done, visit.last_frame_time_s)
        return out

    @property
    def pending(self) -> int:
        visit = self._visit
        return visit.binner.pending if visit is not None else 0


def publish_position_bin(binned: BinnedFrame, routed: RoutedBin, session: Any, echem_at: Callable, emit: Callable,
                         live_slot: Any) -> None:
    """Differential thread: the position's differential, then both frames into its record in the run file."""
    target = routed.target
    diff = target.differential.process(binned.pixels, binned.mid_time_s)
    first = diff.index == 0
    if first:
        for warning in target.differential.warnings:
            emit("warning", "differential", f"position {target.name}: {warning}")
        target.differential.warnings.clear()
    live_slot.put(diff)
    voltage_v, current_a, capacity = echem_at(binned.mid_time_s)
    writer = session.writer
    writer.write_binned(binned, voltage_v, current_a, capacity, position=target.name, visit_index=routed.visit_index)
    writer.write_differential(diff, target.differential.mask if first else None, position=target.name)
    writer.update_counts(session.frames_in, session.binner.frames_dropped)


def fiducial_px(position: Any, roi: tuple[int, int, int, int], pixel_size_nm: float) -> tuple[float, float] | None:
    """Where the position's fiducial (sample µm) appears in its frame (px), or None (then it is located).

    Sample (x, y) µm equal full-sensor pixel centres at stage (0, 0); a stage move by +s moves features by −s."""
    if position.fiducial_xy_um is None or not pixel_size_nm:
        return None
    um_per_px = pixel_size_nm / 1000.0
    x_px = (position.fiducial_xy_um[0] - position.x_um) / um_per_px - roi[0]
    y_px = (position.fiducial_xy_um[1] - position.y_um) / um_per_px - roi[1]
    if not (0 <= x_px < roi[2] and 0 <= y_px < roi[3]):
        return None
    return (x_px, y_px)


def build_router(positions: Any, camera_settings: Any, pixel_size_nm: float, template: LiveDifferential,
                 bin_size: int, dwell_bins: int) -> PositionRouter:
    """One target per position (crop inside the camera ROI, own differential like ``template``); ValueError
    naming the position when its ROI does not lie inside the camera's."""
    cam = camera_settings.roi
    camera_roi = (cam.x, cam.y, cam.width, cam.height)
    targets = []
    for index, position in enumerate(positions.positions):
        roi, crop = camera_roi, None
        if position.roi is not None and tuple(position.roi) != camera_roi:
            x, y, w, h = position.roi
            col, row = x - cam.x, y - cam.y
            if col < 0 or row < 0 or col + w > cam.width or row + h > cam.height:
                raise ValueError(
                    f"position {position.name!r}: roi {list(position.roi)} is not inside the camera ROI "
                    f"{list(camera_roi)} (x, y, width, height in sensor px); use a crop of the camera ROI or none")
            roi, crop = (x, y, w, h), (slice(row, row + h), slice(col, col + w))
        differential = LiveDifferential(template.mask_threshold, template.drift_correction,
                                        fiducial_px(position, roi, pixel_size_nm), template.fiducial_box_px,
                                        template.shift_order)
        targets.append(PositionTarget(index, position.name, differential, crop))
    return PositionRouter(targets, bin_size, dwell_bins, camera_settings.exposure_ms / 1000.0,
                          1.0 / camera_settings.frame_rate_hz)
