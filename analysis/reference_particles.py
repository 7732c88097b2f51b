"""The drift-corrected reference frame, its mask and the particles to analyse — one step shared by the serial
report (:mod:`operascope.analysis.report`) and the Dask plan (:mod:`operascope.analysis.distributed.graph`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from operascope.analysis.drift import DriftTrace, shift_image
from operascope.analysis.errors import RunFileError
from operascope.analysis.masking import Particle, label_image, label_particles, make_mask, otsu_threshold


@dataclass(frozen=True)
class ReferenceParticles:
    """The reference (first frame, drift undone), its Otsu (or given) threshold and labels, the particles kept,
    the regions left out with the reason, and the drift border (px) kept from the frame edge."""

    reference: np.ndarray
    threshold: float
    labels: np.ndarray
    kept: tuple[Particle, ...]
    excluded: dict[int, str]
    border_px: int

    def warnings(self) -> list[str]:
        """One line per region left out, and one if no particle is left."""
        lines = [f"mask region {label} not analysed: {why}" for label, why in self.excluded.items()]
        if not self.kept:
            lines.append("no particle found in the mask (check mask_threshold and min_area_px)")
        return lines


def _labels_near(labels: np.ndarray, x: float, y: float, radius_px: int = 4) -> set[int]:
    """Labels within ``radius_px`` of (x, y)."""
    r, c = int(round(y)), int(round(x))
    window = labels[max(r - radius_px, 0):r + radius_px + 1, max(c - radius_px, 0):c + radius_px + 1]
    return set(int(v) for v in np.unique(window) if v)


def reference_particles(first: np.ndarray, dx_px: np.ndarray, dy_px: np.ndarray, trace: DriftTrace | None,
                        mask_threshold: float | None, min_area_px: int, run_path: str) -> ReferenceParticles:
    """Segment the drift-corrected first frame; leave out the fiducial and particles within the drift border."""
    shape = first.shape
    reference = shift_image(first, -dx_px[0], -dy_px[0])
    try:
        threshold = otsu_threshold(reference) if mask_threshold is None else float(mask_threshold)
    except ValueError as exc:  # a blank or flat first frame: nothing to analyse in this file
        raise RunFileError(f"{run_path}: {exc} (the first binned frame shows no sample)") from None
    mask = make_mask(reference, threshold)
    labels, _count = label_image(mask)
    particles = label_particles(mask, min_area_px=min_area_px)
    excluded: dict[int, str] = {}
    if trace is not None:
        fiducial = trace.fits[trace.reference_index]  # in reference (= corrected) coordinates
        for label in _labels_near(labels, fiducial.x_px, fiducial.y_px):
            excluded[label] = "fiducial"
    n = len(dx_px)
    border = int(math.ceil(np.nanmax(np.abs(np.concatenate([dx_px, dy_px]))) if n else 0)) + 3
    for p in particles:
        r0, r1, c0, c1 = p.bbox
        if r0 < border or c0 < border or r1 > shape[0] - border or c1 > shape[1] - border:
            excluded.setdefault(p.label, "within the drift border of the frame edge")
    kept = tuple(p for p in particles if p.label not in excluded)
    return ReferenceParticles(reference, threshold, labels, kept, excluded, border)
