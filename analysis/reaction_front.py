"""Reaction-front asymmetry (paper Fig. S4): distance between the centre of mass (COM) of a whole
particle and the COM of its still 'unreacted' region (differential intensity below a threshold)."""

from __future__ import annotations

import numpy as np


def centre_of_mass_xy(region: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """(x, y) COM in px of the True pixels of ``region`` (optionally weighted); NaN if empty."""
    m = np.asarray(region, dtype=bool)
    rows, cols = np.nonzero(m)
    if rows.size == 0:
        return float("nan"), float("nan")
    w = np.ones(rows.size) if weights is None else np.asarray(weights, dtype=float)[rows, cols]
    total = w.sum()
    if not np.isfinite(total) or total <= 0:
        return float("nan"), float("nan")
    return float((cols * w).sum() / total), float((rows * w).sum() / total)


def unreacted_region(diff: np.ndarray, particle_mask: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """Pixels of the particle whose differential intensity is still below ``threshold``.

    On charge, delithiated pixels brighten, so 'unreacted' = ΔI/I < threshold (paper: 0.05).
    """
    d = np.asarray(diff, dtype=float)
    m = np.asarray(particle_mask, dtype=bool)
    if d.shape != m.shape:
        raise ValueError(f"differential image {d.shape} and particle mask {m.shape} differ in shape")
    if not np.isfinite(threshold):
        raise ValueError(f"unreacted threshold must be finite, got {threshold}")
    with np.errstate(invalid="ignore"):
        return m & np.isfinite(d) & (d < threshold)


def com_offset_px(
    diff: np.ndarray, particle_mask: np.ndarray, threshold: float = 0.05, min_unreacted_fraction: float = 0.0
) -> tuple[float, float]:
    """(dx, dy) in px from the particle COM to the unreacted-region COM.

    NaN when the unreacted region is empty or smaller than ``min_unreacted_fraction`` of the particle:
    once the front has swept the particle, the few pixels left below the threshold (blurred rim,
    noise) have a COM that says nothing about the front.
    """
    if not 0.0 <= min_unreacted_fraction < 1.0:
        raise ValueError(f"min_unreacted_fraction must be in [0, 1), got {min_unreacted_fraction}")
    mask = np.asarray(particle_mask, dtype=bool)
    region = unreacted_region(diff, mask, threshold)
    if region.sum() < max(min_unreacted_fraction * mask.sum(), 1):
        return float("nan"), float("nan")
    whole = centre_of_mass_xy(mask)
    unreacted = centre_of_mass_xy(region)
    return unreacted[0] - whole[0], unreacted[1] - whole[1]


def com_distance_px(
    diff: np.ndarray, particle_mask: np.ndarray, threshold: float = 0.05, min_unreacted_fraction: float = 0.0
) -> float:
    """|r_U - r_P| in px (NaN when the unreacted region is empty or below ``min_unreacted_fraction``)."""
    dx, dy = com_offset_px(diff, particle_mask, threshold, min_unreacted_fraction)
    return float(np.hypot(dx, dy))


def com_distance_series_nm(
    diffs: np.ndarray, particle_mask: np.ndarray, pixel_size_nm: float, threshold: float = 0.05
) -> np.ndarray:
    """COM distance (nm) for every differential image of an (n, h, w) stack of one particle."""
    if pixel_size_nm <= 0:
        raise ValueError(f"pixel_size_nm must be > 0, got {pixel_size_nm}")
    stack = np.asarray(diffs)
    if stack.ndim != 3:
        raise ValueError(f"diffs must be (n, h, w), got shape {stack.shape}")
    return np.array([com_distance_px(d, particle_mask, threshold) for d in stack]) * pixel_size_nm
