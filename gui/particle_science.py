"""Per-particle reaction-front numbers for the window (live science panel and run browser).

The same functions and defaults as ``operascope analyze`` (analysis/report.py): particles are the
connected regions of the mask (analysis.masking.label_particles), the COM distance is
analysis.reaction_front.com_distance_px of the unreacted region (ΔI/I below 0.05, NaN once less than
5 % of the particle is left), the mean ΔI/I is the mean over the particle's pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from operascope.analysis.masking import label_image, label_particles
from operascope.analysis.reaction_front import com_distance_px

log = logging.getLogger(__name__)

#: the analysis defaults of ``operascope analyze`` (analysis/report.py)
UNREACTED_THRESHOLD = 0.05
MIN_UNREACTED_FRACTION = 0.05
MIN_AREA_PX = 30


@dataclass(frozen=True)
class ParticleRegion:
    """One particle of the mask: its bounding box (slices) and its own mask inside that box."""

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


def particle_regions(mask: np.ndarray, min_area_px: int = MIN_AREA_PX) -> list[ParticleRegion]:
    """One :class:`ParticleRegion` per connected mask region of at least ``min_area_px`` pixels."""
    labels, _count = label_image(mask)
    regions = []
    for number, particle in enumerate(label_particles(mask, min_area_px=min_area_px), start=1):
        rows, cols = particle.slices(0, labels.shape)
        regions.append(ParticleRegion(particle.label, f"P{number}", rows, cols,
                                      labels[rows, cols] == particle.label, particle.centroid_xy_px))
    return regions


def measure_particle(diff_region: np.ndarray, region: ParticleRegion, pixel_size_nm: float) -> ParticleMeasure:
    """COM distance (nm) and mean ΔI/I of ``region`` from its differential image (the bounding-box crop)."""
    if diff_region.shape != region.mask.shape:
        raise ValueError(f"differential crop {diff_region.shape} does not match particle {region.name} "
                         f"box {region.mask.shape}")
    com_px = com_distance_px(diff_region, region.mask, UNREACTED_THRESHOLD, MIN_UNREACTED_FRACTION)
    values = diff_region[region.mask]
    finite = values[np.isfinite(values)]
    mean = float(finite.mean()) if finite.size else float("nan")
    return ParticleMeasure(com_px * pixel_size_nm, mean)


def measure_particles(diff: np.ndarray, regions: list[ParticleRegion],
                      pixel_size_nm: float) -> list[ParticleMeasure]:
    """:func:`measure_particle` for every region of a whole differential image."""
    return [measure_particle(diff[r.rows, r.cols], r, pixel_size_nm) for r in regions]
