"""CaptureThread: reads the camera, stamps frames, counts gaps in frame ids, fans frames out."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from operascope.acquisition.worker import Worker
from operascope.devices.base import Camera, DeviceLost, DeviceTimeout, Frame, IncompleteFrame

log = logging.getLogger(__name__)

FrameConsumer = Callable[[Frame], None]
EventSink = Callable[[str, str], None]  # (level, message)


@dataclass(frozen=True)
class CaptureCounts:
    """Frames read, frame ids missing (dropped), incomplete frames discarded, read timeouts."""

    frames_in: int
    frames_dropped: int
    incomplete: int
    timeouts: int
    last_frame_id: int | None
    reconnects: int


def frame_gap_message(first_missing_id: int, last_missing_id: int) -> str:
    """The event text for camera frame ids ``first..last`` missing (dropped before the engine got them)."""
    n = last_missing_id - first_missing_id + 1
    ids = f"id {first_missing_id}" if n == 1 else f"ids {first_missing_id}..{last_missing_id}"
    return f"frame-id gap: {n} frame{'s' if n != 1 else ''} missing ({ids}; counted as dropped)"


class CaptureThread:
    """Reads ``camera`` until stopped and hands every good frame to each consumer in order.

    ``frames_dropped`` counts ids missing between consecutive frames (an incomplete frame is
    discarded, so its id also shows up as a gap). A lost camera is reconnected with back-off for
    up to ``lost_timeout_s`` wall seconds (the last try at that deadline); after that ``failed`` holds
    the reason and the thread ends.
    Consumers must be quick (queue puts); a must-not-drop consumer may block it.
    """

    def __init__(self, camera: Camera, consumers: list[FrameConsumer], read_timeout_s: float = 2.0,
                 lost_timeout_s: float = 30.0, on_event: EventSink | None = None) -> None:
        self.camera = camera
        self._consumers = list(consumers)
        self._consumers_lock = threading.Lock()
        self.read_timeout_s = read_timeout_s
        self.lost_timeout_s = lost_timeout_s
        self._on_event = on_event or (lambda level, message: None)
        self._stop = threading.Event()
        self.failed: str | None = None
        self._lock = threading.Lock()
        self._frames_in = self._dropped = self._incomplete = self._timeouts = self._reconnects = 0
        self._last_id: int | None = None
        self._lost_at_s: float | None = None   # wall time of the last loss, until the first frame after it
        self._thread = Worker("camera-capture", lambda _stop: self._run(),
                              lambda exc: self._on_event("error", f"capture loop failed: {exc}"))

    @property
    def stop_event(self) -> threading.Event:
        return self._stop

    def add_consumer(self, consumer: FrameConsumer) -> None:
        with self._consumers_lock:
            self._consumers.append(consumer)

    def remove_consumer(self, consumer: FrameConsumer) -> None:
        with self._consumers_lock:
            if consumer in self._consumers:
                self._consumers.remove(consumer)

    def start(self) -> None:
        self.camera.start()
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop reading, join the thread, stop the camera stream."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        try:
            self.camera.stop()
        except Exception as exc:  # noqa: BLE001 - report and go on closing
            self._on_event("warning", f"camera stop failed: {exc}")

    @property
    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def counts(self) -> CaptureCounts:
        with self._lock:
            return CaptureCounts(self._frames_in, self._dropped, self._incomplete, self._timeouts, self._last_id,
                                 self._reconnects)

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.camera.read(self.read_timeout_s)
            except DeviceTimeout as exc:
                with self._lock:
                    self._timeouts += 1
                self._on_event("warning", f"camera read timed out: {exc.detail}")
                continue
            except IncompleteFrame as exc:
                with self._lock:
                    self._incomplete += 1
                self._on_event("warning", f"incomplete frame discarded: {exc.detail}")
                continue
            except DeviceLost as exc:
                self._lost_at_s = time.monotonic()
                self._on_event("error", f"camera lost: {exc.detail}; reconnecting")
                if not self._reconnect():
                    return
                continue
            except Exception as exc:  # noqa: BLE001 - any other failure ends capture, reported
                self.failed = f"camera read failed: {type(exc).__name__}: {exc}"
                self._on_event("error", self.failed)
                return
            self._accept(frame)

    def _accept(self, frame: Frame) -> None:
        with self._lock:
            gap = frame.frame_id - self._last_id - 1 if self._last_id is not None else 0
            if gap > 0:
                self._dropped += gap
            self._last_id = frame.frame_id
            self._frames_in += 1
        if self._lost_at_s is not None:
            self._on_event("warning", f"camera gap: first frame {time.monotonic() - self._lost_at_s:.1f} s after the "
                                      f"loss; {max(gap, 0)} frames missed (counted as dropped)")
            self._lost_at_s = None
        elif gap > 0:
            self._on_event("warning", frame_gap_message(frame.frame_id - gap, frame.frame_id - 1))
        with self._consumers_lock:
            consumers = list(self._consumers)
        for consumer in consumers:
            consumer(frame)

    def _reconnect(self) -> bool:
        deadline = time.monotonic() + self.lost_timeout_s
        delay_s = 0.1
        while not self._stop.is_set():
            try:
                self.camera.reconnect()
                self.camera.start()
                with self._lock:
                    self._reconnects += 1
                self._on_event("info", "camera reconnected")
                return True
            except Exception as exc:  # noqa: BLE001
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0:     # the last try was at (or after) the deadline
                    self.failed = f"camera lost and not back after {self.lost_timeout_s:.0f} s: {exc}"
                    self._on_event("error", self.failed)
                    return False
                self._stop.wait(min(delay_s, remaining_s))
                delay_s = min(delay_s * 2, 2.0)
        return False
