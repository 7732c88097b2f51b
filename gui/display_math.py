"""Pure helpers for the display: image levels, scale-bar length, rates, number formats.

No Qt here, so everything can be tested alone.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

_NICE_MANTISSAS = (1.0, 2.0, 5.0)


def symmetric_levels(image: np.ndarray, percentile: float = 99.5, floor: float = 1e-4) -> tuple[float, float]:
    """Levels (-L, L) centred on 0 for a differential image (dimensionless dI/I).

    ``L`` is the ``percentile`` of |image| over finite, non-zero pixels, at least ``floor``.
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    data = np.asarray(image)
    if data.ndim == 2:
        step = _subsample_step(data.size)
        data = data[::step, ::step]
    values = np.abs(data.astype(np.float64))
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return -floor, floor
    level = max(float(np.percentile(values, percentile)), floor)
    return -level, level


def robust_levels(image: np.ndarray, low_percentile: float = 0.5, high_percentile: float = 99.8) -> tuple[float, float]:
    """Display levels (low, high) in counts from percentiles of a (sub-sampled) raw image."""
    data = np.asarray(image)
    step = _subsample_step(data.size)
    sample = data[::step, ::step].astype(np.float64, copy=False)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(sample, [low_percentile, high_percentile])
    if high <= low:
        high = low + 1.0
    return float(low), float(high)


def _subsample_step(n_pixels: int, target: int = 65_536) -> int:
    """Stride that leaves about ``target`` pixels of a 2-D image (levels need no more)."""
    return max(1, int(math.sqrt(n_pixels / target)))


def display_stride(image_px_per_screen_px: float, max_stride: int = 16) -> int:
    """Stride for showing an image: one image pixel per screen pixel is enough (1 when zoomed in).

    ``image_px_per_screen_px`` is how many image pixels one screen pixel spans (pyqtgraph
    ``ViewBox.viewPixelSize``); anything not finite or below 2 gives 1.
    """
    if not math.isfinite(image_px_per_screen_px) or image_px_per_screen_px < 2:
        return 1
    return min(int(image_px_per_screen_px), max_stride)


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """Boolean image of the mask's boundary pixels (inside pixels with a 4-neighbour outside)."""
    inside = np.asarray(mask, dtype=bool)
    if inside.ndim != 2:
        raise ValueError(f"a mask must be 2-D, got shape {inside.shape}")
    padded = np.pad(inside, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return inside & ~interior


def nice_scale_bar_um(field_width_um: float, fraction: float = 0.2) -> float:
    """A round scale-bar length (1, 2 or 5 × 10^k µm) close to ``fraction`` of the field width (µm)."""
    if not (math.isfinite(field_width_um) and field_width_um > 0):
        raise ValueError(f"field width must be a positive number of µm, got {field_width_um}")
    target = field_width_um * fraction
    exponent = math.floor(math.log10(target))
    best = 10.0**exponent
    for mantissa in _NICE_MANTISSAS:
        candidate = mantissa * 10.0**exponent
        if candidate <= target:
            best = candidate
    return best


def format_length_um(length_um: float) -> str:
    """'500 nm', '2 µm', '10 µm' for a scale-bar label."""
    if length_um < 1.0:
        return f"{length_um * 1000:g} nm"
    return f"{length_um:g} µm"


def format_bytes(n_bytes: float) -> str:
    """Human-readable byte count, e.g. '12.3 GB'."""
    value = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{value:.0f} B"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover


class RateMeter:
    """Events per second from (time_s, cumulative count) samples over a sliding window (s)."""

    def __init__(self, window_s: float = 2.0) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, time_s: float, count: float) -> None:
        """Record the cumulative ``count`` at ``time_s``."""
        if self._samples and count < self._samples[-1][1]:
            self._samples.clear()  # counter restarted (new recording / live restart)
        self._samples.append((time_s, count))
        while len(self._samples) > 2 and time_s - self._samples[0][0] > self.window_s:
            self._samples.popleft()

    def rate_per_s(self) -> float:
        """Mean rate over the window (0 until two samples exist)."""
        if len(self._samples) < 2:
            return 0.0
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0
