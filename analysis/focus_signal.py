"""Signal processing for the 980 nm line-reflection focus lock (pure numpy).

A focus-sensor profile p(x) (counts per pixel across the reflected line) goes through:

1. :func:`background_subtract` — optional dark profile, then the 10th percentile as
   background: q = p − dark − bg.
2. :func:`measure_profile` — peak, summed intensity, second-moment width (px), a robust
   noise estimate, saturation and edge checks, a quality verdict with its reason, and a
   sub-pixel line position from one of three estimators:

   * ``"centroid"``  threshold centroid, weights (q − ½·max)₊ (pgFocus);
   * ``"gaussian"``  1-D Gaussian least squares (Gauss–Newton) on ±3σ around the peak;
   * ``"phasor"``    first-harmonic phasor on a window centred on the peak (Liu lab).

   All are normalised, so the position does not depend on reflectivity.
3. :func:`fit_calibration` — the z-scan fit x = offset_px + slope_px_per_nm·(z − z_center_nm)
   on the largest contiguous, monotonic run of valid steps (the capture range), with
   residual (nm), R², and a clear refusal (:class:`CalibrationRefused`) when the fit is poor.

:class:`FocusCalibration` is the stored result (``to_dict``/``from_dict``, JSON-friendly).
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Literal, Sequence

import numpy as np

ESTIMATORS: tuple[str, ...] = ("centroid", "gaussian", "phasor")
Estimator = Literal["centroid", "gaussian", "phasor"]

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


# --------------------------------------------------------------------------- gate settings


@dataclass(frozen=True)
class QualityGate:
    """Thresholds of the profile quality gate.

    ``reference_intensity`` and ``reference_width_px`` come from the calibration; when
    they are None (e.g. during the calibration scan) only the absolute checks apply.
    """

    min_snr: float = 8.0
    min_intensity_fraction: float = 0.2
    width_tolerance: float = 0.3
    min_width_px: float = 0.7
    max_width_fraction: float = 0.25
    edge_margin_sigmas: float = 3.0
    min_edge_margin_px: float = 3.0
    saturation_counts: float | None = None
    reference_intensity: float | None = None
    reference_width_px: float | None = None

    def with_reference(self, intensity: float, width_px: float) -> "QualityGate":
        """Copy of this gate that also checks intensity and width against a calibration."""
        values = asdict(self)
        values.update(reference_intensity=float(intensity), reference_width_px=float(width_px))
        return QualityGate(**values)


@dataclass(frozen=True)
class ProfileMeasurement:
    """What one profile says. ``position_px`` is NaN when no peak could be located."""

    position_px: float
    intensity: float
    peak: float
    width_px: float
    noise: float
    snr: float
    saturated: bool
    ok: bool
    reason: str = ""


# --------------------------------------------------------------------------- profile helpers


def _as_profile(values: np.ndarray, what: str = "profile") -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 8:
        raise ValueError(f"{what} must be a 1-D array of at least 8 pixels, got shape {arr.shape}")
    return arr


def background_subtract(
    values: np.ndarray, dark: np.ndarray | None = None, percentile: float = 10.0
) -> np.ndarray:
    """Dark-subtract and remove the ``percentile`` background: q = p − dark − bg (counts)."""
    profile = _as_profile(values)
    if dark is not None:
        dark_arr = _as_profile(dark, "dark profile")
        if dark_arr.shape != profile.shape:
            raise ValueError(f"dark profile has {dark_arr.size} pixels, the profile has {profile.size}")
        profile = profile - dark_arr
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"background percentile must be within [0, 100], got {percentile}")
    return profile - np.percentile(profile, percentile)


def robust_noise(q: np.ndarray, peak_index: int, exclude_halfwidth_px: float) -> float:
    """Per-pixel noise (counts): 1.4826·MAD of the pixels away from the peak."""
    n = np.arange(q.size)
    away = np.abs(n - peak_index) > exclude_halfwidth_px
    sample = q[away] if np.count_nonzero(away) >= 8 else q
    mad = np.median(np.abs(sample - np.median(sample)))
    return float(1.4826 * mad)


def second_moment_width(q: np.ndarray, center_px: float, halfwidth_px: float) -> float:
    """RMS width σ (px) of the positive part of ``q`` within ±halfwidth of ``center_px``."""
    lo = max(0, int(math.floor(center_px - halfwidth_px)))
    hi = min(q.size, int(math.ceil(center_px + halfwidth_px)) + 1)
    x = np.arange(lo, hi, dtype=np.float64)
    w = np.clip(q[lo:hi], 0.0, None)
    total = w.sum()
    if total <= 0:
        return float("nan")
    mean = float((w * x).sum() / total)
    return float(math.sqrt(max((w * (x - mean) ** 2).sum() / total, 0.0)))


def half_max_sigma(q: np.ndarray, peak_index: int) -> float:
    """σ (px) from the full width at half maximum around ``peak_index`` (linear interpolation)."""
    half = q[peak_index] / 2.0
    left = peak_index
    while left > 0 and q[left - 1] > half:
        left -= 1
    right = peak_index
    while right < q.size - 1 and q[right + 1] > half:
        right += 1
    # sub-pixel crossings
    x_left = float(left)
    if left > 0:
        a, b = q[left - 1], q[left]
        x_left = left - 1 + (half - a) / (b - a) if b != a else float(left)
    x_right = float(right)
    if right < q.size - 1:
        a, b = q[right], q[right + 1]
        x_right = right + (a - half) / (a - b) if a != b else float(right)
    return max(x_right - x_left, 1.0) / _FWHM_PER_SIGMA


# --------------------------------------------------------------------------- estimators


def estimate_centroid(q: np.ndarray) -> float:
    """Threshold centroid (px) with weights (q − ½·max)₊ (pgFocus)."""
    peak = float(q.max())
    if peak <= 0:
        return float("nan")
    w = np.clip(q - 0.5 * peak, 0.0, None)
    return float((w * np.arange(q.size)).sum() / w.sum())


def estimate_gaussian(q: np.ndarray, sigma_guess_px: float | None = None, iterations: int = 8) -> float:
    """Gaussian least-squares position (px): A·exp(−(x−x0)²/2s²) + c fitted on ±3σ of the peak.

    Gauss–Newton from moment estimates; falls back to the centroid if the fit diverges.
    """
    peak_index = int(np.argmax(q))
    sigma = sigma_guess_px if sigma_guess_px and np.isfinite(sigma_guess_px) else half_max_sigma(q, peak_index)
    half = max(3.0 * sigma, 3.0)
    lo = max(0, int(math.floor(peak_index - half)))
    hi = min(q.size, int(math.ceil(peak_index + half)) + 1)
    x = np.arange(lo, hi, dtype=np.float64)
    y = q[lo:hi]
    start = estimate_centroid(q)
    params = np.array([float(q[peak_index]), start if np.isfinite(start) else peak_index, sigma, 0.0])
    for _ in range(iterations):
        amp, x0, s, c = params
        d = x - x0
        g = np.exp(-0.5 * (d / s) ** 2)
        model = amp * g + c
        jac = np.column_stack((g, amp * g * d / s**2, amp * g * d**2 / s**3, np.ones_like(x)))
        resid = y - model
        try:
            step, *_ = np.linalg.lstsq(jac, resid, rcond=None)
        except np.linalg.LinAlgError:
            return start
        params = params + step
        if not (np.all(np.isfinite(params)) and params[2] > 0.1 and lo <= params[1] <= hi):
            return start
        if abs(step[1]) < 1e-5:
            break
    return float(params[1])


def estimate_phasor(q: np.ndarray, window_px: int | None = None, sigma_px: float | None = None) -> float:
    """First-harmonic phasor position (px) on an N-pixel window centred on the peak.

    x0 = start + (N/2π)·[(−arg Σ q_n e^{−2πin/N}) mod 2π]. N defaults to 5σ (at least 9 px),
    which minimised the error for the simulated line (benchmarks/bench_focus_lock.py).
    """
    peak_index = int(np.argmax(q))
    if window_px is None:
        sigma = sigma_px if sigma_px and np.isfinite(sigma_px) else half_max_sigma(q, peak_index)
        window_px = int(max(9, round(5.0 * sigma)))
    n_window = int(min(window_px, q.size))
    start = int(min(max(peak_index - n_window // 2, 0), q.size - n_window))
    segment = q[start : start + n_window]
    n = np.arange(n_window)
    coefficient = np.sum(segment * np.exp(-2j * np.pi * n / n_window))
    phase = (-np.angle(coefficient)) % (2.0 * np.pi)
    return float(start + n_window * phase / (2.0 * np.pi))


def estimate_position_px(q: np.ndarray, method: str = "gaussian", sigma_px: float | None = None) -> float:
    """Sub-pixel line position (px) of a background-subtracted profile by ``method``."""
    if method == "centroid":
        return estimate_centroid(q)
    if method == "gaussian":
        return estimate_gaussian(q, sigma_px)
    if method == "phasor":
        return estimate_phasor(q, sigma_px=sigma_px)
    raise ValueError(f"position estimator {method!r} is not known; allowed: {', '.join(ESTIMATORS)}")


# --------------------------------------------------------------------------- measurement + gate


def _flat_top(values: np.ndarray, peak_index: int, run: int = 3) -> bool:
    """True if ≥ ``run`` adjacent pixels at the peak share the exact maximum (clipping)."""
    top = values[peak_index]
    lo = max(0, peak_index - run + 1)
    hi = min(values.size, peak_index + run)
    equal = values[lo:hi] == top
    best = current = 0
    for flag in equal:
        current = current + 1 if flag else 0
        best = max(best, current)
    return best >= run


def measure_profile(
    values: np.ndarray,
    gate: QualityGate = QualityGate(),
    method: str = "gaussian",
    dark: np.ndarray | None = None,
) -> ProfileMeasurement:
    """Locate the line in a raw profile (counts) and apply the quality gate.

    ``ok`` is True only if every check passes; otherwise ``reason`` names the first
    failure. The position is estimated whenever a peak exists, even if the gate fails.
    """
    raw = _as_profile(values)
    q = background_subtract(raw, dark)
    peak_index = int(np.argmax(q))
    peak = float(q[peak_index])
    if not np.isfinite(peak) or peak <= 0:
        return ProfileMeasurement(float("nan"), 0.0, 0.0, float("nan"), float("nan"), 0.0, False, False, "no signal")
    sigma_hm = half_max_sigma(q, peak_index)
    noise = robust_noise(q, peak_index, 4.0 * sigma_hm + 2.0)
    snr = peak / noise if noise > 0 else float("inf")
    width = second_moment_width(q, peak_index, 3.0 * sigma_hm + 1.0)
    lo = max(0, int(math.floor(peak_index - 4.0 * sigma_hm - 2)))
    hi = min(q.size, int(math.ceil(peak_index + 4.0 * sigma_hm + 2)) + 1)
    intensity = float(np.clip(q[lo:hi], 0.0, None).sum())
    saturated = _flat_top(raw, int(np.argmax(raw))) or (
        gate.saturation_counts is not None and float(raw.max()) >= gate.saturation_counts
    )
    position = estimate_position_px(q, method, sigma_hm) if snr >= 2.0 else float("nan")

    reason = ""
    margin = max(gate.edge_margin_sigmas * sigma_hm, gate.min_edge_margin_px)
    if snr < gate.min_snr:
        reason = f"signal-to-noise {snr:.1f} below {gate.min_snr:g}"
    elif saturated:
        reason = "profile saturated"
    elif not (gate.min_width_px <= width <= gate.max_width_fraction * q.size):
        reason = f"line width {width:.2f} px outside [{gate.min_width_px:g}, {gate.max_width_fraction * q.size:g}] px"
    elif not (margin <= peak_index <= q.size - 1 - margin) or not np.isfinite(position):
        reason = f"line at pixel {peak_index} is within {margin:.1f} px of the sensor edge"
    elif gate.reference_intensity is not None and intensity < gate.min_intensity_fraction * gate.reference_intensity:
        reason = (
            f"intensity {intensity:.3g} below {gate.min_intensity_fraction:g} x calibration "
            f"({gate.reference_intensity:.3g})"
        )
    elif gate.reference_width_px is not None and abs(width - gate.reference_width_px) > (
        gate.width_tolerance * gate.reference_width_px
    ):
        reason = (
            f"line width {width:.2f} px differs from calibration {gate.reference_width_px:.2f} px "
            f"by more than {gate.width_tolerance:.0%}"
        )
    return ProfileMeasurement(position, intensity, peak, width, noise, snr, bool(saturated), reason == "", reason)


# --------------------------------------------------------------------------- calibration


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
