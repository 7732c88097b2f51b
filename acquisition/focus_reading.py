"""How the focus lock reads the sensor: quality gate, one profile, reconnect, mean of several (mixin)."""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from operascope.acquisition.focus_control import bad_measurement, mean_of_good
from operascope.analysis.focus_signal import ProfileMeasurement, QualityGate, measure_profile
from operascope.devices.base import DeviceError, DeviceLost

log = logging.getLogger(__name__)

__all__ = ["SensorReading"]


class SensorReading:
    """Measurement methods of :class:`operascope.acquisition.focus_lock.FocusLock`."""

    _sensor: Any
    _clock: Any
    _config: Any
    calibration: Any
    dark_profile: np.ndarray | None
    _last_reconnect_s: float
    _emit: Callable[[str, str], None]

    def _gate(self) -> QualityGate:
        cfg = self._config
        gate = QualityGate(
            min_snr=cfg.min_snr,
            min_intensity_fraction=cfg.min_intensity_fraction,
            width_tolerance=cfg.width_tolerance,
            saturation_counts=cfg.saturation_counts,
        )
        if self.calibration is not None:
            gate = gate.with_reference(self.calibration.reference_intensity, self.calibration.reference_width_px)
        return gate

    def _read_one(self, gate: QualityGate) -> ProfileMeasurement:
        try:
            profile = self._sensor.read_profile(self._config.sensor_timeout_s)
        except DeviceError as exc:
            if isinstance(exc, DeviceLost):
                self._try_reconnect_sensor()
            return bad_measurement(str(exc))
        values = np.asarray(profile.values)
        expected = int(self._sensor.n_pixels)
        if values.ndim != 1 or values.size != expected:
            shown = f"{values.size} pixels" if values.ndim == 1 else f"shape {values.shape}"
            return bad_measurement(f"profile has {shown}, the sensor has {expected} pixels; ignored")
        dark = self.dark_profile if self.dark_profile is not None and self.dark_profile.size == values.size else None
        try:
            return measure_profile(values, gate, self._config.estimator, dark)
        except (ValueError, TypeError, FloatingPointError) as exc:  # garbage the analysis refuses: a bad sample
            return bad_measurement(f"unusable profile: {exc}")

    def _try_reconnect_sensor(self, every_s: float = 1.0) -> None:
        """After DeviceLost, try the sensor's ``reconnect()`` (if it has one) at most once per ``every_s``."""
        reconnect = getattr(self._sensor, "reconnect", None)
        now_s = self._clock.now_s()
        if reconnect is None or now_s - self._last_reconnect_s < every_s:
            return
        self._last_reconnect_s = now_s
        try:
            reconnect()
        except DeviceError:
            return
        self._emit("info", "focus sensor reconnected")

    def _read_measurement(self, gate: QualityGate, n_profiles: int) -> ProfileMeasurement:
        """Mean of the good ones among ``n_profiles`` reads; bad unless at least half pass."""
        return mean_of_good([self._read_one(gate) for _ in range(n_profiles)])
