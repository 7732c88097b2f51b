"""FLIR driver, settings half: validate a request against the camera's limits, write it in a safe order, read back."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from operascope.devices.base import PIXEL_FORMATS, CameraSettings, OutOfRange, Roi, validate_in_range
from operascope.devices.flir_sdk import _EXPOSURE_CLAMP_TOLERANCE, _LINEAR_RESPONSE_NODES, _Request

log = logging.getLogger(__name__)


class FlirSettingsMixin:
    """``configure`` / ``settings`` of :class:`operascope.devices.flir.FlirCamera` (uses its node access and lock)."""

    name: str
    _nodes: Any
    _lock: Any

    def configure(
        self,
        exposure_ms: float,
        frame_rate_hz: float,
        roi: Roi | None = None,
        pixel_format: str = "Mono16",
        gain_db: float = 0.0,
    ) -> CameraSettings:
        """Validate everything (nothing written), then write in the safe order and read back.

        Order: PixelFormat -> ROI -> AcquisitionMode -> frame rate -> ExposureAuto Off ->
        ExposureTime -> GainAuto Off -> Gain -> linear response -> stream buffers. If the
        camera streams, it is stopped for the change and restarted.
        """
        with self._lock:
            self._check_not_lost()
            request = self._guarded("reading camera limits", lambda: self._validate(exposure_ms, frame_rate_hz, roi, pixel_format, gain_db))
            was_streaming = self._streaming
            if was_streaming:
                self.stop()
            self._guarded("configuring the camera", lambda: self._apply(request))
            self._requested = request
            if was_streaming:
                self.start()
            return self.settings()

    def _validate(self, exposure_ms: float, frame_rate_hz: float, roi: Roi | None, pixel_format: str, gain_db: float) -> _Request:
        nodes = self._nodes
        if pixel_format not in PIXEL_FORMATS:
            raise OutOfRange(self.name, f"pixel_format {pixel_format!r} is not one of {', '.join(PIXEL_FORMATS)}")
        available = nodes.enum_symbols("PixelFormat")
        if pixel_format not in available:
            raise OutOfRange(self.name, f"pixel_format {pixel_format!r} is not offered by this camera; allowed: {', '.join(available)}")
        roi = self._validate_roi(roi)
        rate_low, rate_high = nodes.float_limits("AcquisitionFrameRate")
        same_geometry = pixel_format == nodes.get_enum("PixelFormat") and roi == self._current_roi()
        frame_rate_hz = validate_in_range(self.name, "frame_rate_hz", frame_rate_hz, rate_low, rate_high if same_geometry else 1e6, "Hz")
        exposure_low_ms = nodes.float_limits("ExposureTime")[0] / 1000.0
        period_ms = 1000.0 / frame_rate_hz
        exposure_ms = validate_in_range(self.name, "exposure_ms (at most the frame period)", exposure_ms, exposure_low_ms, period_ms, "ms")
        gain_low, gain_high = nodes.float_limits("Gain")
        gain_db = validate_in_range(self.name, "gain_db", gain_db, gain_low, gain_high, "dB")
        return _Request(exposure_ms, frame_rate_hz, roi, pixel_format, gain_db)

    def _current_roi(self) -> Roi:
        n = self._nodes
        return Roi(n.get_int("OffsetX"), n.get_int("OffsetY"), n.get_int("Width"), n.get_int("Height"))

    def _validate_roi(self, roi: Roi | None) -> Roi:
        height_max, width_max = self._sensor_shape
        if roi is None:
            return Roi(0, 0, width_max, height_max)
        if not isinstance(roi, Roi):
            raise OutOfRange(self.name, f"roi must be a operascope.devices.base.Roi or None, got {roi!r}")
        values = (roi.x, roi.y, roi.width, roi.height)
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            raise OutOfRange(self.name, f"roi {values} must be whole pixels")
        n = self._nodes
        width_min, _, width_inc = n.int_limits("Width")
        height_min, _, height_inc = n.int_limits("Height")
        x_inc, y_inc = n.int_limits("OffsetX")[2], n.int_limits("OffsetY")[2]
        problems = []
        if roi.x < 0 or roi.y < 0 or roi.x + roi.width > width_max or roi.y + roi.height > height_max:
            problems.append(f"it must lie inside the {width_max}x{height_max} sensor")
        if roi.width < width_min or roi.height < height_min:
            problems.append(f"the size must be at least {width_min}x{height_min}")
        for what, value, inc in (("width", roi.width, width_inc), ("height", roi.height, height_inc),
                                 ("x", roi.x, x_inc), ("y", roi.y, y_inc)):
            if value % inc:
                problems.append(f"{what} must be a multiple of {inc}")
        if problems:
            raise OutOfRange(self.name, f"roi (x={roi.x}, y={roi.y}, width={roi.width}, height={roi.height}): " + "; ".join(problems))
        return Roi(int(roi.x), int(roi.y), int(roi.width), int(roi.height))

    def _apply(self, request: _Request) -> None:
        nodes = self._nodes
        nodes.set_enum("PixelFormat", request.pixel_format)
        self._write_roi(request.roi)
        nodes.set_enum("AcquisitionMode", "Continuous")
        self._write_frame_rate(request)
        nodes.set_enum("ExposureAuto", "Off")
        exposure_us = request.exposure_ms * 1000.0
        exposure_max_us = nodes.float_limits("ExposureTime")[1]
        if exposure_us > exposure_max_us * (1 + _EXPOSURE_CLAMP_TOLERANCE):
            raise OutOfRange(self.name, f"exposure_ms {request.exposure_ms:g} exceeds the camera's maximum "
                             f"{exposure_max_us / 1000:g} ms at {request.frame_rate_hz:g} Hz")
        nodes.set_float("ExposureTime", min(exposure_us, exposure_max_us))
        nodes.set_enum("GainAuto", "Off")
        nodes.set_float("Gain", request.gain_db)
        for name in _LINEAR_RESPONSE_NODES:
            if nodes.has(name) and nodes.writable(name):
                nodes.set_bool(name, False)
        self._apply_stream_settings()

    def _write_roi(self, roi: Roi) -> None:
        """Shrink a size before moving its offset; move the offset before growing the size."""
        nodes = self._nodes
        for size_node, offset_node, size, offset in (("Width", "OffsetX", roi.width, roi.x), ("Height", "OffsetY", roi.height, roi.y)):
            if size <= nodes.get_int(size_node):
                nodes.set_int(size_node, size)
                nodes.set_int(offset_node, offset)
            else:
                nodes.set_int(offset_node, offset)
                nodes.set_int(size_node, size)

    def _write_frame_rate(self, request: _Request) -> None:
        """GS3 (GEN2): AcquisitionFrameRateAuto=Off, AcquisitionFrameRateEnabled=True; SFNC: ...Enable=True."""
        nodes = self._nodes
        if nodes.has("AcquisitionFrameRateEnable"):
            nodes.set_bool("AcquisitionFrameRateEnable", True)
        else:
            if nodes.has("AcquisitionFrameRateAuto"):
                nodes.set_enum("AcquisitionFrameRateAuto", "Off")
            nodes.set_bool("AcquisitionFrameRateEnabled", True)
        low, high = nodes.float_limits("AcquisitionFrameRate")
        if not low <= request.frame_rate_hz <= high:
            raise OutOfRange(
                self.name, f"frame_rate_hz {request.frame_rate_hz:g} is outside [{low:g}, {high:g}] Hz for "
                f"{request.pixel_format} at {request.roi.width}x{request.roi.height}; pixel format and ROI were "
                "applied, frame rate, exposure and gain were not changed"
            )
        nodes.set_float("AcquisitionFrameRate", request.frame_rate_hz)

    def settings(self) -> CameraSettings:
        """Current settings read back from the camera."""
        with self._lock:
            self._check_not_lost()
            n = self._nodes

            def read() -> CameraSettings:
                return CameraSettings(
                    exposure_ms=n.get_float("ExposureTime") / 1000.0,
                    frame_rate_hz=n.get_float("AcquisitionFrameRate"),
                    roi=self._current_roi(),
                    pixel_format=n.get_enum("PixelFormat"),
                    gain_db=n.get_float("Gain"),
                )

            return self._guarded("reading settings", read)

    # ------------------------------------------------------------------ streaming
