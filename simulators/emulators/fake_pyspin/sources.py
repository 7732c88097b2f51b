"""Frame sources of the fake cameras (what the sensor sees) and the simulated world's faults."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from operascope.devices.base import Camera, FocusSensor, Roi

FrameSource = Callable[[Roi, float, float], np.ndarray]


class CameraFrameSource:
    """Frame source that reads frames from any :class:`operascope.devices.base.Camera` backend.

    The backend is opened on first use and reconfigured (stop, configure, start) whenever
    the fake camera asks for a different ROI, exposure or gain; ``frame_rate_hz`` is the
    rate the backend is run at (the fake camera's own clock decides frame timing).
    """

    def __init__(self, camera: Camera, frame_rate_hz: float = 100.0, read_timeout_s: float = 2.0) -> None:
        self.camera = camera
        self.frame_rate_hz = frame_rate_hz
        self.read_timeout_s = read_timeout_s
        self._applied: tuple[Roi, float, float] | None = None

    def __call__(self, roi: Roi, exposure_ms: float, gain_db: float) -> np.ndarray:
        wanted = (roi, float(exposure_ms), float(gain_db))
        if not self.camera.is_open:
            self.camera.open()
        if wanted != self._applied:
            self.camera.stop()
            rate_hz = min(self.frame_rate_hz, 1000.0 / max(exposure_ms, 1e-3))
            self.camera.configure(exposure_ms, rate_hz, roi, "Mono16", gain_db)
            self.camera.start()
            self._applied = wanted
        return self.camera.read(self.read_timeout_s).pixels

    def close(self) -> None:
        """Stop and close the backend camera."""
        self.camera.stop()
        self.camera.close()


class LineFrameSource:
    """Frame source that turns a focus-sensor profile into an image of the reflected line.

    ``profile_source`` is a :class:`operascope.devices.base.FocusSensor` or a callable returning the
    profile now (e.g. ``world.focus_profile``). The profile runs along ``profile_axis``
    (1 = across columns, as in ``FlirLineSensorConfig``); each pixel along the other axis
    gets ``profile / n`` so that summing the ROI along the line gives the profile back
    (within 12-bit rounding; negative values clip to 0). Profile pixel ``i`` maps to sensor
    column (or row) ``i``; sensor pixels beyond the profile are 0. Exposure and gain are
    ignored (the profile source has its own).
    """

    def __init__(self, profile_source: FocusSensor | Callable[[], np.ndarray], profile_axis: int = 1,
                 read_timeout_s: float = 2.0) -> None:
        if profile_axis not in (0, 1):
            raise ValueError(f"profile_axis must be 0 or 1, got {profile_axis!r}")
        if not isinstance(profile_source, FocusSensor) and not callable(profile_source):
            raise TypeError(f"profile_source must be a FocusSensor or a callable, got {type(profile_source).__name__}")
        self.profile_source = profile_source
        self.profile_axis = profile_axis
        self.read_timeout_s = read_timeout_s

    def _profile(self) -> np.ndarray:
        source = self.profile_source
        if isinstance(source, FocusSensor):
            if not source.is_open:
                source.open()
            return np.asarray(source.read_profile(self.read_timeout_s).values, dtype=float)
        return np.asarray(source(), dtype=float)

    def __call__(self, roi: Roi, exposure_ms: float, gain_db: float) -> np.ndarray:
        profile = self._profile()
        if self.profile_axis == 1:
            start, length, n_along = roi.x, roi.width, roi.height
        else:
            start, length, n_along = roi.y, roi.height, roi.width
        line = np.zeros(length)
        available = profile[start : start + length]
        line[: available.size] = available
        per_pixel = np.clip(np.rint(line / n_along), 0, 4095).astype(np.uint16)
        if self.profile_axis == 1:
            return np.broadcast_to(per_pixel[None, :], (roi.height, roi.width)).copy()
        return np.broadcast_to(per_pixel[:, None], (roi.height, roi.width)).copy()


class WorldFrameSource:
    """Frame source rendering a simulated ``World`` at each frame's exposure start.

    ``render_at(time_s, roi, exposure_ms, gain_db, frame_key)`` is used by the fake camera
    (``time_s`` on the camera clock, which must be ``world.clock``); calling the object
    renders now.
    """

    def __init__(self, world: Any) -> None:
        self.world = world

    def __call__(self, roi: Roi, exposure_ms: float, gain_db: float) -> np.ndarray:
        return self.world.render(roi, exposure_ms, gain_db)

    def render_at(self, time_s: float, roi: Roi, exposure_ms: float, gain_db: float, frame_key: int) -> np.ndarray:
        return self.world.render_at(time_s, roi, exposure_ms, gain_db, frame_key=frame_key)


class WorldFaults:
    """Feeds a simulated ``World``'s injected faults of one role into a fake camera.

    Per exposure: ``timeout`` and ``drop_frames`` faults make the frame never arrive,
    ``incomplete_frame`` marks it incomplete. ``device_lost`` unplugs the camera (seen by
    ``GetNextImage`` and ``IsValid``); it comes back in ``GetCameras``/``UpdateCameras``
    once the world lets the role reconnect.
    """

    EXPOSURE_KINDS = ("timeout", "drop_frames", "incomplete_frame")

    def __init__(self, world: Any, role: str) -> None:
        self.world = world
        self.role = role

    def exposure_fault(self, time_s: float) -> str | None:
        for kind in self.EXPOSURE_KINDS:
            if self.world.consume_fault(self.role, kind, time_s):
                return kind
        return None

    def is_lost(self) -> bool:
        return bool(self.world.is_lost(self.role))

    def try_reconnect(self) -> bool:
        return bool(self.world.try_reconnect(self.role))
