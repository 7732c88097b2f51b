"""Simulation truth averaged over a binned frame's exposures (simulated rigs only).

The simulated camera stamps each frame with its exposure start on the virtual clock (see
:mod:`operascope.simulators.devices.camera`), so a frame's true exposure mid-time is its stamp plus half
the exposure: exactly, independent of the rig's clock estimate. The drift the analysis recovers from a
bin is the mean over its frames, so that is what it is compared with (not an instantaneous sample).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from operascope.acquisition.binner import BinnedFrame

log = logging.getLogger(__name__)

DriftAt = Callable[[float], tuple[float, float, float]]   # virtual time (s) -> drift x, y, z (nm)
ShiftAt = Callable[[float], tuple[float, float]]          # virtual time (s) -> image shift x, y (nm)


class SimulatedBinTruth:
    """``truth(binned)``: the world's drift averaged over the bin's frames at their true exposure mid-times."""

    def __init__(self, drift_at: DriftAt, exposure_ms: float, image_shift_at: ShiftAt | None = None) -> None:
        self._drift_at = drift_at
        self._shift_at = image_shift_at
        self.exposure_s = float(exposure_ms) / 1000.0

    def true_mid_times_s(self, binned: BinnedFrame) -> np.ndarray:
        """True exposure mid-times (virtual s) of the bin's frames."""
        return np.asarray(binned.camera_times_ns, dtype=np.int64) * 1e-9 + 0.5 * self.exposure_s

    def __call__(self, binned: BinnedFrame) -> dict[str, Any]:
        times = self.true_mid_times_s(binned)
        if times.size == 0:
            return {"time_s": float("nan"), "n_frames": 0}
        drift = np.array([self._drift_at(float(t)) for t in times], dtype=float)
        mean = drift.mean(axis=0)
        out = {"time_s": float(times.mean()), "n_frames": int(times.size),
               "drift_x_nm": float(mean[0]), "drift_y_nm": float(mean[1]), "drift_z_nm": float(mean[2])}
        if self._shift_at is not None:
            shift = np.array([self._shift_at(float(t)) for t in times], dtype=float).mean(axis=0)
            out["image_shift_x_nm"], out["image_shift_y_nm"] = float(shift[0]), float(shift[1])
        return out
