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


def _extent(shift_px: np.ndarray) -> tuple[float, float]:
    """(most negative, most positive) shift (px), 0 included; NaN shifts ignored."""
    finite = shift_px[np.isfinite(shift_px)]
    return (min(float(finite.min()), 0.0), max(float(finite.max()), 0.0)) if finite.size else (0.0, 0.0)


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
    # a particle is kept if it stays inside the frame (3 px from the edge) in every frame: the drift's own
    # direction counts (a field drifting right loses its right-hand particles, not its left-hand ones)
    # (frame k shows the reference's content moved by dx[k], dy[k])
    (lo_x, hi_x), (lo_y, hi_y) = _extent(np.asarray(dx_px, float)), _extent(np.asarray(dy_px, float))
    for p in particles:
        r0, r1, c0, c1 = p.bbox
        if r0 + lo_y < 3 or c0 + lo_x < 3 or r1 + hi_y > shape[0] - 3 or c1 + hi_x > shape[1] - 3:
            excluded.setdefault(p.label, "within the drift border of the frame edge")
    kept = tuple(p for p in particles if p.label not in excluded)
    return ReferenceParticles(reference, threshold, labels, kept, excluded, border)
