"""Per-particle reaction-front numbers for the window (live science panel and run browser).

The same functions and defaults as ``operascope analyze`` (analysis/report.py): particles are the
connected regions of the mask (touching ones split), the COM distance is the rim-aware
analysis.reaction_front.front_com of the unreacted region (ΔI/I below 0.05; the blurred rim eroded by
⌈2σ_PSF/a⌉, or with the reference frame its partial coverage corrected, exactly as ``analyze`` does;
NaN once less than 5 % of the particle is left), the mean ΔI/I is the mean over the particle's pixels.
Each particle's crop is its bounding box grown by :func:`crop_margin_px`, so the background around the
particle is in the crop (the coverage correction takes the background median there).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from scipy import ndimage

from operascope.analysis.masking import label_image
from operascope.analysis.reaction_front import front_com, rim_erosion_px

log = logging.getLogger(__name__)

#: the analysis defaults of ``operascope analyze`` (analysis/report.py)
UNREACTED_THRESHOLD = 0.05
MIN_UNREACTED_FRACTION = 0.05
MIN_AREA_PX = 30


@dataclass(frozen=True)
class ParticleRegion:
    """One particle of the mask: its crop (slices: bounding box grown by a margin) and its own mask in it."""

    label: int
    name: str
    rows: slice
    cols: slice
    mask: np.ndarray
    centroid_xy_px: tuple[float, float]


@dataclass(frozen=True)
class ParticleMeasure:
    """The reaction-front numbers of one particle in one differential image."""

    com_distance_nm: float
    mean_differential: float


#: a particle's core is where the distance to the mask edge exceeds this fraction of its region's maximum
CORE_FRACTION = 0.5
#: a region covering more than this fraction of the image is background the mask let in, not a particle
MAX_AREA_FRACTION = 0.25


def split_touching(mask: np.ndarray, min_area_px: int = MIN_AREA_PX) -> tuple[np.ndarray, int]:
    """Labels of ``mask`` with touching particles separated (a blurred halo can bridge two discs).

    Within each connected region (its bounding box only, so a full frame costs little), the seeds are the
    cores (distance to the edge > CORE_FRACTION of the region's maximum); every pixel of the region goes to
    its nearest core. A region with one core stays whole; regions under ``min_area_px`` (noise) or over
    MAX_AREA_FRACTION of the image (background let into the mask) are dropped.
    """
    m = np.asarray(mask, dtype=bool)
    labels, count = label_image(m)
    out = np.zeros_like(labels)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    next_label = 0
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None or not min_area_px <= areas[label] <= MAX_AREA_FRACTION * m.size:
            continue
        padded = np.pad(labels[box] == label, 1)
        distance = ndimage.distance_transform_edt(padded)
        seeds, n_seeds = label_image(distance > CORE_FRACTION * distance.max())
        if n_seeds > 1:
            _d, (rows, cols) = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
            parts = np.where(padded, seeds[rows, cols], 0)
        else:
            parts, n_seeds = padded.astype(labels.dtype), 1
        inner = parts[1:-1, 1:-1]
        out[box] = np.where(inner > 0, inner + next_label, out[box])
        next_label += n_seeds
    return out, next_label


def crop_margin_px(pixel_size_nm: float) -> int:
    """Pixels around a particle's bounding box kept in its crop: the rim erosion plus 3 px of background."""
    return max(rim_erosion_px(pixel_size_nm), 1) + 3


def particle_regions(mask: np.ndarray, min_area_px: int = MIN_AREA_PX, margin_px: int = 0) -> list[ParticleRegion]:
    """One :class:`ParticleRegion` per particle of ``mask`` (touching ones split) of >= ``min_area_px`` px,
    its crop grown by ``margin_px`` on every side (clipped to the image)."""
    if margin_px < 0:
        raise ValueError(f"margin_px must be >= 0, got {margin_px}")
    labels, count = split_touching(mask, min_area_px)
    height, width = labels.shape
    regions = []
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        rows = slice(max(box[0].start - margin_px, 0), min(box[0].stop + margin_px, height))
        cols = slice(max(box[1].start - margin_px, 0), min(box[1].stop + margin_px, width))
        own = labels[rows, cols] == label
        if own.sum() < min_area_px:
            continue
        cy, cx = ndimage.center_of_mass(own)
        regions.append(ParticleRegion(label, f"P{len(regions) + 1}", rows, cols, own,
                                      (float(cx + cols.start), float(cy + rows.start))))
    return regions


def measure_particle(diff_region: np.ndarray, region: ParticleRegion, pixel_size_nm: float,
                     reference_region: np.ndarray | None = None) -> ParticleMeasure:
    """COM distance (nm) and mean ΔI/I of ``region`` from its differential crop; with the reference
    frame's crop the rim's partial coverage is corrected (as ``operascope analyze``), else the rim is eroded."""
    if diff_region.shape != region.mask.shape:
        raise ValueError(f"differential crop {diff_region.shape} does not match particle {region.name} "
                         f"box {region.mask.shape}")
    if reference_region is not None and reference_region.shape != region.mask.shape:
        raise ValueError(f"reference crop {reference_region.shape} does not match particle {region.name} "
                         f"box {region.mask.shape}")
    front = front_com(diff_region, region.mask, rim_erosion_px(pixel_size_nm), UNREACTED_THRESHOLD,
                      MIN_UNREACTED_FRACTION, reference=reference_region)
    values = diff_region[region.mask]
    finite = values[np.isfinite(values)]
    mean = float(finite.mean()) if finite.size else float("nan")
    return ParticleMeasure(front.distance_px * pixel_size_nm, mean)


def measure_particles(diff: np.ndarray, regions: list[ParticleRegion], pixel_size_nm: float,
                      reference: np.ndarray | None = None) -> list[ParticleMeasure]:
    """:func:`measure_particle` for every region of a whole differential image (and its reference frame)."""
    return [measure_particle(diff[r.rows, r.cols], r, pixel_size_nm,
                             None if reference is None else reference[r.rows, r.cols]) for r in regions]
