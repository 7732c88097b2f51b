"""The focus-sensor z-scan calibration: x = offset_px + slope_px_per_nm·(z − z_center_nm), fitted on the largest
contiguous monotonic run of valid steps, refused (:class:`CalibrationRefused`) with a reason when it is poor."""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Sequence

import numpy as np




class CalibrationRefused(ValueError):
    """The calibration scan cannot be trusted; the message says why and what to check."""


@dataclass(frozen=True)
class FocusCalibration:
    """Linear map of line position vs stage z: x_px = offset_px + slope_px_per_nm·(z_nm − z_center_nm).

    ``residual_nm`` is the RMS fit residual expressed in z (nm), ``max_residual_nm`` the
    worst point; ``capture_low_nm`` / ``capture_high_nm`` = absolute stage z (nm) ends of the
    usable, monotonic span where the gate passed; ``capture_range_nm`` = the ± distance (nm)
    from the lock position ``z_center_nm`` to the nearer end (how far focus may wander and
    still be measured). ``reference_intensity`` / ``reference_width_px``
    feed the quality gate while locked.
    """

    slope_px_per_nm: float
    offset_px: float
    z_center_nm: float
    residual_nm: float
    max_residual_nm: float
    r2: float
    capture_range_nm: float
    capture_low_nm: float
    capture_high_nm: float
    n_points: int
    reference_intensity: float
    reference_width_px: float
    step_nm: float = 0.0
    estimator: str = "gaussian"
    n_pixels: int = 0
    created_time_s: float = 0.0
    scan_z_nm: tuple[float, ...] = field(default_factory=tuple)
    scan_position_px: tuple[float, ...] = field(default_factory=tuple)

    @property
    def capture_span_nm(self) -> float:
        """Width of the capture range (nm)."""
        return float(self.capture_high_nm - self.capture_low_nm)

    def error_nm(self, position_px: float, target_px: float) -> float:
        """Focus error (nm of stage z) of a line at ``position_px`` relative to ``target_px``."""
        return (position_px - target_px) / self.slope_px_per_nm

    def to_dict(self) -> dict:
        """JSON-friendly dict (lists instead of tuples, NaN as None)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [None if (isinstance(v, float) and not math.isfinite(v)) else float(v) for v in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "FocusCalibration":
        """Inverse of :meth:`to_dict`; raises ValueError naming a missing or bad key."""
        if not isinstance(data, dict):
            raise ValueError(f"focus calibration must be a mapping, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"focus calibration has unknown keys {sorted(unknown)}; allowed: {sorted(names)}")
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise ValueError(f"focus calibration is missing keys {missing}")
        values = dict(data)
        try:
            for key in ("scan_z_nm", "scan_position_px"):
                if key in values:
                    values[key] = tuple(float("nan") if v is None else float(v) for v in values[key])
            for key in ("slope_px_per_nm", "offset_px", "z_center_nm", "residual_nm", "max_residual_nm", "r2",
                        "reference_intensity", "reference_width_px", "step_nm", "created_time_s", "capture_range_nm",
                        "capture_low_nm", "capture_high_nm"):
                if key in values:
                    values[key] = float(values[key])
            for key in ("n_points", "n_pixels"):
                if key in values:
                    values[key] = int(values[key])
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"focus calibration has a bad value: {exc}") from None
        if not (math.isfinite(values["slope_px_per_nm"]) and values["slope_px_per_nm"] != 0.0):
            raise ValueError(f"focus calibration slope_px_per_nm must be finite and non-zero, got {values['slope_px_per_nm']}")
        return cls(**values)


@dataclass(frozen=True)
class CalibrationCriteria:
    """When a calibration fit is accepted."""

    min_points: int = 7
    min_r2: float = 0.98
    max_residual_fraction_of_step: float = 0.5
    min_abs_slope_px_per_nm: float = 1e-4


def _longest_monotonic_run(valid: np.ndarray, positions: np.ndarray, sign: float) -> tuple[int, int]:
    """[start, stop) of the longest run of valid steps whose positions move in direction ``sign``."""
    best = (0, 0)
    start: int | None = None
    for i in range(len(valid)):
        if not valid[i]:
            if start is not None and i - start > best[1] - best[0]:
                best = (start, i)
            start = None
        elif start is None:
            start = i
        elif (positions[i] - positions[i - 1]) * sign <= 0:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = i
    if start is not None and len(valid) - start > best[1] - best[0]:
        best = (start, len(valid))
    return best


def fit_calibration(
    z_nm: Sequence[float],
    position_px: Sequence[float],
    valid: Sequence[bool],
    z_center_nm: float,
    reference_intensity: float,
    reference_width_px: float,
    criteria: CalibrationCriteria = CalibrationCriteria(),
    estimator: str = "gaussian",
    n_pixels: int = 0,
    created_time_s: float = 0.0,
) -> FocusCalibration:
    """Fit x = offset + slope·(z − z_center) over the capture range of a z-scan.

    ``z_nm`` must increase. The capture range is the longest contiguous run of valid,
    monotonic steps; it must contain ``z_center_nm``. Raises :class:`CalibrationRefused`
    (with the reason) for too few points, low R², large residuals or a tiny slope.
    """
    z = np.asarray(z_nm, dtype=np.float64)
    x = np.asarray(position_px, dtype=np.float64)
    ok = np.asarray(valid, dtype=bool) & np.isfinite(x)
    if not (z.shape == x.shape == ok.shape) or z.ndim != 1:
        raise ValueError("z_nm, position_px and valid must be 1-D sequences of the same length")
    if z.size < 2 or np.any(np.diff(z) <= 0):
        raise ValueError("z_nm must be strictly increasing with at least 2 steps")
    step_nm = float(np.median(np.diff(z)))
    if np.count_nonzero(ok) < criteria.min_points:
        raise CalibrationRefused(
            f"only {np.count_nonzero(ok)} of {z.size} scan steps had a usable line (need {criteria.min_points}); "
            "check the focus laser, the sensor exposure and that the interface is within the scan"
        )
    # overall trend decides the sign of the slope
    trend = np.polyfit(z[ok], x[ok], 1)[0]
    sign = 1.0 if trend >= 0 else -1.0
    start, stop = _longest_monotonic_run(ok, x, sign)
    n = stop - start
    if n < criteria.min_points:
        raise CalibrationRefused(
            f"the longest monotonic stretch of the scan has {n} steps (need {criteria.min_points}); "
            "the line moves erratically with z"
        )
    zs, xs = z[start:stop], x[start:stop]
    capture = (float(zs[0]), float(zs[-1]))
    if not capture[0] <= z_center_nm <= capture[1]:
        raise CalibrationRefused(
            f"the capture range [{capture[0]:.0f}, {capture[1]:.0f}] nm does not contain the lock position "
            f"{z_center_nm:.0f} nm; move near focus and calibrate again"
        )
    slope, intercept = np.polyfit(zs - z_center_nm, xs, 1)
    if abs(slope) < criteria.min_abs_slope_px_per_nm:
        raise CalibrationRefused(
            f"slope {slope:.2e} px/nm is below {criteria.min_abs_slope_px_per_nm:.1e} px/nm; the line does not move with z"
        )
    fitted = intercept + slope * (zs - z_center_nm)
    resid_nm = (xs - fitted) / slope
    ss_res = float(np.sum((xs - fitted) ** 2))
    ss_tot = float(np.sum((xs - xs.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0
    rms_nm = float(np.sqrt(np.mean(resid_nm**2)))
    if r2 < criteria.min_r2:
        raise CalibrationRefused(f"fit R² {r2:.4f} is below {criteria.min_r2:g}; the line position is not linear in z")
    if rms_nm > criteria.max_residual_fraction_of_step * step_nm:
        raise CalibrationRefused(
            f"fit residual {rms_nm:.1f} nm RMS exceeds {criteria.max_residual_fraction_of_step:g} x step "
            f"({step_nm:.0f} nm); the sensor is too noisy or the stage does not settle"
        )
    return FocusCalibration(
        slope_px_per_nm=float(slope),
        offset_px=float(intercept),
        z_center_nm=float(z_center_nm),
        residual_nm=rms_nm,
        max_residual_nm=float(np.max(np.abs(resid_nm))),
        r2=float(r2),
        capture_range_nm=float(min(z_center_nm - capture[0], capture[1] - z_center_nm)),
        capture_low_nm=capture[0],
        capture_high_nm=capture[1],
        n_points=int(n),
        reference_intensity=float(reference_intensity),
        reference_width_px=float(reference_width_px),
        step_nm=step_nm,
        estimator=estimator,
        n_pixels=int(n_pixels),
        created_time_s=float(created_time_s),
        # rounded (0.01 nm, 1e-4 px: far below the noise) to keep the stored JSON compact
        scan_z_nm=tuple(round(float(v), 2) for v in z),
        scan_position_px=tuple(round(float(v), 4) for v in x),
    )
