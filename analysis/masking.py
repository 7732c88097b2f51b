"""Particle mask from the first (drift-corrected) frame and segmentation into single particles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu


@dataclass(frozen=True)
class Particle:
    """One connected particle region (pixels; x = column, y = row)."""

    label: int
    area_px: int
    centroid_xy_px: tuple[float, float]
    bbox: tuple[int, int, int, int]   # (row_start, row_stop, col_start, col_stop), stop exclusive

    @property
    def centroid(self) -> tuple[float, float]:
        """Alias of :attr:`centroid_xy_px`."""
        return self.centroid_xy_px

    def slices(self, margin_px: int = 0, shape: tuple[int, int] | None = None) -> tuple[slice, slice]:
        """(row, column) slices of the bounding box grown by ``margin_px`` (clipped to ``shape``)."""
        r0, r1, c0, c1 = self.bbox
        r0, c0 = max(r0 - margin_px, 0), max(c0 - margin_px, 0)
        r1, c1 = r1 + margin_px, c1 + margin_px
        if shape is not None:
            r1, c1 = min(r1, shape[0]), min(c1, shape[1])
        return slice(r0, r1), slice(c0, c1)


def otsu_threshold(reference: np.ndarray) -> float:
    """Otsu threshold of the finite pixels of ``reference`` (image units)."""
    values = np.asarray(reference, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0 or np.ptp(values) == 0:
        raise ValueError("reference image is empty or flat: no threshold separates particles from background")
    return float(threshold_otsu(values))


def make_mask(
    reference: np.ndarray,
    threshold: float | None = None,
    opening_px: int = 1,
    fill_holes: bool = True,
) -> np.ndarray:
    """Boolean particle mask: pixels of ``reference`` above ``threshold`` (Otsu if None).

    Pixels below the threshold are background (the paper sets them to 0). A binary opening of
    radius ``opening_px`` removes isolated noise pixels (0 disables) and holes inside particles
    are filled.
    """
    ref = np.asarray(reference, dtype=float)
    if ref.ndim != 2:
        raise ValueError(f"reference must be a 2-D image, got shape {ref.shape}")
    if opening_px < 0:
        raise ValueError(f"opening_px must be >= 0, got {opening_px}")
    t = otsu_threshold(ref) if threshold is None else float(threshold)
    if not np.isfinite(t):
        raise ValueError(f"threshold must be finite, got {threshold}")
    mask = np.isfinite(ref) & (ref > t)
    if opening_px > 0:
        structure = ndimage.generate_binary_structure(2, 1)
        mask = ndimage.binary_opening(mask, structure=structure, iterations=opening_px)
    if fill_holes:
        mask = ndimage.binary_fill_holes(mask)
    return mask.astype(bool)


def apply_mask(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Copy of ``image`` with background (outside ``mask``) set to 0, as in the paper."""
    img = np.asarray(image)
    m = np.asarray(mask, dtype=bool)
    if img.shape != m.shape:
        raise ValueError(f"image {img.shape} and mask {m.shape} differ in shape")
    return np.where(m, img, 0).astype(img.dtype, copy=False)


def label_image(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected labels of ``mask`` (0 = background) and the number of labels."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    labels, count = ndimage.label(m, structure=np.ones((3, 3), dtype=int))
    return labels, int(count)


def label_particles(mask: np.ndarray, min_area_px: int = 30) -> list[Particle]:
    """One :class:`Particle` per connected region of ``mask`` with at least ``min_area_px`` pixels.

    Labels are those of :func:`label_image` (so ``labels == particle.label`` selects it), ordered by
    label; smaller regions are dropped.
    """
    if min_area_px < 1:
        raise ValueError(f"min_area_px must be >= 1, got {min_area_px}")
    labels, count = label_image(mask)
    if count == 0:
        return []
    index = np.arange(1, count + 1)
    areas = ndimage.sum_labels(np.ones_like(labels), labels, index)
    centres = ndimage.center_of_mass(np.ones_like(labels), labels, index)
    boxes = ndimage.find_objects(labels)
    particles = []
    for lab, area, (cy, cx), box in zip(index, areas, centres, boxes):
        if area < min_area_px or box is None:
            continue
        bbox = (box[0].start, box[0].stop, box[1].start, box[1].stop)
        particles.append(Particle(int(lab), int(area), (float(cx), float(cy)), bbox))
    return particles
