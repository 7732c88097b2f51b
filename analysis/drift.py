"""Lateral drift: measure it from the fiducial spot in every frame, and undo it by sub-pixel shifts.

Convention: ``dx_px, dy_px`` is how far the image content has moved (+x = towards higher column
index, +y = towards higher row index) relative to the reference frame. :func:`shift_image` moves
content by a given amount, so a frame is corrected with ``shift_image(frame, -dx_px, -dy_px)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
from scipy import ndimage

from operascope.analysis.fiducial import SpotFit, crlb_of_fit, find_brightest_spot, fit_spot

ProgressCallback = Callable[[int, int, str], None]


def shift_image(image: np.ndarray, dx_px: float, dy_px: float, order: int = 3) -> np.ndarray:
    """Move the content of ``image`` by (dx_px, dy_px) with spline interpolation (float32 out).

    Edges are filled by the nearest valid pixel; crop a border of max|shift| + 3 px before use.
    Use the same ``order`` on every frame, including the reference.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {img.shape}")
    if not (np.isfinite(dx_px) and np.isfinite(dy_px)):
        raise ValueError(f"shift must be finite, got ({dx_px}, {dy_px})")
    if order not in (0, 1, 2, 3, 4, 5):
        raise ValueError(f"order must be 0..5, got {order}")
    return ndimage.shift(img, (dy_px, dx_px), order=order, mode="nearest").astype(np.float32, copy=False)


@dataclass(frozen=True)
class DriftTrace:
    """Fiducial drift of every frame relative to the reference frame (px); NaN where rejected."""

    dx_px: np.ndarray
    dy_px: np.ndarray
    ok: np.ndarray                 # bool per frame: the fit was accepted
    reasons: tuple[str, ...]       # fit verdict per frame
    fits: tuple[SpotFit, ...]
    reference_index: int
    crlb_px: np.ndarray            # per frame bound (sigma_x) from the fit's own photon estimate

    def filled(self) -> tuple[np.ndarray, np.ndarray]:
        """Drift with rejected frames filled by linear interpolation over frame index (px)."""
        return _fill(self.dx_px, self.ok), _fill(self.dy_px, self.ok)

    def scatter_px(self) -> tuple[float, float]:
        """Frame-to-frame precision estimate: std of successive differences / sqrt(2) (px).

        Slow drift cancels in the differences, so this measures the localisation noise.
        """
        out = []
        for values in (self.dx_px, self.dy_px):
            good = values[self.ok]
            diffs = np.diff(good)
            out.append(float(np.std(diffs) / np.sqrt(2.0)) if diffs.size >= 2 else float("nan"))
        return out[0], out[1]


def _fill(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    idx = np.arange(values.size)
    if not ok.any():
        return np.zeros_like(values)
    return np.interp(idx, idx[ok], values[ok])


def measure_drift(
    frames: Sequence[np.ndarray] | np.ndarray,
    guess_xy: tuple[float, float] | None = None,
    box_px: int = 21,
    sigma_px: float | None = None,
    reference_index: int = 0,
    max_jump_px: float = 5.0,
    progress: ProgressCallback | None = None,
) -> DriftTrace:
    """Fit the fiducial in every frame of ``frames`` ((n, h, w) array or sequence of 2-D frames).

    See :func:`track_fiducial`; this is the in-memory form.
    """
    if len(frames) == 0:
        raise ValueError("measure_drift needs at least one frame")
    shape = np.shape(frames[0])
    if len(shape) != 2:
        raise ValueError(f"frames must be 2-D images, got a frame of shape {shape}")

    def read_region(k: int, rows: slice, cols: slice) -> np.ndarray:
        return np.asarray(frames[k])[rows, cols]

    return track_fiducial(read_region, len(frames), (int(shape[0]), int(shape[1])), guess_xy, box_px,
                          sigma_px, reference_index, max_jump_px, progress)


def track_fiducial(
    read_region: Callable[[int, slice, slice], np.ndarray],
    n_frames: int,
    frame_shape: tuple[int, int],
    guess_xy: tuple[float, float] | None = None,
    box_px: int = 21,
    sigma_px: float | None = None,
    reference_index: int = 0,
    max_jump_px: float = 5.0,
    progress: ProgressCallback | None = None,
    max_box_px: int = 31,
) -> DriftTrace:
    """Fit the fiducial in frames 0..n-1 and return its displacement from the reference frame.

    ``read_region(k, rows, cols)`` returns that region of frame k, so only a small window around
    the spot is read per frame. The window follows the spot from frame to frame (starting at
    ``guess_xy``, or the brightest spot of frame 0). Fits that fail the quality checks of
    :func:`operascope.analysis.fiducial.fit_spot`, or jump more than ``max_jump_px`` from the last accepted
    position, are rejected (NaN). Defocused (wide) spots are refitted in a box up to
    ``max_box_px``. ``progress(done, total, label)`` is called per frame.
    """
    if n_frames < 1:
        raise ValueError("measure_drift needs at least one frame")
    if max_jump_px <= 0:
        raise ValueError(f"max_jump_px must be > 0, got {max_jump_px}")
    height, width = frame_shape
    if guess_xy is None:
        guess_xy = find_brightest_spot(read_region(0, slice(None), slice(None)))
    half = max(box_px, max_box_px) // 2 + int(np.ceil(max_jump_px)) + 2
    fits: list[SpotFit] = []
    last_xy = (float(guess_xy[0]), float(guess_xy[1]))
    for k in range(n_frames):
        r0 = int(min(max(round(last_xy[1]) - half, 0), max(height - 2 * half - 1, 0)))
        c0 = int(min(max(round(last_xy[0]) - half, 0), max(width - 2 * half - 1, 0)))
        region = read_region(k, slice(r0, r0 + 2 * half + 1), slice(c0, c0 + 2 * half + 1))
        local = fit_spot(region, (last_xy[0] - c0, last_xy[1] - r0), box_px=box_px, sigma_px=sigma_px,
                         max_box_px=max_box_px)
        fit = replace(local, x_px=local.x_px + c0, y_px=local.y_px + r0)
        if fit.ok and k > 0 and fits and any(f.ok for f in fits):
            jump = float(np.hypot(fit.x_px - last_xy[0], fit.y_px - last_xy[1]))
            if jump > max_jump_px:
                fit = replace(fit, ok=False, reason=f"jump of {jump:.1f} px from previous position")
        if fit.ok:
            last_xy = (fit.x_px, fit.y_px)
        fits.append(fit)
        if progress is not None:
            progress(k + 1, n_frames, "fiducial fits")
    if not (0 <= reference_index < len(fits)):
        raise ValueError(f"reference_index {reference_index} outside 0..{len(fits) - 1}")
    x = np.array([f.x_px for f in fits])
    y = np.array([f.y_px for f in fits])
    ok = np.array([f.ok for f in fits])
    if not ok[reference_index]:
        accepted = np.nonzero(ok)[0]
        if accepted.size == 0:
            raise ValueError(f"no frame gave an acceptable fiducial fit (frame 0: {fits[0].reason})")
        reference_index = int(accepted[0])
    ref = fits[reference_index]
    dx = np.where(ok, x - ref.x_px, np.nan)
    dy = np.where(ok, y - ref.y_px, np.nan)
    crlb = np.array([crlb_of_fit(f, box_px)[0] if f.ok else np.nan for f in fits])
    return DriftTrace(dx, dy, ok, tuple(f.reason for f in fits), tuple(fits), reference_index, crlb)


def correct_frames(
    frames: Sequence[np.ndarray] | np.ndarray, dx_px: np.ndarray, dy_px: np.ndarray, order: int = 3
) -> np.ndarray:
    """Undo drift: shift every frame by (-dx, -dy). Returns float32 (n, h, w)."""
    dx = np.asarray(dx_px, dtype=float)
    dy = np.asarray(dy_px, dtype=float)
    if len(frames) != dx.size or dx.size != dy.size:
        raise ValueError(f"need one shift per frame: {len(frames)} frames, {dx.size} dx, {dy.size} dy")
    return np.stack([shift_image(f, -a, -b, order) for f, a, b in zip(frames, dx, dy)])
