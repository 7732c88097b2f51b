"""Focus sensor on a second FLIR camera: the reflected 980 nm line reduced to a 1-D profile.

:class:`FlirLineSensor` drives the camera with :class:`operascope.devices.flir.FlirCamera` (NewestOnly
buffers, so a profile is always the latest exposure) and sums its ROI along the line:
``profile_axis = 1`` sums over rows and gives one value per column, ``0`` sums over
columns. Values are 12-bit counts summed over the line (not dark-subtracted).
"""

from __future__ import annotations

import logging

import numpy as np

from operascope.devices.base import (
    Clock,
    DeviceInfo,
    DeviceLost,
    DeviceTimeout,
    FocusSensor,
    IncompleteFrame,
    OutOfRange,
    Profile,
    Roi,
    WallClock,
    validate_in_range,
)
from operascope.devices.flir import FlirCamera, FlirCameraStats

log = logging.getLogger(__name__)

_LINE_BUFFERS = 3


class FlirLineSensor(FocusSensor):
    """A FLIR camera ROI summed along the focus-laser line.

    Arguments are the fields of ``FlirLineSensorConfig`` (``roi`` = x, y, width, height in
    px) plus an optional rig ``clock``. After :class:`DeviceLost`, :meth:`read_profile`
    tries to reconnect the camera, at most once per ``reconnect_interval_s`` (rig clock);
    in between it raises DeviceLost at once.
    """

    name = "focus_sensor"

    def __init__(
        self,
        serial: str | None = None,
        index: int = 1,
        roi: tuple[int, int, int, int] = (0, 0, 128, 256),
        exposure_ms: float = 1.0,
        frame_rate_hz: float = 100.0,
        profile_axis: int = 1,
        sdk_module: str = "PySpin",
        clock: Clock | None = None,
        reconnect_interval_s: float = 1.0,
        mono16_alignment: str = "auto",
    ) -> None:
        if profile_axis not in (0, 1):
            raise OutOfRange(self.name, f"profile_axis must be 0 (sum over columns) or 1 (sum over rows), got {profile_axis!r}")
        if len(tuple(roi)) != 4 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in roi):
            raise OutOfRange(self.name, f"roi must be four whole pixel numbers (x, y, width, height), got {roi!r}")
        x, y, width, height = (int(v) for v in roi)
        if x < 0 or y < 0 or width <= 0 or height <= 0:
            raise OutOfRange(self.name, f"roi {tuple(roi)} needs x, y >= 0 and width, height > 0")
        self._roi = Roi(x, y, width, height)
        self._exposure_ms = validate_in_range(self.name, "exposure_ms", exposure_ms, 1e-3, 1000.0, "ms")
        self._frame_rate_hz = validate_in_range(self.name, "frame_rate_hz", frame_rate_hz, 1e-3, 10_000.0, "Hz")
        self._profile_axis = profile_axis
        self._reconnect_interval_s = validate_in_range(self.name, "reconnect_interval_s", reconnect_interval_s, 0.0, 3600.0, "s")
        self._next_reconnect_s = 0.0
        self._clock = clock or WallClock()
        self._camera = FlirCamera(
            serial=serial, index=index, buffer_handling="NewestOnly", buffer_count=_LINE_BUFFERS,
            sdk_module=sdk_module, clock=self._clock, mono16_alignment=mono16_alignment,
        )
        self._camera.name = self.name  # errors name the focus sensor, not the imaging camera
        self._needs_reconnect = False

    @property
    def is_open(self) -> bool:
        return self._camera.is_open

    @property
    def n_pixels(self) -> int:
        return self._roi.width if self._profile_axis == 1 else self._roi.height

    @property
    def stats(self) -> FlirCameraStats:
        """The camera's counters (frames, incomplete, timeouts, reconnects, ...)."""
        return self._camera.stats

    def open(self) -> None:
        """Open the camera, apply ROI/exposure/frame rate (Mono16, gain 0) and start streaming."""
        if self.is_open:
            return
        self._camera.open()
        try:
            self._camera.configure(self._exposure_ms, self._frame_rate_hz, self._roi, "Mono16", 0.0)
            self._camera.start()
        except BaseException:
            self._camera.close()
            raise
        self._needs_reconnect = False

    def close(self) -> None:
        """Stop streaming and release the camera. Idempotent."""
        try:
            self._camera.stop()
        finally:
            self._camera.close()

    def info(self) -> DeviceInfo:
        camera = self._camera.info()
        return DeviceInfo(model=camera.model, serial=camera.serial, firmware=camera.firmware, driver="flir_line")

    def reconnect(self) -> None:
        """Re-open the camera after DeviceLost now (ROI and settings re-applied, streaming).

        Raises DeviceLost while it is still absent.
        """
        self._require_open()
        self._next_reconnect_s = self._clock.now_s() + self._reconnect_interval_s
        self._camera.reconnect()
        self._needs_reconnect = False

    def _reconnect(self) -> None:
        now_s = self._clock.now_s()
        if now_s < self._next_reconnect_s:
            raise DeviceLost(self.name, f"camera lost; next reconnect attempt in {self._next_reconnect_s - now_s:.2f} s")
        self.reconnect()

    def read_profile(self, timeout_s: float = 1.0) -> Profile:
        """The newest line profile; incomplete frames are skipped until ``timeout_s``.

        Raises DeviceTimeout or DeviceLost (the next call then tries to reconnect).
        """
        self._require_open()
        timeout_s = validate_in_range(self.name, "timeout_s", timeout_s, 0.0, 86_400.0, "s")
        if self._needs_reconnect:
            self._reconnect()
        deadline_s = self._clock.now_s() + timeout_s
        incomplete = 0
        while True:
            remaining_s = max(0.0, deadline_s - self._clock.now_s())
            try:
                frame = self._camera.read(remaining_s)
            except DeviceLost as ex:
                log.warning("focus sensor camera lost (%s); reconnecting from the next read", ex.detail)
                self._needs_reconnect = True
                self._next_reconnect_s = self._clock.now_s() + self._reconnect_interval_s
                raise
            except IncompleteFrame:
                incomplete += 1
                if self._clock.now_s() >= deadline_s:
                    raise DeviceTimeout(self.name, f"only incomplete frames ({incomplete}) within {timeout_s:g} s; check the cable") from None
                continue
            values = frame.pixels.sum(axis=0 if self._profile_axis == 1 else 1, dtype=np.float64)
            return Profile(values=values, time_s=frame.host_time_s)
