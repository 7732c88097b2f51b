"""Lateral drift: measure it from the fiducial spot in every frame, and undo it by sub-pixel shifts.

Convention: ``dx_px, dy_px`` is how far the image content has moved (+x = towards higher column
index, +y = towards higher row index) relative to the reference frame. :func:`shift_image` moves
content by a given amount, so a frame is corrected with ``shift_image(frame, -dx_px, -dy_px)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
from scipy import ndimage

from operascope.analysis.fiducial import SpotFit, find_brightest_spot
from operascope.analysis.fiducial_chunk import ChunkFits, fit_fiducial_chunk

ProgressCallback = Callable[[int, int, str], None]
#: Bins fitted together by one call of the chunk kernel.
CHUNK_BINS = 64
#: Extra window margin (px) so the spot can drift within a chunk and stay in the window.
CHUNK_MARGIN_PX = 6


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


#: Edge padding (px) ndimage applies before its spline prefilter in mode "nearest"; :func:`shift_stack` copies it.
_SPLINE_PAD_PX = 12


def _cubic_taps(shift_px: float) -> tuple[int, np.ndarray]:
    """Content moved by ``shift_px``: output pixel x samples the input at x - shift = x + offset + t (t in [0, 1)).

    Returns ``offset`` and the four cubic B-spline weights of coefficients x + offset - 1 .. x + offset + 2.
    """
    position = -float(shift_px)
    offset = int(np.floor(position))
    t = position - offset
    weights = np.array([(1.0 - t) ** 3 / 6.0, (4.0 - 6.0 * t * t + 3.0 * t ** 3) / 6.0,
                        (1.0 + 3.0 * t + 3.0 * t * t - 3.0 * t ** 3) / 6.0, t ** 3 / 6.0])
    return offset, weights


def _interpolate_axis(coef: np.ndarray, axis: int, size: int, shifts_px: np.ndarray, start: int = 0,
                      stop: int | None = None) -> np.ndarray:
    """Cubic interpolation along ``axis`` (1 or 2) of padded spline coefficients (n, ., .), one shift per frame.

    Successive frames whose taps start at the same coefficient are done together: four slice products per run
    (in the order of the per-frame sum, so the values are the same); taps beyond the pad are clamped to the array,
    as ndimage does. Only output positions ``start..stop`` (default: all ``size``) along ``axis`` are computed.
    """
    n = coef.shape[0]
    padded = coef.shape[axis]
    stop = size if stop is None else stop
    width = stop - start
    out_shape = list(coef.shape)
    out_shape[axis] = width
    out = np.empty(out_shape)
    taps = [_cubic_taps(s) for s in shifts_px]
    firsts = np.array([offset - 1 + _SPLINE_PAD_PX + start for offset, _ in taps], dtype=int)
    weights = np.array([w for _, w in taps]).reshape(n, 4, 1, 1)

    def along(first: int, j: int) -> tuple[slice, ...]:
        cut = [slice(None)] * 3
        cut[axis] = slice(first + j, first + j + width)
        return tuple(cut[1:])

    breaks = np.flatnonzero(np.diff(firsts)) + 1
    for begin, end in zip(np.concatenate([[0], breaks]), np.concatenate([breaks, [n]])):
        first = int(firsts[begin])                     # a run of successive frames with the same taps
        frames = slice(int(begin), int(end))
        if first >= 0 and first + 3 + width <= padded:
            group, w = coef[frames], weights[frames]
            part = out[frames]
            np.multiply(w[:, 0], group[(slice(None), *along(first, 0))], out=part)
            for j in range(1, 4):
                part += w[:, j] * group[(slice(None), *along(first, j))]
        else:
            index = np.clip(np.arange(width)[:, None] + first + np.arange(4)[None, :], 0, padded - 1)
            for k in range(begin, end):
                moved = np.moveaxis(coef[k], axis - 1, -1)                    # interpolated axis last
                result = np.take(moved, index, axis=-1) @ weights[k, :, 0, 0]
                out[k] = np.moveaxis(result, -1, axis - 1)
    return out


def _span(part: slice | None, size: int, name: str) -> tuple[int, int]:
    """(start, stop) of a step-1 slice of ``range(size)``; the whole range for None."""
    if part is None:
        return 0, size
    start, stop, step = part.indices(size)
    if step != 1 or stop <= start:
        raise ValueError(f"{name} must be a non-empty slice with step 1 inside 0..{size}, got {part}")
    return start, stop


def shift_stack(stack: np.ndarray, dx_px: np.ndarray, dy_px: np.ndarray, rows: slice | None = None,
                cols: slice | None = None) -> np.ndarray:
    """:func:`shift_image` (order 3) of every frame of an (n, h, w) stack by its own (dx, dy); float32 out.

    Equal to ``shift_image(stack[k], dx_px[k], dy_px[k])`` to float rounding (tested): the same edge padding and
    spline prefilter as ``ndimage.shift``, run once over the whole stack along contiguous lines, then the separable
    four-tap cubic B-spline interpolation of each frame as slice arithmetic (a shift is one sub-pixel offset).
    ``rows``, ``cols`` (step-1 slices): compute only that part of the output, (n, rows, cols) — identical to
    cutting the full result (the x pass is done only for the needed columns, the y pass only for those columns
    and rows), for callers that use a sub-window, e.g. one particle's pixels.
    """
    data = np.asarray(stack, dtype=np.float32)
    if data.ndim != 3:
        raise ValueError(f"stack must be (n, h, w), got shape {data.shape}")
    dx = np.asarray(dx_px, dtype=float).reshape(-1)
    dy = np.asarray(dy_px, dtype=float).reshape(-1)
    if dx.size != data.shape[0] or dy.size != data.shape[0]:
        raise ValueError(f"need one shift per frame: {data.shape[0]} frames, {dx.size} dx, {dy.size} dy")
    if not (np.isfinite(dx).all() and np.isfinite(dy).all()):
        raise ValueError("every shift must be finite")
    n, height, width = data.shape
    r0, r1 = _span(rows, height, "rows")
    c0, c1 = _span(cols, width, "cols")
    p = _SPLINE_PAD_PX
    # Edge padding as ndimage's "nearest" prefilter. The x pass acts row by row, so only the rows are padded here;
    # the y pass pads the x result (copies of its edge rows), which is the x pass of the padded rows.
    padded = np.empty((n, height, width + 2 * p))
    padded[:, :, p:p + width] = data
    padded[:, :, :p] = data[:, :, :1]
    padded[:, :, p + width:] = data[:, :, -1:]
    ndimage.spline_filter1d(padded, 3, axis=2, output=padded, mode="nearest")
    along_x = _interpolate_axis(padded, 2, width, dx, c0, c1)            # (n, h, c1 - c0)
    lines = np.empty((n, height + 2 * p, c1 - c0))
    lines[:, p:p + height] = along_x
    lines[:, :p] = along_x[:, :1]
    lines[:, p + height:] = along_x[:, -1:]
    ndimage.spline_filter1d(lines, 3, axis=1, output=lines, mode="nearest")
    return _interpolate_axis(lines, 1, height, dy, r0, r1).astype(np.float32)


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
    chunk_bins: int = CHUNK_BINS,
) -> DriftTrace:
    """Fit the fiducial in frames 0..n-1 and return its displacement from the reference frame.

    ``read_region(k, rows, cols)`` returns that region of frame k, so only a small window around
    the spot is read per frame. Frames are fitted ``chunk_bins`` at a time by the pure kernel
    :func:`operascope.analysis.fiducial_chunk.fit_fiducial_chunk` (a few vectorised fits per chunk);
    the window of a chunk is centred on the last accepted position of the one before (starting at
    ``guess_xy``, or the brightest spot of frame 0), and the spot width seen in a chunk chooses the
    box of the next (defocused spots are fitted straight away in a box up to ``max_box_px``). Fits
    that fail the kernel's checks, or jump more than ``max_jump_px`` from the last accepted
    position, are rejected (NaN; :meth:`DriftTrace.filled` interpolates over them).
    ``progress(done, total, label)`` is called per chunk.
    """
    if n_frames < 1:
        raise ValueError("measure_drift needs at least one frame")
    if max_jump_px <= 0:
        raise ValueError(f"max_jump_px must be > 0, got {max_jump_px}")
    if not (isinstance(chunk_bins, int) and chunk_bins >= 1):
        raise ValueError(f"chunk_bins must be an integer >= 1, got {chunk_bins!r}")
    height, width = frame_shape
    if guess_xy is None:
        guess_xy = find_brightest_spot(read_region(0, slice(None), slice(None)))
    half = max(box_px, max_box_px) // 2 + int(np.ceil(max_jump_px)) + 2 + CHUNK_MARGIN_PX
    state = _Tracking(read_region, (height, width), half, box_px, max_box_px, sigma_px, max_jump_px,
                      (float(guess_xy[0]), float(guess_xy[1])))
    for start in range(0, n_frames, chunk_bins):
        stop = min(start + chunk_bins, n_frames)
        state.track(start, stop)
        if progress is not None:
            progress(stop, n_frames, "fiducial fits")
    fits, crlb_parts = state.fits, state.crlb_parts
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
    crlb = np.where(ok, np.concatenate(crlb_parts), np.nan)
    return DriftTrace(dx, dy, ok, tuple(f.reason for f in fits), tuple(fits), reference_index, crlb)


#: a chunk in which more of the fits fail is fitted again in halves (each centred on the last accepted position)
MAX_FAILED_FRACTION = 0.25


class _Tracking:
    """The state of one :func:`track_fiducial` pass: accepted fits so far, the last accepted position, the width prior.

    A chunk's fits all start from the last accepted position before it; when the spot moves further than the
    window within a chunk (sparse bins: a multi-position run's bins of one field are a whole cycle apart) most
    of its fits fail, so such a chunk is fitted again in halves, down to single bins, each re-centred."""

    def __init__(self, read_region: Callable[[int, slice, slice], np.ndarray], frame_shape: tuple[int, int], half: int,
                 box_px: int, max_box_px: int, sigma_px: float | None, max_jump_px: float,
                 last_xy: tuple[float, float]) -> None:
        self.read_region, self.frame_shape, self.half = read_region, frame_shape, half
        self.box_px, self.max_box_px, self.sigma_px, self.max_jump_px = box_px, max_box_px, sigma_px, max_jump_px
        self.last_xy = last_xy
        self.prior_sigma: float | None = None
        self.fits: list[SpotFit] = []
        self.crlb_parts: list[np.ndarray] = []
        self.bins_since_accepted = 0
        self._since_after = 0

    def track(self, start: int, stop: int) -> None:
        fits, crlb, last_xy, prior_sigma = self._fit_chunk(start, stop)
        failed = sum(not f.ok for f in fits)
        if stop - start > 1 and failed > MAX_FAILED_FRACTION * (stop - start):
            middle = (start + stop) // 2
            self.track(start, middle)
            self.track(middle, stop)
            return
        self.fits.extend(fits)
        self.crlb_parts.append(crlb)
        self.last_xy = last_xy
        self.bins_since_accepted = self._since_after
        if prior_sigma is not None:
            self.prior_sigma = prior_sigma

    def _fit_chunk(self, start: int, stop: int) -> tuple[list[SpotFit], np.ndarray, tuple[float, float], float | None]:
        height, width = self.frame_shape
        half, last_xy = self.half, self.last_xy
        r0 = int(min(max(round(last_xy[1]) - half, 0), max(height - 2 * half - 1, 0)))
        c0 = int(min(max(round(last_xy[0]) - half, 0), max(width - 2 * half - 1, 0)))
        rows, cols = slice(r0, r0 + 2 * half + 1), slice(c0, c0 + 2 * half + 1)
        regions = np.stack([self.read_region(k, rows, cols) for k in range(start, stop)])
        chunk = fit_fiducial_chunk(regions, (r0, c0), last_xy, self.box_px, self.max_box_px, self.sigma_px,
                                   self.prior_sigma, prior_radius_px=float(2 * half))
        fits: list[SpotFit] = []
        any_accepted = any(f.ok for f in self.fits)
        since = self.bins_since_accepted
        for j in range(stop - start):
            fit = _spot_fit(chunk, j)
            since += 1
            if fit.ok and any_accepted:
                # the spot may have moved on while fits failed: the allowed jump grows as √(bins since the last)
                allowed = self.max_jump_px * math.sqrt(since)
                jump = float(np.hypot(fit.x_px - last_xy[0], fit.y_px - last_xy[1]))
                if jump > allowed:
                    fit = replace(fit, ok=False, reason=f"jump of {jump:.1f} px from previous position")
            if fit.ok:
                last_xy = (fit.x_px, fit.y_px)
                any_accepted, since = True, 0
            fits.append(fit)
        self._since_after = since
        prior_sigma = float(np.median(chunk.sigma_px[chunk.ok])) if chunk.ok.any() else None
        return fits, chunk.crlb_px, last_xy, prior_sigma


def _spot_fit(chunk: ChunkFits, j: int) -> SpotFit:
    """Frame ``j`` of a chunk as a :class:`SpotFit` (full-image px)."""
    s = float(chunk.sigma_px[j])
    signal = float(chunk.signal[j])
    return SpotFit(x_px=float(chunk.x_px[j]), y_px=float(chunk.y_px[j]), sigma_px=s,
                   amplitude=signal / (2.0 * np.pi * s * s) if s > 0 else float("nan"),
                   background=float(chunk.background[j]), ok=bool(chunk.ok[j]), reason=chunk.reasons[j],
                   integrated_signal=signal, noise_gain=float(chunk.noise_gain[j]), box_px=int(chunk.box_px[j]))


def correct_frames(
    frames: Sequence[np.ndarray] | np.ndarray, dx_px: np.ndarray, dy_px: np.ndarray, order: int = 3
) -> np.ndarray:
    """Undo drift: shift every frame by (-dx, -dy). Returns float32 (n, h, w)."""
    dx = np.asarray(dx_px, dtype=float)
    dy = np.asarray(dy_px, dtype=float)
    if len(frames) != dx.size or dx.size != dy.size:
        raise ValueError(f"need one shift per frame: {len(frames)} frames, {dx.size} dx, {dy.size} dy")
    return np.stack([shift_image(f, -a, -b, order) for f, a, b in zip(frames, dx, dy)])
