"""FramePipeline: camera thread -> fan-out -> binner thread -> differential thread -> run file.

    camera thread --Frame--> binner queue (must not drop) --> binner thread --BinnedFrame-->
                        `--> live view (newest only)          (raw frames -> writer)
    --> differential queue (must not drop) --> differential thread --> writer (binned + differential)
                                                                   `--> live differential (newest only)

Binning (per frame) and the differential (per bin: fiducial fit, shift, mask) run in separate
threads, so numpy work of both overlaps. A recording is a :class:`RecordingSession`; it is switched
on and off by markers sent down the same queues as the frames, so exactly the frames between the
markers are binned into the run file, and the partial last bin is flushed (and marked) before the
file is closed.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from operascope.acquisition.binner import BinnedFrame, Binner
from operascope.acquisition.capture import CaptureCounts, CaptureThread
from operascope.acquisition.frame_gaps import FrameGapLog
from operascope.acquisition.live_differential import DifferentialFrame, LiveDifferential
from operascope.acquisition.queues import ConsumerCounts, MustNotDropQueue, NewestOnlySlot
from operascope.acquisition.run_writer import RunWriter
from operascope.acquisition.worker import Worker
from operascope.devices.base import Camera, Frame

log = logging.getLogger(__name__)

Emit = Callable[[str, str, str], Any]                       # (level, source, message)
EchemAt = Callable[[float], tuple[float, float, float]]      # time_s -> (V, A, mAh/g)


@dataclass
class RecordingSession:
    """One recording: its writer, its binner (frames in, dropped, bins) and how it ended."""

    writer: RunWriter
    binner: Binner
    save_raw: bool
    t0_s: float
    duration_s: float | None
    ended: threading.Event = field(default_factory=threading.Event)
    raw_written: int = 0
    partial_bins: int = 0
    stop_reason: str = "running"
    end_s: float | None = None
    unsubscribe_events: Callable[[], None] | None = None
    calibration_written: Any = None
    begun: threading.Event = field(default_factory=threading.Event)
    #: every frame-id gap of the recording as an event (set by the recording service)
    gap_log: FrameGapLog = field(default_factory=lambda: FrameGapLog(lambda level, source, message: None))
    frames_after_end: int = 0
    positions: Any = None   # multi-position runs: the PositionRouter (also the ``binner`` of the counts)

    @property
    def frames_in(self) -> int:
        """Camera frames this recording received (all binned, the last bin possibly partial)."""
        return self.binner.frames_in

    def after_end(self, time_s: float) -> bool:
        """True for a rig time past the requested duration: not recorded (a stop that comes late in
        rig time at a high ``--speed`` must not make the run longer than asked)."""
        return self.duration_s is not None and time_s > self.t0_s + self.duration_s


@dataclass(frozen=True)
class Begin:
    """Marker: frames after this one belong to ``session``."""

    session: RecordingSession


@dataclass(frozen=True)
class BinReady:
    """A binned frame for the differential thread (``session`` None when only live)."""

    binned: BinnedFrame
    session: RecordingSession | None
    position: Any = None    # multi-position runs: the RoutedBin (position record and visit)


@dataclass(frozen=True)
class End:
    """Marker: flush the partial bin of ``session`` and detach it."""

    session: RecordingSession


@dataclass(frozen=True)
class Quit:
    """Marker: the loop reading this queue ends."""


BinnerItem = Union[Frame, Begin, End, Quit]
DifferentialItem = Union[BinReady, Begin, End, Quit]


class FramePipeline:
    """Runs the camera thread and the binner thread; owns the live-view and live-differential slots."""

    def __init__(self, camera: Camera, differential: LiveDifferential, live_bin_size: int, queue_capacity: int,
                 echem_at: EchemAt, emit: Emit, read_timeout_s: float = 2.0, lost_timeout_s: float = 30.0) -> None:
        self.differential = differential
        self._live_bin_size = live_bin_size
        self._live_binner = Binner(live_bin_size)
        self._echem_at = echem_at
        self._emit = emit
        self._stop = threading.Event()
        self.alarms = 0
        self.error: str | None = None
        self.session: RecordingSession | None = None
        self._pending_begin: RecordingSession | None = None   # set by begin(), taken by the binner thread
        self._hold_from_s: float | None = None   # set by hold_from(): frames read since then wait for begin()
        self._held: list[Frame] = []              # binner thread only
        self.live_frames: NewestOnlySlot[Frame] = NewestOnlySlot("live view")
        self.live_differentials: NewestOnlySlot[DifferentialFrame] = NewestOnlySlot("live differential")
        self.binner_queue: MustNotDropQueue[BinnerItem] = MustNotDropQueue("binner", queue_capacity, self._alarm)
        self.differential_queue: MustNotDropQueue[DifferentialItem] = MustNotDropQueue(
            "differential", max(2, queue_capacity // max(live_bin_size, 1)), self._alarm)
        self._binner_thread = Worker("binner", self._binner_loop, self._loop_failed)
        self._differential_thread = Worker("differential", self._differential_loop, self._loop_failed)
        self._differential_session: RecordingSession | None = None
        self.capture = CaptureThread(camera, [self._to_binner, self.live_frames.put], read_timeout_s, lost_timeout_s,
                                     on_event=lambda level, message: emit(level, "camera", message))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._differential_thread.start()
        self._binner_thread.start()
        self.capture.start()

    @property
    def is_live(self) -> bool:
        return self.capture.is_alive

    def stop_capture(self) -> None:
        """Stop the camera thread and stream; queued frames are still binned."""
        self.capture.stop()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the camera, bin what is queued, end the binner thread."""
        self.stop_capture()
        if self._binner_thread.is_alive():
            self.binner_queue.put(Quit())
            self._binner_thread.join(timeout_s)
        if self._differential_thread.is_alive():
            self.differential_queue.put(Quit())
            self._differential_thread.join(timeout_s)
        self._stop.set()

    def _loop_failed(self, exc: BaseException) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        self._emit("error", "engine", f"pipeline loop failed: {self.error}")

    def _alarm(self, message: str) -> None:
        self.alarms += 1
        self._emit("warning", "engine", message)

    def _to_binner(self, frame: Frame) -> None:
        self.binner_queue.put(frame, stop=self.capture.stop_event)

    # ------------------------------------------------------------------ recording markers
    def hold_from(self, t0_s: float | None) -> None:
        """Frames read at or after ``t0_s`` (rig s) are kept for the recording being started (while its file is
        created) and binned into it by :meth:`begin`; None releases them to the live view (the start failed)."""
        self._hold_from_s = t0_s

    def begin(self, session: RecordingSession, timeout_s: float = 10.0) -> None:
        """Frames after this call go to ``session``; returns once the binner switched."""
        if self._binner_thread.is_alive():
            # frames still queued but read after the run's t0 belong to it too (a busy machine can hold
            # seconds of frames in the queue): the binner switches at the first of them, not at the marker
            self._pending_begin = session
            self.binner_queue.put(Begin(session))
        if not (self._binner_thread.is_alive() and session.begun.wait(timeout_s)):
            raise TimeoutError("the binner thread did not start the recording; see the events for its error")

    def end(self, session: RecordingSession, timeout_s: float = 60.0) -> None:
        """Bin every queued frame, flush the partial bin into the file and detach ``session``."""
        if self._binner_thread.is_alive() and self._differential_thread.is_alive():
            self.binner_queue.put(End(session))
            if not session.ended.wait(timeout_s):
                self._emit("error", "engine", f"the pipeline did not finish the recording within {timeout_s:g} s; "
                                              "the last bins may be missing from the file")
                self._detach(session)
            return
        # a pipeline thread died: finish here so the file still gets the partial bin
        for partial, routed in self._partial_bins(session):
            session.partial_bins += 1
            self._publish(partial, session, routed)
        self._detach(session)

    # ------------------------------------------------------------------ binner thread
    def _binner_loop(self, stop: threading.Event) -> None:
        """Until a :class:`Quit` marker (queued frames are always binned first)."""
        while True:
            try:
                item = self.binner_queue.get(timeout_s=0.2)
            except queue.Empty:
                continue
            try:
                if isinstance(item, Frame):
                    pending = self._pending_begin
                    if pending is not None and item.host_time_s >= pending.t0_s:
                        self._start_session(pending)
                    if not self._hold(item):
                        self._bin_frame(item)
                elif isinstance(item, Begin):
                    if not item.session.begun.is_set():
                        self._start_session(item.session)
                elif isinstance(item, End):
                    self._flush_session(item.session)
                elif isinstance(item, Quit):
                    return
            except Exception as exc:  # noqa: BLE001 - report; keep the queue moving so nothing blocks
                self.error = f"binner failed: {type(exc).__name__}: {exc}"
                log.exception("binner: %s", self.error)
                self._emit("error", "binner", self.error)

    def _start_session(self, session: RecordingSession) -> None:
        """Binner thread: frames from now on go to ``session`` (the differential thread resets for it),
        the frames held since its t0 first."""
        self._pending_begin, self._hold_from_s = None, None
        self.session = session
        self.differential_queue.put(Begin(session))
        session.begun.set()
        held, self._held = self._held, []
        for frame in held:
            self._bin_frame(frame)

    def _hold(self, frame: Frame) -> bool:
        """Binner thread: keep ``frame`` for the recording being started; True when kept."""
        hold_from = self._hold_from_s
        if self.session is None and hold_from is not None and frame.host_time_s >= hold_from:
            self._held.append(frame)
            return True
        if hold_from is None and self._held:   # the start failed: the held frames were only live ones
            held, self._held = self._held, []
            for kept in held:
                self._bin_frame(kept)
        return False

    def _differential_loop(self, stop: threading.Event) -> None:
        """Until a :class:`Quit` marker."""
        while True:
            try:
                item = self.differential_queue.get(timeout_s=0.2)
            except queue.Empty:
                continue
            try:
                if isinstance(item, BinReady):
                    self._publish(item.binned, item.session, item.position)
                elif isinstance(item, Begin):
                    self.differential.reset()
                    self._differential_session = item.session
                elif isinstance(item, End):
                    self._detach(item.session)
                elif isinstance(item, Quit):
                    return
            except Exception as exc:  # noqa: BLE001
                self.error = f"live differential failed: {type(exc).__name__}: {exc}"
                log.exception("differential: %s", self.error)
                self._emit("error", "differential", self.error)
                if isinstance(item, End):
                    item.session.ended.set()

    def _bin_frame(self, frame: Frame) -> None:
        session = self.session
        if session is not None and session.after_end(_exposure_time_s(frame, session.binner)):
            session.frames_after_end += 1
            return
        binner = session.binner if session is not None else self._live_binner
        if session is not None and session.save_raw:
            session.writer.write_raw(frame)
            session.raw_written += 1
        if session is not None and session.positions is not None:
            for binned, routed in session.positions.add_frame(frame):
                self.differential_queue.put(BinReady(binned, session, routed))
            return
        binned = binner.add(frame)
        if session is not None and binner.last_gap is not None:
            session.gap_log.add(*binner.last_gap)
        if binned is not None:
            self.differential_queue.put(BinReady(binned, session))

    def _publish(self, binned: BinnedFrame, session: RecordingSession | None, position: Any = None) -> None:
        if position is not None and session is not None:
            from operascope.acquisition.position_router import publish_position_bin

            publish_position_bin(binned, position, session, self._echem_at, self._emit, self.live_differentials)
            return
        if session is None and not self.differential.accepts(binned.camera_times_ns):
            return   # live only: a bin exposed partly before the reference restart is not the new I_1
        diff = self.differential.process(binned.pixels, binned.mid_time_s)
        first = diff.index == 0   # a new reference (first bin, or after a reset)
        if first:
            for warning in self.differential.warnings:
                self._emit("warning", "differential", warning)
            self.differential.warnings.clear()
        self.live_differentials.put(diff)
        if session is not None:
            voltage_v, current_a, capacity = self._echem_at(binned.mid_time_s)
            session.writer.write_binned(binned, voltage_v, current_a, capacity)
            session.writer.write_differential(diff, self.differential.mask if first else None)
            session.writer.update_counts(session.frames_in, session.binner.frames_dropped)

    def _flush_session(self, session: RecordingSession) -> None:
        """Binner thread: send the partial bin and the end marker down to the differential thread."""
        session.gap_log.flush()
        for partial, routed in self._partial_bins(session):
            session.partial_bins += 1
            self.differential_queue.put(BinReady(partial, session, routed))
        if self.session is session:
            self.session = None
        self._live_binner = Binner(self._live_bin_size)
        self.differential_queue.put(End(session))

    @staticmethod
    def _partial_bins(session: RecordingSession) -> list[tuple[BinnedFrame, Any]]:
        """The partial last bin of ``session`` (of its open visit in a multi-position run), if any."""
        if session.positions is not None:
            return session.positions.flush()
        partial = session.binner.flush()
        return [] if partial is None else [(partial, None)]

    def _detach(self, session: RecordingSession) -> None:
        """Differential thread: everything of ``session`` is in the writer queue."""
        if self.session is session:
            self.session = None
        if self._differential_session is session:
            self._differential_session = None
        self.differential.reset()
        session.ended.set()

    # ------------------------------------------------------------------ counts
    def capture_counts(self) -> CaptureCounts:
        return self.capture.counts()

    def consumer_counts(self) -> list[ConsumerCounts]:
        """in/out/dropped of every consumer of the camera and of the binner."""
        return [self.binner_queue.counts(), self.differential_queue.counts(), self.live_frames.counts(),
                self.live_differentials.counts()]

    def failure(self) -> str | None:
        return self.capture.failed or self.error


def _exposure_time_s(frame: Frame, binner: Binner) -> float:
    """When ``frame`` was exposed (rig clock) as far as the binner's stamper knows; else its host read time
    (a frame read late, under load, still belongs to the recording it was exposed in)."""
    stamper = getattr(binner, "stamper", None)   # a multi-position router has none
    if stamper is None or stamper.unstamped or stamper.clock.pairs == 0:
        return frame.host_time_s
    return stamper.mid_time_s(frame.camera_time_ns)
