"""Reaction-front asymmetry (paper Fig. S4): distance between the centre of mass (COM) of a whole
particle and the COM of its still 'unreacted' region (differential intensity below a threshold).

The particle's rim is blurred by the PSF: a rim pixel mixes particle and background, so its ΔI/I
is a fraction of the interior's and stays below the threshold all charge long. Counted as
'unreacted', that ring (~7 % of a 3 µm particle) outlives the true unreacted core and pulls the
COM toward the centre. :func:`front_com` therefore erodes the particle mask by ``rim_px`` =
⌈2σ/a⌉ (σ the PSF's Gaussian σ, a the pixel size; :func:`rim_erosion_px`) before it looks for
the unreacted region: the Otsu mask edge sits where the blurred step is at half height, and
2σ inside it the step is at 97.7 % (½·erfc(−√2)), so every kept pixel shows at least ~98 % of
its true ΔI/I. The remnant cut-off counts against the eroded area. The same function is used by
the offline report (analysis/report.py) and is the one to call for live analysis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: In-focus PSF Gaussian σ of the instrument (physics reference, section 0: ≈ 0.21 λ/NA ≈ 111 nm).
DEFAULT_PSF_SIGMA_NM = 111.0
#: Rim erosion in PSF σ (see the module docstring).
RIM_EROSION_SIGMAS = 2.0
#: Rim pixels covering less than this fraction of particle are left out of the coverage correction.
MIN_RIM_COVERAGE = 0.25


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


def rim_erosion_px(pixel_size_nm: float, psf_sigma_nm: float = DEFAULT_PSF_SIGMA_NM, sigmas: float = RIM_EROSION_SIGMAS) -> int:
    """Pixels to erode off a particle mask so the blurred rim is excluded: ⌈sigmas·σ/a⌉."""
    if not (pixel_size_nm > 0 and math.isfinite(pixel_size_nm)):
        raise ValueError(f"pixel_size_nm must be a finite number > 0, got {pixel_size_nm}")
    if not (psf_sigma_nm >= 0 and math.isfinite(psf_sigma_nm)) or not sigmas >= 0:
        raise ValueError(f"psf_sigma_nm and sigmas must be finite and >= 0, got {psf_sigma_nm}, {sigmas}")
    return int(math.ceil(sigmas * psf_sigma_nm / pixel_size_nm - 1e-9))


def core_mask(particle_mask: np.ndarray, rim_px: int) -> np.ndarray:
    """``particle_mask`` eroded by a disk of radius ``rim_px`` (empty if the particle is thinner)."""
    m = np.asarray(particle_mask, dtype=bool)
    if rim_px < 0:
        raise ValueError(f"rim_px must be >= 0, got {rim_px}")
    if rim_px == 0 or not m.any():
        return m.copy()
    y, x = np.mgrid[-rim_px : rim_px + 1, -rim_px : rim_px + 1]
    disk = x**2 + y**2 <= rim_px**2
    return ndimage.binary_erosion(m, structure=disk, border_value=0)


@dataclass(frozen=True)
class FrontCom:
    """Unreacted-region COM of one particle in one differential image (px; NaN when not defined)."""

    dx_px: float
    dy_px: float
    unreacted_fraction: float  # of the eroded (core) mask
    core_area_px: int

    @property
    def distance_px(self) -> float:
        return float(np.hypot(self.dx_px, self.dy_px))


def coverage_corrected_differential(
    diff: np.ndarray, reference: np.ndarray, particle_mask: np.ndarray, rim_px: int, min_coverage: float = MIN_RIM_COVERAGE
) -> np.ndarray:
    """ΔI/I of each particle pixel scaled to what a pixel fully covered by the particle would show.

    A rim pixel covers a fraction e of particle: I_ref = b + e·(P − b), with b the background (median
    of the reference outside the mask grown by ``rim_px``) and P the particle interior (median over the
    mask eroded by ``rim_px``). Its ΔI/I is e·(P' − P)/I_ref, so ΔI/I · I_ref/(e·P) is the interior
    value. Pixels with e < ``min_coverage`` are NaN (mostly background); returns ``diff`` unchanged
    (as float) when the particle cannot be told from the background.
    """
    d = np.asarray(diff, dtype=float)
    ref = np.asarray(reference, dtype=float)
    mask = np.asarray(particle_mask, dtype=bool)
    if ref.shape != d.shape or mask.shape != d.shape:
        raise ValueError(f"reference {ref.shape}, mask {mask.shape} and differential {d.shape} must match in shape")
    core = core_mask(mask, rim_px)
    outside = ~ndimage.binary_dilation(mask, iterations=max(rim_px, 1)) & np.isfinite(ref)
    if not core.any() or not outside.any():
        return d.copy()
    background = float(np.median(ref[outside]))
    interior = float(np.median(ref[core]))
    step = interior - background
    if not (np.isfinite(step) and abs(step) > 1e-6 * max(abs(background), 1e-12)) or interior <= 0:
        return d.copy()
    coverage = np.clip((ref - background) / step, 0.0, 1.0)
    out = np.full(d.shape, np.nan)
    keep = mask & (coverage >= min_coverage) & np.isfinite(d)
    out[keep] = d[keep] * ref[keep] / (coverage[keep] * interior)
    return out


def front_com(
    diff: np.ndarray,
    particle_mask: np.ndarray,
    rim_px: int,
    threshold: float = 0.05,
    min_unreacted_fraction: float = 0.05,
    reference: np.ndarray | None = None,
) -> FrontCom:
    """COM offset of the unreacted region from the particle COM, rim excluded (see module docstring).

    Without ``reference``: both COMs are taken on the mask eroded by ``rim_px``, and the offset is
    NaN when the unreacted part of that core is below ``min_unreacted_fraction`` of it (the front has
    swept the particle). With ``reference`` (the frame ``diff`` is relative to): the rim is kept and
    its ΔI/I corrected for its partial coverage instead (:func:`coverage_corrected_differential`), so
    an unreacted region lying against the rim is not clipped; the cut-off then counts on the mask.
    """
    if not 0.0 <= min_unreacted_fraction < 1.0:
        raise ValueError(f"min_unreacted_fraction must be in [0, 1), got {min_unreacted_fraction}")
    if reference is not None:
        diff = coverage_corrected_differential(diff, reference, particle_mask, rim_px)
        core = np.asarray(particle_mask, dtype=bool) & np.isfinite(diff)
    else:
        core = core_mask(particle_mask, rim_px)
    area = int(core.sum())
    region = unreacted_region(diff, core, threshold)
    fraction = float(region.sum() / area) if area else float("nan")
    if area == 0 or region.sum() < max(min_unreacted_fraction * area, 1):
        return FrontCom(float("nan"), float("nan"), fraction, area)
    whole = centre_of_mass_xy(core)
    unreacted = centre_of_mass_xy(region)
    return FrontCom(unreacted[0] - whole[0], unreacted[1] - whole[1], fraction, area)
