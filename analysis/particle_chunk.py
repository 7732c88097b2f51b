"""One particle over a chunk of bins: a pure function, windows in, per-bin series out (issue 16 item 4).

:func:`particle_chunk_series` is the serial kernel of the per-particle analysis shared by the report
(:mod:`operascope.analysis.report`) and the Dask plan (:mod:`operascope.analysis.distributed.graph`). For every
bin of the chunk it gives what the per-frame path computes with ``shift_image`` -> ``differential`` ->
``front_com(reference=...)`` / ``unreacted_region`` — equal to float rounding (tested) — but vectorised over the
chunk: one stacked spline shift (:func:`operascope.analysis.drift.shift_stack`), and everything that depends only
on the reference and the mask (valid pixels, rim coverage, background and interior levels, pixel coordinates)
computed once per chunk instead of once per frame. No state, no I/O: chunks may run in any order or in parallel.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from operascope.analysis.drift import shift_stack
from operascope.analysis.reaction_front import MIN_RIM_COVERAGE, core_mask, rim_erosion_px

#: Rows of the array :func:`particle_chunk_series` returns.
SERIES = ("com_distance_nm", "mean_differential", "unreacted_fraction")


@dataclass(frozen=True)
class _Statics:
    """What depends only on the reference window and the particle mask (as flat arrays over the mask pixels)."""

    rows: np.ndarray          # row of each mask pixel (int)
    cols: np.ndarray          # column of each mask pixel (int)
    valid: np.ndarray         # reference finite and > 0 at each mask pixel (differential defined)
    reference32: np.ndarray   # reference (float32) at each mask pixel
    scale: np.ndarray | None  # coverage-correction factor ref / (coverage * interior) at kept pixels; None: no correction
    keep: np.ndarray          # mask pixels whose coverage is enough to be corrected (all True without correction)
    reference64: np.ndarray   # reference (float64) at each mask pixel
    denominator: np.ndarray   # coverage * interior at each mask pixel (1 where not kept)
    shape: tuple[int, int] = (0, 0)   # of the reference window / mask
    pixel_size_nm: float = float("nan")


def particle_statics(reference: np.ndarray, mask: np.ndarray, pixel_size_nm: float) -> _Statics:
    """What :func:`particle_chunk_series` needs of the reference window and the particle mask alone: compute it
    once per particle and pass it to every chunk (``statics=``) instead of once per chunk. Pure."""
    m = np.asarray(mask, dtype=bool)
    if np.shape(reference) != m.shape or m.ndim != 2:
        raise ValueError(f"reference {np.shape(reference)} and mask {m.shape} must be one (h, w) shape")
    found = _statics(reference, m, rim_erosion_px(pixel_size_nm))
    return replace(found, shape=(int(m.shape[0]), int(m.shape[1])), pixel_size_nm=float(pixel_size_nm))


def _statics(reference: np.ndarray, mask: np.ndarray, rim_px: int) -> _Statics:
    """The reference-only part of ``differential`` and ``coverage_corrected_differential``."""
    ref32 = np.asarray(reference, dtype=np.float32)
    ref = np.asarray(reference, dtype=float)
    rows, cols = np.nonzero(mask)
    valid = np.isfinite(ref32[rows, cols]) & (ref32[rows, cols] > 0)
    core = core_mask(mask, rim_px)
    outside = ~ndimage.binary_dilation(mask, iterations=max(rim_px, 1)) & np.isfinite(ref)
    scale = None
    keep = np.ones(rows.size, dtype=bool)
    denominator = np.ones(rows.size)
    if core.any() and outside.any():
        background = float(np.median(ref[outside]))
        interior = float(np.median(ref[core]))
        step = interior - background
        if np.isfinite(step) and abs(step) > 1e-6 * max(abs(background), 1e-12) and interior > 0:
            coverage = np.clip((ref[rows, cols] - background) / step, 0.0, 1.0)
            keep = coverage >= MIN_RIM_COVERAGE
            denominator = np.where(keep, coverage * interior, 1.0)
            scale = keep
    return _Statics(rows, cols, valid, ref32[rows, cols], scale, keep, ref[rows, cols], denominator)


def particle_chunk_series(
    block: np.ndarray,
    reference: np.ndarray,
    mask: np.ndarray,
    area_px: int,
    dx_px: np.ndarray,
    dy_px: np.ndarray,
    pixel_size_nm: float,
    unreacted_threshold: float = 0.05,
    min_unreacted_fraction: float = 0.05,
    statics: _Statics | None = None,
) -> np.ndarray:
    """(3, n) array of :data:`SERIES` for the n bins of ``block``.

    ``block`` (n, h, w): the particle's window of n binned frames (not drift-corrected); ``reference`` (h, w) the
    drift-corrected reference in that window; ``mask`` (h, w) the particle's pixels; ``area_px`` its area (the
    unreacted fraction's denominator); ``dx_px, dy_px`` the drift of each bin (undone here); ``statics`` (optional)
    :func:`particle_statics` of this ``reference``, ``mask`` and pixel size, computed once per particle. Pure.
    """
    stack = np.asarray(block, dtype=np.float32)
    m = np.asarray(mask, dtype=bool)
    if stack.ndim != 3 or stack.shape[1:] != m.shape or np.shape(reference) != m.shape:
        raise ValueError(f"block {stack.shape}, reference {np.shape(reference)} and mask {m.shape} must be "
                         "(n, h, w), (h, w), (h, w)")
    if not 0.0 <= min_unreacted_fraction < 1.0:
        raise ValueError(f"min_unreacted_fraction must be in [0, 1), got {min_unreacted_fraction}")
    if not np.isfinite(unreacted_threshold):
        raise ValueError(f"unreacted threshold must be finite, got {unreacted_threshold}")
    n = stack.shape[0]
    out = np.full((3, n), np.nan)
    if n == 0:
        return out
    if statics is None:
        st = _statics(reference, m, rim_erosion_px(pixel_size_nm))
    elif statics.shape != m.shape or statics.pixel_size_nm != pixel_size_nm:
        raise ValueError(f"statics are for a {statics.shape} window at {statics.pixel_size_nm} nm/px, not "
                         f"{m.shape} at {pixel_size_nm} nm/px")
    else:
        st = statics
    if st.rows.size:   # shift only the mask's bounding box (identical to cutting the whole shifted window)
        r0, c0 = int(st.rows.min()), int(st.cols.min())
        corrected = shift_stack(stack, -np.asarray(dx_px, dtype=float), -np.asarray(dy_px, dtype=float),
                                slice(r0, int(st.rows.max()) + 1), slice(c0, int(st.cols.max()) + 1))
        values = corrected[:, st.rows - r0, st.cols - c0]        # (n, m) float32, mask pixels only
    else:
        values = np.empty((n, 0), dtype=np.float32)
    diff = np.full(values.shape, np.nan, dtype=np.float32)       # differential(): float32, NaN where not valid
    if st.valid.all():
        np.divide(values - st.reference32, st.reference32, out=diff)
    else:
        np.divide(values - st.reference32, st.reference32, out=diff, where=st.valid[None, :])
    d64 = diff.astype(np.float64)
    finite = np.isfinite(d64)
    if m.any():
        with np.errstate(invalid="ignore"):
            out[1] = np.nanmean(diff, axis=1)
    with np.errstate(invalid="ignore"):
        below = finite & (d64 < unreacted_threshold)
    out[2] = below.sum(axis=1) / max(area_px, 1)
    # front_com with the reference: coverage-corrected differential, then the unreacted region's COM offset
    if st.scale is not None:
        usable = finite & st.keep[None, :]
        with np.errstate(invalid="ignore"):
            corrected_diff = np.where(usable, d64 * st.reference64 / st.denominator, np.nan)
        usable &= np.isfinite(corrected_diff)
    else:
        corrected_diff, usable = d64, finite
    with np.errstate(invalid="ignore"):
        region = usable & (corrected_diff < unreacted_threshold)
    area = usable.sum(axis=1)
    count = region.sum(axis=1)
    # sums of integer pixel coordinates: exact in float64 in any order, so one matrix product per mask
    coords = np.stack([st.cols, st.rows], axis=1).astype(float)               # (m, 2)
    whole = usable.astype(float) @ coords
    front = region.astype(float) @ coords
    with np.errstate(invalid="ignore", divide="ignore"):
        whole_x, whole_y = whole[:, 0] / area, whole[:, 1] / area
        front_x, front_y = front[:, 0] / count, front[:, 1] / count
    defined = (area > 0) & (count >= np.maximum(min_unreacted_fraction * area, 1))
    distance = np.hypot(front_x - whole_x, front_y - whole_y)
    out[0] = np.where(defined, distance * pixel_size_nm, np.nan)
    return out
