"""Simulation truth averaged over a binned frame's exposures (simulated rigs only).

The simulated camera stamps each frame with its exposure start on the virtual clock (see
:mod:`operascope.simulators.devices.camera`), so a frame's true exposure mid-time is its stamp plus half
the exposure: exactly, independent of the rig's clock estimate. The drift the analysis recovers from a
bin is the mean over its frames, so that is what it is compared with (not an instantaneous sample).

Multi-position runs: the stage's return error (true minus reported position) is averaged the same way
(the image shift already holds it), and each particle's reaction state (θ, SOC, unreacted fraction,
front COM: ``World.particle_truth``) is taken when the bin is written: the particles change over tens of
seconds, a bin is written within a fraction of a second of its last frame, and the sampling time is
stored (``particle_time``) so a comparison can use the state against SOC rather than time.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import numpy as np

from operascope.acquisition.binner import BinnedFrame

log = logging.getLogger(__name__)

DriftAt = Callable[[float], tuple[float, float, float]]   # virtual time (s) -> drift x, y, z (nm)
ShiftAt = Callable[[float], tuple[float, float]]          # virtual time (s) -> image shift x, y (nm)
ReturnErrorAt = Callable[[str, float], float]             # axis, virtual time (s) -> return error (nm)
ParticlesNow = Callable[[Sequence[int] | None], dict[str, Any]]   # particle indices -> World.particle_truth


class SimulatedBinTruth:
    """``truth(binned)``: the world's drift averaged over the bin's frames at their true exposure mid-times."""

    def __init__(self, drift_at: DriftAt, exposure_ms: float, image_shift_at: ShiftAt | None = None,
                 return_error_at: ReturnErrorAt | None = None, particles_now: ParticlesNow | None = None) -> None:
        self._drift_at = drift_at
        self._shift_at = image_shift_at
        self._return_error_at = return_error_at
        self._particles_now = particles_now
        self.exposure_s = float(exposure_ms) / 1000.0

    def true_mid_times_s(self, binned: BinnedFrame) -> np.ndarray:
        """True exposure mid-times (virtual s) of the bin's frames."""
        return np.asarray(binned.camera_times_ns, dtype=np.int64) * 1e-9 + 0.5 * self.exposure_s

    def __call__(self, binned: BinnedFrame, particle_indices: Sequence[int] | None = None) -> dict[str, Any]:
        """Truth of one bin; ``particle_indices``: the particles whose state to take (None = all)."""
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
        if self._return_error_at is not None:
            for axis in ("x", "y"):
                out[f"stage_return_error_{axis}_nm"] = float(np.mean([self._return_error_at(axis, float(t))
                                                                      for t in times]))
        if self._particles_now is not None:
            out.update(self._particles_now(particle_indices))
        return out


def append_bin_truth(file: Any, key: str, bin_truth: Callable[..., dict[str, Any]], binned: BinnedFrame,
                     rel: Callable[[float], float], particle_indices: Sequence[int] | None = None) -> None:
    """Append the truth of ``binned`` to table ``key`` of the run file (``rel``: rig s -> s since start).
    A failing truth leaves a NaN row, so the table's rows stay aligned with the binned rows."""
    if not file.has(key):
        return
    try:
        truth = bin_truth(binned) if particle_indices is None else bin_truth(binned, particle_indices=particle_indices)
    except Exception as exc:  # noqa: BLE001 - a truth failure must not end the recording
        log.warning("bin %d: simulation truth not averaged: %s", binned.index, exc)
        truth = {"time_s": float("nan"), "n_frames": binned.n_frames}
    row = {**truth, "time": rel(truth["time_s"])}
    if "particle_time_s" in truth:
        row["particle_time"] = rel(truth["particle_time_s"])
    file.append(key, row)
