"""LiveView: the camera -> binner -> differential pipeline of an open rig and its live images."""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from operascope.acquisition.echem_history import EchemHistory
from operascope.acquisition.events import EventBus
from operascope.acquisition.live_differential import DifferentialFrame, LiveDifferential
from operascope.acquisition.pipeline import FramePipeline
from operascope.config.schema import AcquisitionConfig
from operascope.devices.base import Frame

log = logging.getLogger(__name__)


class LiveView:
    """Owns the live differential and, while live, the :class:`FramePipeline`."""

    def __init__(self, acq: AcquisitionConfig, events: EventBus, echem: EchemHistory,
                 queue_capacity: Callable[..., int], is_recording: Callable[[], bool]) -> None:
        self._acq = acq
        self._events = events
        self._echem = echem
        self._queue_capacity = queue_capacity
        self._is_recording = is_recording
        self.differential = LiveDifferential(acq.mask_threshold, acq.drift_correction, acq.fiducial_xy_px,
                                             acq.fiducial_box_px)
        self.pipeline: FramePipeline | None = None
        self._camera: Any = None

    @property
    def is_live(self) -> bool:
        return self.pipeline is not None and self.pipeline.is_live

    def start(self, camera: Any) -> FramePipeline:
        """Start the camera stream and the binner/differential threads (idempotent)."""
        if self.pipeline is None:
            self._camera = camera
            roi = camera.settings().roi
            acq = self._acq
            pipeline = FramePipeline(camera, self.differential, acq.bin_size,
                                     self._queue_capacity(roi.width * roi.height * 2), self._echem.at,
                                     self._events.emit, acq.read_timeout_s, acq.camera_lost_timeout_s)
            pipeline.start()
            self.pipeline = pipeline
            self._events.emit("info", "engine", "live view started")
        return self.pipeline

    def _camera_time_now_ns(self) -> int | None:
        camera = self._camera
        try:
            return camera.timestamp_now_ns() if camera is not None else None
        except Exception as exc:  # noqa: BLE001 - without the latch the next bin is the reference
            log.debug("camera time stamp not latched: %s", exc)
            return None

    def stop_capture(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop_capture()

    def stop(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop()
            self.pipeline = None

    def latest_frame(self) -> Frame | None:
        return self.pipeline.live_frames.peek() if self.pipeline is not None else None

    def latest_differential(self) -> DifferentialFrame | None:
        return self.pipeline.live_differentials.peek() if self.pipeline is not None else None

    @property
    def mask(self) -> np.ndarray | None:
        return self.differential.mask

    def set_fiducial(self, x_px: float, y_px: float) -> None:
        self.differential.set_fiducial(x_px, y_px)
        self.differential.reset()

    def failure(self) -> str | None:
        return self.pipeline.failure() if self.pipeline is not None else None

    def restart_reference_when_locked(self, previous: Any, sample: Any) -> None:
        """Focus-sample listener: the lock just locked while live (not recording) -> new reference."""
        if (previous is not None and previous.state == "locking" and sample.state == "locked"
                and not self._is_recording()):
            # The reference may have been taken defocused (e.g. during the calibration scan);
            # start again in focus, from frames exposed after this moment (the camera's own clock:
            # frames still queued were exposed while the lock closed in). Never during a recording.
            self.differential.reset(self._camera_time_now_ns())
            self._events.emit("info", "differential", "focus locked: live differential reference restarted")
