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
from dataclasses import asdict, dataclass
from typing import Literal

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


# The z-scan calibration fit lives in its own module; it is part of this module's interface.
from operascope.analysis.focus_calibration_fit import (  # noqa: E402,F401
    CalibrationCriteria,
    CalibrationRefused,
    FocusCalibration,
    fit_calibration,
)
