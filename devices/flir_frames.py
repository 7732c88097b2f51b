"""FLIR driver, frames half: an SDK image to a :class:`Frame` (pixels, run-continuous frame ID, drop counting),
and the camera clock latched now."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from operascope.devices.base import PIXEL_FORMATS, DeviceError, Frame, IncompleteFrame

log = logging.getLogger(__name__)


class FlirFramesMixin:
    """Image decoding of :class:`operascope.devices.flir.FlirCamera` (uses its SDK module, stats and clock)."""

    name: str
    _spin: Any
    _mono16: Any
    _nodes: Any
    _lost: bool

    def _frame_from(self, image: Any) -> Frame:
        frame_id = self._track_frame_id(int(image.GetFrameID()))
        timestamp_ns = int(image.GetTimeStamp())
        if image.IsIncomplete():
            status = int(image.GetImageStatus())
            self._stats.incomplete_frames += 1
            describe = getattr(self._spin, "Image_GetImageStatusDescription", None)
            text = describe(status) if describe else f"status {status}"
            raise IncompleteFrame(self.name, f"frame {frame_id} was incomplete ({text}, status {status}); discarded")
        pixels = self._pixels(image)
        self._stats.frames += 1
        return Frame(pixels=pixels, frame_id=frame_id, camera_time_ns=timestamp_ns, host_time_s=self._last_frame_host_s)

    def timestamp_now_ns(self) -> int | None:
        """Latch the camera's tick counter (``TimestampLatch``, then ``TimestampLatchValue``), the scale of
        the images' time stamps; None when the firmware has no latch. Does not wait for a blocked read
        (the node map has its own lock)."""
        self._check_not_lost()
        nodes = self._nodes

        def latch() -> int | None:
            if nodes is None or not (nodes.has("TimestampLatch") and nodes.has("TimestampLatchValue")):
                if not self._camera_valid():   # absent nodes of a camera that is gone: lost, not "no latch"
                    raise DeviceError(self.name, "the camera does not answer")
                return None
            nodes.execute("TimestampLatch")
            return nodes.get_int("TimestampLatchValue")

        return self._guarded("latching the camera time stamp", latch)

    def _pixels(self, image: Any) -> np.ndarray:
        """Copy the SDK buffer into a uint16 array (12-bit counts; Mono8 keeps its 8-bit values)."""
        spin = self._spin
        pixel_format = image.GetPixelFormat()
        height, width = int(image.GetHeight()), int(image.GetWidth())
        if pixel_format in (getattr(spin, "PixelFormat_Mono12Packed", None), getattr(spin, "PixelFormat_Mono12p", None)):
            converted = (self._processor.Convert(image, spin.PixelFormat_Mono16) if self._processor is not None
                         else image.Convert(spin.PixelFormat_Mono16))
            data = self._mono16.to_counts(converted.GetNDArray())
        elif pixel_format == spin.PixelFormat_Mono16:
            data = self._mono16.to_counts(image.GetNDArray())
        elif pixel_format == spin.PixelFormat_Mono8:
            data = np.asarray(image.GetNDArray(), dtype=np.uint8).astype(np.uint16)
        else:
            raise DeviceError(self.name, f"unsupported pixel format {image.GetPixelFormatName()}; use one of {', '.join(PIXEL_FORMATS)}")
        return np.ascontiguousarray(data.reshape(height, width))

    def _track_frame_id(self, sdk_id: int) -> int:
        """Map the camera's block ID to a run-continuous frame ID; count gaps as drops."""
        now_s = self._clock.now_s()
        if self._session_base is None or sdk_id <= self._last_sdk_id:
            gap = 0
            if self._gap_pending and self._last_frame_host_s is not None and self._requested is not None:
                gap = max(0, int(round((now_s - self._last_frame_host_s) * self._requested.frame_rate_hz)) - 1)
                self._stats.frames_lost_to_reconnect += gap
                self._stats.last_reconnect_gap_frames = gap
            self._gap_pending = False
            self._session_base = sdk_id
            self._session_offset = self._next_frame_id + gap
        elif sdk_id > self._last_sdk_id + 1:
            self._stats.dropped_frames += sdk_id - self._last_sdk_id - 1
        self._last_sdk_id = sdk_id
        frame_id = self._session_offset + (sdk_id - self._session_base)
        self._next_frame_id = frame_id + 1
        self._last_frame_host_s = now_s
        return frame_id

