"""One emulated camera: its feature values, its clock-driven stream, its on-camera frame memory and host buffer pool.

Model (values marked "fake" are this emulator's choices, not FLIR's): the frame period is
``1 / AcquisitionFrameRate`` when the frame-rate nodes enable it, otherwise the maximum rate for the pixel
format and ROI (sensor row time and the USB3 throughput cap of devices.md 1.2). Frames are produced lazily
on the camera's clock when the application (or an event handler's pump) asks; a frame is ready when its
exposure ends. With ``TriggerMode`` On, a frame starts only at a software trigger (``TriggerSoftware``);
hardware lines are not wired in the emulator, so line triggers never fire.

Host buffer pool full ("OldestFirst"): a USB3 Vision camera is flow-controlled by the host, so frames wait
in the camera's own frame memory and reach the host once buffers are released; only when that memory is
full are frames lost (the frame ID jumps). Memory size: ``camera_memory_bytes`` (fake default 128 MB;
FLIR's datasheets give the value per model, not rechecked here). Whether a frame lost in the camera leaves a
gap in the block ID is NOT confirmed by FLIR material; the emulator skips its ID.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import Any, Callable

import numpy as np

from operascope.devices.base import Clock, Roi

from .constants import (
    BUFFER_HANDLING_MODES,
    BYTES_PER_PIXEL,
    CHUNK_NAMES,
    EVENT_NAMES,
    PIXEL_FORMAT_VALUES,
    SPINNAKER_ERR_ERROR,
    SPINNAKER_IMAGE_STATUS_MISSING_PACKETS,
    SPINNAKER_IMAGE_STATUS_NO_ERROR,
)
from .errors import SpinnakerException
from .images import ImagePtr
from .pixels import pack_pixels

# Grasshopper3 GS3-U3-23S6M-C numbers (devices.md 1.2); row time and overhead rows are fake,
# chosen so that the full frame in Mono8 runs at 162.67 Hz.
GS3_SENSOR_SHAPE = (1200, 1920)
GS3_MODEL = "Grasshopper3 GS3-U3-23S6M"
ROW_TIME_US = 1e6 / 162.67 / 1214.0
OVERHEAD_ROWS = 14
LINK_BYTES_PER_S = 384.768e6
EXPOSURE_MIN_US = 5.0
EXPOSURE_MAX_US = 32_000_000.0
GAIN_RANGE_DB = (0.0, 48.0)
FRAME_RATE_MIN_HZ = 1.0
CAMERA_MEMORY_BYTES = 128 * 1024 * 1024
EXPOSURE_END_EVENT_ID = 40003  # fake event ID


def max_frame_rate_hz(pixel_format: str, width: int, height: int) -> float:
    sensor_hz = 1e6 / (ROW_TIME_US * (height + OVERHEAD_ROWS))
    link_hz = LINK_BYTES_PER_S / (width * height * BYTES_PER_PIXEL[pixel_format])
    return min(sensor_hz, link_hz)


class FakeDevice:
    """State of one attached camera: feature values, streaming, camera memory and the host buffer pool."""

    def __init__(self, serial: str, source: Callable[..., Any], clock: Clock, model: str, sensor_shape: tuple[int, int],
                 frame_rate_nodes: str, firmware: str, faults: Any = None, camera_memory_bytes: int = CAMERA_MEMORY_BYTES) -> None:
        if frame_rate_nodes not in ("GEN2", "SFNC"):
            raise ValueError(f"frame_rate_nodes must be 'GEN2' or 'SFNC', got {frame_rate_nodes!r}")
        if camera_memory_bytes < 0:
            raise ValueError(f"camera_memory_bytes must be >= 0, got {camera_memory_bytes!r}")
        self.serial = serial
        self.source = source
        self.clock = clock
        self.model = model
        self.sensor_shape = sensor_shape
        self.frame_rate_nodes = frame_rate_nodes
        self.firmware = firmware
        self.camera_memory_bytes = int(camera_memory_bytes)
        self.cond = threading.Condition(threading.RLock())
        self.present = True
        self.generation = 0
        self.in_use_elsewhere = False
        self.faults = faults
        self.lost_by_world = False
        self.render_key = 0
        self.log: list[tuple[str, Any]] = []
        self.image_handlers: list[Any] = []
        self.device_handlers: list[tuple[Any, str | None]] = []
        self.pump: threading.Thread | None = None
        self.power_on()

    # lifecycle ------------------------------------------------------------------------
    def power_on(self) -> None:
        """Factory defaults, as after plugging in."""
        height, width = self.sensor_shape
        self.power_on_s = self.clock.now_s()
        self.initialised = False
        self.streaming = False
        self.v: dict[str, Any] = {
            "PixelFormat": "Mono8", "Width": width, "Height": height, "OffsetX": 0, "OffsetY": 0,
            "AcquisitionMode": "Continuous", "ExposureAuto": "Continuous", "ExposureTime": 10_000.0,
            "GainAuto": "Continuous", "Gain": 0.0, "AcquisitionFrameRateAuto": "Continuous",
            "AcquisitionFrameRateEnabled": False, "AcquisitionFrameRateEnable": False, "AcquisitionFrameRate": 30.0,
            "GammaEnable": True, "BlackLevel": 0.0,
            "TriggerMode": "Off", "TriggerSelector": "FrameStart", "TriggerSource": "Line0",
            "TriggerActivation": "RisingEdge", "TriggerOverlap": "Off",
            "ChunkModeActive": False, "ChunkSelector": "Image", "EventSelector": "ExposureEnd",
            "StreamBufferHandlingMode": "OldestFirst", "StreamBufferCountMode": "Auto", "StreamBufferCountManual": 10,
        }
        self.chunk_enable = {name: name == "Image" for name in CHUNK_NAMES}
        self.event_notification = {name: False for name in EVENT_NAMES}
        self.last_chunks: dict[str, Any] | None = None
        self.latched_timestamp_ns = 0   # SFNC TimestampLatchValue: what the last TimestampLatch took (0 until then)
        self.queue: deque[tuple[int, float, int]] = deque()
        self.held: deque[tuple[int, float, int]] = deque()
        self.triggers: deque[float] = deque()
        self.pending_events: deque[tuple[str, int]] = deque()
        self.outstanding = 0
        self.next_index = 0
        self.anchor_index = 0
        self.anchor_s = 0.0
        self.last_trigger_s = -math.inf
        self.pending_incomplete = 0
        self.pending_drops = 0
        self.stall_until_s = -math.inf
        self.pending_errors: deque[int] = deque()
        self.produced = 0
        self.dropped = 0
        self.delivered = 0

    def notify_all(self) -> None:
        self.cond.notify_all()

    def check_present(self) -> None:  # the node-map owner protocol (see nodes._Always)
        return None

    def release_buffer(self) -> None:
        with self.cond:
            self.outstanding = max(0, self.outstanding - 1)
            self.cond.notify_all()

    # derived values ---------------------------------------------------------------------
    def max_frame_rate_hz(self) -> float:
        return max_frame_rate_hz(self.v["PixelFormat"], self.v["Width"], self.v["Height"])

    def frame_rate_enabled(self) -> bool:
        if self.frame_rate_nodes == "SFNC":
            return bool(self.v["AcquisitionFrameRateEnable"])
        return self.v["AcquisitionFrameRateAuto"] == "Off" and bool(self.v["AcquisitionFrameRateEnabled"])

    def frame_rate_hz(self) -> float:
        if self.frame_rate_enabled():
            return min(self.v["AcquisitionFrameRate"], self.max_frame_rate_hz())
        return self.max_frame_rate_hz()

    def exposure_max_us(self) -> float:
        return min(EXPOSURE_MAX_US, 1e6 / self.frame_rate_hz())

    def clamp_exposure(self) -> None:
        """The exposure never exceeds the frame period (devices.md 1.6)."""
        self.v["ExposureTime"] = min(self.v["ExposureTime"], self.exposure_max_us())
        if self.v["AcquisitionFrameRate"] > self.max_frame_rate_hz():
            self.v["AcquisitionFrameRate"] = self.max_frame_rate_hz()

    def buffer_count(self) -> int:
        return int(self.v["StreamBufferCountManual"]) if self.v["StreamBufferCountMode"] == "Manual" else 10

    def triggered(self) -> bool:
        return self.v["TriggerMode"] == "On"

    def frame_bytes(self) -> float:
        return self.v["Width"] * self.v["Height"] * BYTES_PER_PIXEL[self.v["PixelFormat"]]

    def memory_frames(self) -> int:
        return int(self.camera_memory_bytes // max(self.frame_bytes(), 1.0))

    # streaming --------------------------------------------------------------------------
    def begin(self) -> None:
        self.streaming = True
        self.queue.clear()
        self.held.clear()
        self.triggers.clear()
        self.next_index = 0
        self.anchor_index = 0
        self.anchor_s = self.clock.now_s()
        self.last_trigger_s = -math.inf

    def end(self) -> None:
        self.streaming = False
        self.queue.clear()
        self.held.clear()
        self.triggers.clear()
        self.cond.notify_all()

    def software_trigger(self) -> None:
        """A frame starts now if the camera is streaming and ready (a trigger inside the frame period is ignored)."""
        now_s = self.clock.now_s()
        if self.streaming and now_s - self.last_trigger_s >= 1.0 / self.max_frame_rate_hz():
            self.triggers.append(now_s)
            self.last_trigger_s = now_s
        self.cond.notify_all()

    def _capacity(self) -> int:
        return 1 if self.v["StreamBufferHandlingMode"] == "NewestOnly" else self.buffer_count()

    def _host_free(self) -> bool:
        return self.buffer_count() - self.outstanding - len(self.queue) > 0 and len(self.queue) < self._capacity()

    def _store(self, frame: tuple[int, float, int]) -> None:
        """Hand one frame to the host: a free buffer, else overwrite (overwrite modes), else camera memory."""
        if not self.held and self._host_free():
            self.queue.append(frame)
        elif self.v["StreamBufferHandlingMode"] != "OldestFirst":
            if self.queue:
                self.queue.popleft()
            self.dropped += 1
            self.queue.append(frame)
        elif len(self.held) < self.memory_frames():
            self.held.append(frame)
        else:
            self.dropped += 1

    def drain_held(self) -> None:
        """Frames waiting in camera memory move to host buffers freed since."""
        while self.held and self._host_free():
            self.queue.append(self.held.popleft())

    def _due_times(self) -> list[float]:
        """Exposure start times of frames whose exposure has ended by now."""
        exposure_s = self.v["ExposureTime"] / 1e6
        now_s = self.clock.now_s()
        if self.triggered():
            due = []
            while self.triggers and self.triggers[0] + exposure_s <= now_s:
                due.append(self.triggers.popleft())
            return due
        period_s = 1.0 / self.frame_rate_hz()
        count = math.floor((now_s - exposure_s - self.anchor_s) / period_s) + 1 - (self.next_index - self.anchor_index)
        if count <= 0:
            return []
        room = self._capacity() + 2 + (self.memory_frames() if self.v["StreamBufferHandlingMode"] == "OldestFirst" else 0)
        if count > room:  # these frames could never be kept: lose them in bulk
            self._lose(count - room)
            count = room
        return [self.anchor_s + (self.next_index + i - self.anchor_index) * period_s for i in range(count)]

    def advance(self) -> None:
        """Expose every frame that is due on the camera clock and queue, hold or drop it."""
        if not self.streaming:
            return
        self.drain_held()
        for time_s in self._due_times():
            index = self.next_index
            self.next_index += 1
            self.produced += 1
            if self.event_notification["ExposureEnd"]:
                self.pending_events.append(("EventExposureEnd", EXPOSURE_END_EVENT_ID))
            world_fault = self.faults.exposure_fault(time_s) if self.faults is not None else None
            if self.pending_drops > 0 or time_s < self.stall_until_s or world_fault in ("timeout", "drop_frames"):
                self.pending_drops = max(0, self.pending_drops - 1)
                self.dropped += 1
                continue
            status = SPINNAKER_IMAGE_STATUS_NO_ERROR
            if self.pending_incomplete > 0 or world_fault == "incomplete_frame":
                self.pending_incomplete = max(0, self.pending_incomplete - 1)
                status = SPINNAKER_IMAGE_STATUS_MISSING_PACKETS
            self._store((index, time_s, status))

    def _lose(self, count: int) -> None:
        """``count`` exposures happen but never reach the host (their IDs are skipped)."""
        self.pending_drops = max(0, self.pending_drops - count)
        self.pending_incomplete = max(0, self.pending_incomplete - count)
        self.next_index += count
        self.produced += count
        self.dropped += count

    def retime(self, change: Callable[[], None]) -> None:
        """Apply a change that may alter the frame period without renumbering past frames."""
        if not self.streaming:
            change()
            return
        self.advance()
        next_s = self.anchor_s + (self.next_index - self.anchor_index) / self.frame_rate_hz()
        change()
        self.anchor_s, self.anchor_index = next_s, self.next_index

    def next_frame_time_s(self) -> float:
        """When the next exposure ends (camera clock, s); a triggered camera waits for its trigger."""
        exposure_s = self.v["ExposureTime"] / 1e6
        if self.triggered():
            return self.triggers[0] + exposure_s if self.triggers else self.clock.now_s() + 0.05 * self.clock.speed
        return self.anchor_s + (self.next_index - self.anchor_index) / self.frame_rate_hz() + exposure_s

    def take(self) -> tuple[int, float, int]:
        frame = self.queue.pop() if self.v["StreamBufferHandlingMode"] == "NewestFirst" else self.queue.popleft()
        self.drain_held()
        return frame

    def timestamp_ns(self, time_s: float) -> int:
        """The tick counter (ns since power-on) at clock time ``time_s``: image stamps and the latch."""
        return int(round((time_s - self.power_on_s) * 1e9))

    def latch_timestamp(self) -> None:
        self.latched_timestamp_ns = self.timestamp_ns(self.clock.now_s())

    def render(self, index: int, time_s: float, status: int) -> ImagePtr:
        """The image of frame ``index`` exposed at ``time_s``; occupies one host buffer until released."""
        roi = Roi(self.v["OffsetX"], self.v["OffsetY"], self.v["Width"], self.v["Height"])
        exposure_ms, gain_db = self.v["ExposureTime"] / 1000.0, self.v["Gain"]
        render_at = getattr(self.source, "render_at", None)
        try:
            if render_at is not None:
                self.render_key += 1
                counts = np.asarray(render_at(time_s, roi, exposure_ms, gain_db, self.render_key))
            else:
                counts = np.asarray(self.source(roi, exposure_ms, gain_db))
        except Exception as exc:  # an emulator-side failure reaches the application as an SDK error
            raise SpinnakerException(f"frame source failed: {type(exc).__name__}: {exc}", SPINNAKER_ERR_ERROR) from None
        if counts.shape != (roi.height, roi.width):
            raise SpinnakerException(f"frame source returned shape {counts.shape}, expected {(roi.height, roi.width)}",
                                     SPINNAKER_ERR_ERROR)
        pixel_format = self.v["PixelFormat"]
        timestamp_ns = self.timestamp_ns(time_s)
        chunks = self._chunks(index, timestamp_ns) if self.v["ChunkModeActive"] else None
        self.last_chunks = chunks
        self.outstanding += 1
        self.delivered += 1
        return ImagePtr(pack_pixels(counts, pixel_format), roi.width, roi.height, PIXEL_FORMAT_VALUES[pixel_format],
                        index, timestamp_ns, status, self, chunks, (roi.x, roi.y))

    def _chunks(self, index: int, timestamp_ns: int) -> dict[str, Any]:
        values = {"FrameID": index, "ExposureTime": self.v["ExposureTime"], "Gain": self.v["Gain"],
                  "BlackLevel": self.v["BlackLevel"], "Width": self.v["Width"], "Height": self.v["Height"],
                  "OffsetX": self.v["OffsetX"], "OffsetY": self.v["OffsetY"], "Timestamp": timestamp_ns,
                  "PixelFormat": PIXEL_FORMAT_VALUES[self.v["PixelFormat"]], "SequencerSetActive": 0, "CRC": 0}
        return {name: value for name, value in values.items() if self.chunk_enable.get(name)}

    def set_buffer_mode(self, mode: str) -> None:
        if mode not in BUFFER_HANDLING_MODES:
            raise ValueError(mode)
        self.v["StreamBufferHandlingMode"] = mode
