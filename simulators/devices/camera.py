"""Simulated FLIR Grasshopper3 (GS3-U3-23S6M-C): renders the virtual sample on the virtual clock.

The camera free-runs on a grid of exposure starts t_k = k / frame_rate (virtual seconds).
``read()`` returns the oldest buffered frame, sleeping on the virtual clock until its exposure
has ended; if the reader falls more than ``camera_buffer_frames`` behind, the oldest frames are
overwritten (frame-id gaps), exactly like a camera with a bounded buffer pool — the clock never
slows down. Frame ids count exposures since the first ``start()``; ``camera_time_ns`` is the
exposure start on the virtual clock; ``host_time_s`` the virtual clock when read returns.

Pixel values are 12-bit counts 0..4095 in uint16 for Mono12*/Mono16 and 0..255 for Mono8.

Faults (role "camera"): ``timeout`` (read raises DeviceTimeout and the frames of that interval
are lost), ``incomplete_frame`` (IncompleteFrame; the frame id is consumed), ``drop_frames``
(frames skipped: id gaps), ``device_lost`` (DeviceLost on every call until ``reconnect()``).
"""

from __future__ import annotations

import math
import logging
import threading
from typing import TYPE_CHECKING

from operascope.devices.base import (
    PIXEL_FORMATS,
    Camera,
    CameraSettings,
    DeviceError,
    DeviceInfo,
    DeviceLost,
    DeviceTimeout,
    Frame,
    IncompleteFrame,
    OutOfRange,
    Roi,
    validate_in_range,
)
from operascope.simulators.world.optics import SENSOR_SHAPE

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from operascope.simulators.world.world import World

#: Maximum full-frame rate per pixel format (Hz); smaller ROIs scale with 1200 / height.
FULL_FRAME_MAX_FPS: dict[str, float] = {"Mono8": 162.67, "Mono12Packed": 108.0, "Mono12p": 108.0, "Mono16": 82.0}
#: Absolute cap of the frame rate for tiny ROIs (Hz).
MAX_FPS_CAP = 1000.0
EXPOSURE_RANGE_MS = (0.005, 30_000.0)
GAIN_RANGE_DB = (0.0, 48.0)
MIN_ROI_PX = 8


def max_frame_rate_hz(roi_height_px: int, pixel_format: str) -> float:
    """Highest frame rate (Hz) the camera can do for this ROI height and pixel format."""
    return min(FULL_FRAME_MAX_FPS[pixel_format] * SENSOR_SHAPE[0] / max(roi_height_px, 1), MAX_FPS_CAP)


class SimulatedCamera(Camera):
    """A :class:`operascope.devices.base.Camera` that renders frames from a :class:`World`."""

    def __init__(self, world: World) -> None:
        self._world = world
        self._clock = world.clock
        self._lock = threading.RLock()
        self._open = False
        self._streaming = False
        acq = world.config.acquisition
        roi = Roi(*acq.roi) if acq.roi is not None else Roi(0, 0, SENSOR_SHAPE[1], SENSOR_SHAPE[0])
        self._settings = CameraSettings(acq.exposure_ms, acq.frame_rate_hz, roi, acq.pixel_format, acq.gain_db)
        self._next_index = 0
        self._id_origin: int | None = None
        self.buffer_frames = world.sim.camera_buffer_frames
        #: frame ids lost because reading/rendering fell behind the virtual clock (the simulation cannot keep up)
        self.frames_skipped_behind = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def sensor_shape(self) -> tuple[int, int]:
        return SENSOR_SHAPE

    def open(self) -> None:
        with self._lock:
            if self._world.is_lost(self.name):
                raise DeviceLost(self.name, "camera not found on the bus; check the USB3 cable")
            self._open = True
        log.info("simulated camera opened")

    def close(self) -> None:
        with self._lock:
            self._streaming = False
            self._open = False

    def info(self) -> DeviceInfo:
        return DeviceInfo(model="Simulated Grasshopper3 GS3-U3-23S6M-C", serial="SIM-CAM-0", firmware="sim", driver="simulated")

    @property
    def is_open(self) -> bool:
        return self._open

    def _check_link(self) -> None:
        self._require_open()
        if self._world.is_lost(self.name):
            raise DeviceLost(self.name, "camera was unplugged; call reconnect() when it is back")

    # ------------------------------------------------------------------ settings

    def configure(
        self,
        exposure_ms: float,
        frame_rate_hz: float,
        roi: Roi | None = None,
        pixel_format: str = "Mono16",
        gain_db: float = 0.0,
    ) -> CameraSettings:
        with self._lock:
            self._check_link()
            if self._streaming:
                raise DeviceError(self.name, "cannot change settings while streaming; call stop() first")
            if pixel_format not in PIXEL_FORMATS:
                raise OutOfRange(self.name, f"pixel format {pixel_format!r} is not supported; allowed: {', '.join(PIXEL_FORMATS)}")
            roi = roi or Roi(0, 0, SENSOR_SHAPE[1], SENSOR_SHAPE[0])
            height, width = SENSOR_SHAPE
            if not (
                roi.width >= MIN_ROI_PX
                and roi.height >= MIN_ROI_PX
                and roi.x >= 0
                and roi.y >= 0
                and roi.x + roi.width <= width
                and roi.y + roi.height <= height
            ):
                raise OutOfRange(self.name, f"roi {roi} must lie within the {width}x{height} sensor and be at least {MIN_ROI_PX} px on each side")
            fps_max = max_frame_rate_hz(roi.height, pixel_format)
            fps = validate_in_range(self.name, "frame rate", frame_rate_hz, 1e-3, fps_max, "Hz")
            exposure = validate_in_range(self.name, "exposure", exposure_ms, *EXPOSURE_RANGE_MS, "ms")
            period_ms = 1000.0 / fps
            if exposure > period_ms:
                raise OutOfRange(
                    self.name, f"exposure {exposure:g} ms is longer than the frame period {period_ms:g} ms at {fps:g} Hz; lower one of them"
                )
            gain = validate_in_range(self.name, "gain", gain_db, *GAIN_RANGE_DB, "dB")
            self._settings = CameraSettings(exposure, fps, roi, pixel_format, gain)
            return self._settings

    def settings(self) -> CameraSettings:
        return self._settings

    # ------------------------------------------------------------------ streaming

    def start(self) -> None:
        with self._lock:
            self._check_link()
            if self._streaming:
                return
            period = 1.0 / self._settings.frame_rate_hz
            self._next_index = int(math.ceil(self._clock.now_s() / period - 1e-9))
            if self._id_origin is None:
                # frame ids keep counting exposures over later restarts and reconnects
                self._id_origin = self._next_index
            self._streaming = True

    def stop(self) -> None:
        # no lock: a read() blocked in another thread ends at its next frame or timeout
        self._streaming = False

    @property
    def is_streaming(self) -> bool:
        return self._streaming

    def _frame_id(self, index: int) -> int:
        return index - (self._id_origin or 0)

    def read(self, timeout_s: float = 1.0) -> Frame:
        with self._lock:
            self._check_link()
            if not self._streaming:
                raise DeviceError(self.name, "not streaming; call start() before read()")
            settings = self._settings
            period = 1.0 / settings.frame_rate_hz
            exposure_s = settings.exposure_ms / 1000.0
            deadline = self._clock.now_s() + timeout_s
            if self._world.consume_fault(self.name, "timeout"):
                self._clock.sleep_until_s(deadline)
                self._next_index = max(self._next_index, int(math.ceil(self._clock.now_s() / period)))
                raise DeviceTimeout(self.name, f"no frame within {timeout_s:g} s; check the trigger settings and the cable")
            while True:
                index = self._next_index
                ready_s = index * period + exposure_s
                now = self._clock.now_s()
                if ready_s > deadline:
                    self._clock.sleep_until_s(deadline)
                    raise DeviceTimeout(self.name, f"no frame within {timeout_s:g} s (frame period {period:g} s)")
                if ready_s > now:
                    self._clock.sleep_until_s(ready_s)
                    now = self._clock.now_s()
                if self._world.is_lost(self.name):
                    raise DeviceLost(self.name, "camera was unplugged; call reconnect() when it is back")
                newest_ready = int(math.floor((now - exposure_s) / period))
                if newest_ready - index + 1 > self.buffer_frames:
                    # the reader (or this renderer) fell behind the virtual clock: ids overwritten
                    self.frames_skipped_behind += newest_ready - self.buffer_frames + 1 - index
                    index = newest_ready - self.buffer_frames + 1
                self._next_index = index + 1
                start_s = index * period
                if self._world.consume_fault(self.name, "drop_frames", start_s):
                    continue
                if self._world.consume_fault(self.name, "incomplete_frame", start_s):
                    raise IncompleteFrame(self.name, f"frame {self._frame_id(index)} arrived incomplete; it was discarded")
                # the scene at mid-exposure stands for the whole (short) exposure
                pixels = self._world.render_at(start_s + 0.5 * exposure_s, settings.roi, settings.exposure_ms,
                                               settings.gain_db, frame_key=index)
                if settings.pixel_format == "Mono8":
                    pixels >>= 4
                return Frame(
                    pixels=pixels,
                    frame_id=self._frame_id(index),
                    camera_time_ns=int(round(start_s * 1e9)),
                    host_time_s=self._clock.now_s(),
                )

    def timestamp_now_ns(self) -> int | None:
        """The virtual clock now (ns), the scale of ``camera_time_ns``; no lock (a blocked read keeps it)."""
        self._check_link()
        return int(round(self._clock.now_s() * 1e9))

    def reconnect(self) -> None:
        """Re-open after DeviceLost (raises DeviceLost while still unplugged); settings are kept."""
        with self._lock:
            if not self._world.try_reconnect(self.name):
                raise DeviceLost(self.name, "camera still not found on the bus")
            self._streaming = False
            self._open = True
