"""Live differential imaging: (I_i - I_1)/I_1 inside a frozen mask, with live drift correction.

The reference I_1 is the first binned frame given after :meth:`LiveDifferential.reset`. Drift is
measured by the shared fiducial fit (``operascope.analysis.fiducial.fit_spot``) and undone with
``operascope.analysis.drift.shift_image``; the mask comes from ``operascope.analysis.masking.make_mask``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from operascope.acquisition.array_pool import ArrayPool
from operascope.acquisition.shift_divide import STRIP_ROWS, StripWork, shift_differential

log = logging.getLogger(__name__)


def _slices(axis: int, start: int, stop: int) -> tuple[slice, slice]:
    return (slice(start, stop), slice(None)) if axis == 0 else (slice(None), slice(start, stop))


def _shift_axis_linear(image: np.ndarray, shift_px: float, axis: int, out: np.ndarray | None = None,
                       scratch: np.ndarray | None = None) -> np.ndarray:
    """Move content by ``shift_px`` along ``axis`` with linear interpolation, edges repeated.

    ``out[i] = (1-f) in[clip(i+k)] + f in[clip(i+k+1)]`` with ``k = floor(-shift_px)``: computed on
    slices of ``image`` (no padded copy) into ``out``; the rows/columns whose sources lie past an edge
    all take that edge's value (same formula). ``out`` and ``scratch`` (float32, the image's shape,
    not ``image`` itself) are reused when given.
    """
    n = image.shape[axis]
    k = int(np.floor(-shift_px))
    f = np.float32(-shift_px - k)
    g = np.float32(1.0) - f
    if out is None:
        out = np.empty(image.shape, dtype=np.float32)
    lo = min(max(-k, 0), n)              # first output index with both sources inside the image
    hi = max(min(n - k - 1, n), lo)      # one past the last such index
    if hi > lo:
        inner = out[_slices(axis, lo, hi)]
        np.multiply(image[_slices(axis, lo + k, hi + k)], g, out=inner)
        part = scratch[_slices(axis, lo, hi)] if scratch is not None else None
        inner += np.multiply(image[_slices(axis, lo + k + 1, hi + k + 1)], f, out=part)
    if lo > 0:
        edge = image[_slices(axis, 0, 1)]
        out[_slices(axis, 0, lo)] = edge * g + edge * f
    if hi < n:
        edge = image[_slices(axis, n - 1, n)]
        out[_slices(axis, hi, n)] = edge * g + edge * f
    return out


def shift_bilinear(image: np.ndarray, dx_px: float, dy_px: float,
                   buffers: list[np.ndarray] | None = None) -> np.ndarray:
    """Move the content of ``image`` by (dx_px, dy_px) with bilinear interpolation (float32).

    Same result as ``scipy.ndimage.shift(image, (dy_px, dx_px), order=1, mode="nearest")`` but made
    of slices and two multiply-adds per axis, several times faster on a full frame (the live path).
    ``buffers``: three float32 arrays of the image's shape to work in (the result is the second one,
    overwritten by the next call); None allocates them.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2 or not (np.isfinite(dx_px) and np.isfinite(dy_px)):
        raise ValueError(f"need a 2-D image and a finite shift, got shape {img.shape} and ({dx_px}, {dy_px})")
    if buffers is None or len(buffers) != 3 or any(b.shape != img.shape or b.dtype != np.float32 for b in buffers):
        buffers = [np.empty(img.shape, dtype=np.float32) for _ in range(3)]
    rows_done = _shift_axis_linear(img, dy_px, 0, buffers[0], buffers[2])
    return _shift_axis_linear(rows_done, dx_px, 1, buffers[1], buffers[2])


#: differential images kept for reuse: those queued for the writer, the live one, spares
OUTPUT_POOL_ARRAYS = 8


@dataclass(frozen=True)
class DifferentialFrame:
    """One live differential image (float32, NaN outside the mask) and its drift (px)."""

    index: int
    time_s: float
    pixels: np.ndarray
    drift_x_px: float
    drift_y_px: float
    fit_ok: bool


class LiveDifferential:
    """Turns binned frames into differential images.

    ``mask_threshold`` None = Otsu on the reference. ``fiducial_xy_px`` None = the small isolated
    spot of the reference found by :func:`operascope.analysis.fiducial.locate_fiducial` (not the brightest
    particle). With ``drift_correction`` False frames are used as they are.
    ``shift_order`` is the spline order of the live sub-pixel shift: 1 (bilinear, :func:`shift_bilinear`
    fused with the divide in :func:`~operascope.acquisition.shift_divide.shift_differential`,
    ~10x faster than cubic on a full frame) keeps up with the camera; the offline analysis redoes
    the drift correction from /entry/binned with its own (cubic) interpolation.
    """

    def __init__(self, mask_threshold: float | None = None, drift_correction: bool = True,
                 fiducial_xy_px: tuple[float, float] | None = None, fiducial_box_px: int = 21,
                 shift_order: int = 1) -> None:
        if shift_order not in (0, 1, 2, 3, 4, 5):
            raise ValueError(f"shift_order must be an integer 0..5, got {shift_order!r}")
        self.shift_order = shift_order
        self.mask_threshold = mask_threshold
        self.drift_correction = drift_correction
        self.fiducial_xy_px = fiducial_xy_px
        self.fiducial_box_px = int(fiducial_box_px)
        self.warnings: list[str] = []
        self._pending_not_before_ns: int | None = None
        self._outputs = ArrayPool(OUTPUT_POOL_ARRAYS)   # differential images reused once written and shown
        self._apply_reset()

    def reset(self, reference_not_before_ns: int | None = None) -> None:
        """Forget the reference; the next frame becomes I_1 (with ``reference_not_before_ns``: the next
        bin whose frames were all exposed at or after that camera time, see :meth:`accepts`).

        Safe from any thread: the differential thread applies it before its next frame, so a
        frame in progress never sees half a reset.
        """
        self._pending_not_before_ns = reference_not_before_ns
        self._reset_requested = True

    def accepts(self, camera_times_ns: tuple[int, ...]) -> bool:
        """False for a bin that would become the new reference but holds a frame exposed before the
        reset's camera time (e.g. still defocused while the lock closed in). Differential thread."""
        if self._reset_requested:
            self._apply_reset()
        limit = self.reference_not_before_ns
        stamped = [t for t in camera_times_ns if t > 0]
        return self.reference is not None or limit is None or not stamped or min(stamped) >= limit

    def _apply_reset(self) -> None:
        self.reference: np.ndarray | None = None
        self.mask: np.ndarray | None = None
        self._reference_valid: np.ndarray | None = None     # reference, NaN outside the mask (divides by it)
        self._strips: StripWork | None = None                # reused by every shifted frame
        self._ref_xy: tuple[float, float] | None = None
        self._last_xy: tuple[float, float] | None = None
        self._count = 0
        self.reference_not_before_ns, self._pending_not_before_ns = self._pending_not_before_ns, None
        self._reset_requested = False

    def _strip_work(self, shape: tuple[int, ...]) -> StripWork:
        rows, width = min(STRIP_ROWS, shape[0]), shape[1]
        if self._strips is None or not self._strips.fits(rows, width):
            self._strips = StripWork(rows, width)
        return self._strips

    def set_fiducial(self, x_px: float, y_px: float) -> None:
        """Use the spot near (x_px, y_px) as the fiducial from the next reset on."""
        self.fiducial_xy_px = (float(x_px), float(y_px))

    def _fit(self, image: np.ndarray, guess: tuple[float, float] | None):
        from operascope.analysis.fiducial import fit_spot

        box = self.fiducial_box_px
        if image.shape[0] < box or image.shape[1] < box:
            return None
        try:
            return fit_spot(image, guess_xy=guess, box_px=box)
        except ValueError as exc:
            log.debug("fiducial fit failed: %s", exc)
            return None

    @staticmethod
    def _locate_fiducial(image: np.ndarray) -> tuple[float, float] | None:
        """The small diffraction-limited spot (not the brightest particle), or None if there is none."""
        from operascope.analysis.fiducial import locate_fiducial

        try:
            return locate_fiducial(image)
        except ValueError as exc:
            log.debug("no fiducial found: %s", exc)
            return None

    def process(self, pixels: np.ndarray, time_s: float) -> DifferentialFrame:
        """Differential image of one binned frame (the first one becomes the reference)."""
        from operascope.analysis.differential import differential_valid, valid_reference
        from operascope.analysis.drift import shift_image
        from operascope.analysis.masking import make_mask

        if self._reset_requested:
            self._apply_reset()
        image = np.asarray(pixels, dtype=np.float32)
        if self.reference is None:
            self.reference = image
            if self.drift_correction:
                guess = self.fiducial_xy_px or self._locate_fiducial(image)
                fit = self._fit(image, guess)
                if fit is not None and fit.ok:
                    self._ref_xy = self._last_xy = (fit.x_px, fit.y_px)
                else:
                    self.warnings.append("fiducial fit failed on the reference: live drift correction is off")
            try:
                self.mask = make_mask(image, self.mask_threshold)
            except ValueError as exc:
                self.warnings.append(f"mask not made ({exc}); every pixel is used")
                self.mask = np.ones(image.shape, dtype=bool)
            self._reference_valid = valid_reference(image, self.mask)
        dx = dy = 0.0
        ok = fused = False
        if self.drift_correction and self._ref_xy is not None and self._count > 0:
            fit = self._fit(image, self._last_xy)
            if fit is not None and fit.ok:
                ok = True
                self._last_xy = (fit.x_px, fit.y_px)
                dx, dy = fit.x_px - self._ref_xy[0], fit.y_px - self._ref_xy[1]
                if abs(dx) > 0.01 or abs(dy) > 0.01:
                    if self.shift_order == 1:
                        fused = True     # shift_bilinear + differential_valid, fused on strips in cache
                    else:
                        image = shift_image(image, -dx, -dy, order=self.shift_order)
        elif self._count == 0:
            ok = self._ref_xy is not None
        dest = self._outputs.take(image.shape)
        if fused:
            pixels_out = shift_differential(image, -dx, -dy, self._reference_valid, out=dest,
                                            work=self._strip_work(image.shape))
        else:
            pixels_out = differential_valid(image, self._reference_valid, out=dest)
        out = DifferentialFrame(self._count, float(time_s), pixels_out, float(dx), float(dy), ok)
        self._count += 1
        return out
