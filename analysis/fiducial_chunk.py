"""The fiducial fits of one chunk of bins: a pure function, frames in, per-bin results out.

:func:`fit_fiducial_chunk` is the serial kernel of drift tracking (issue 16 item 4): it takes the
windows around the fiducial of a chunk of binned frames (all read from the same place) and returns one
fit per frame, doing every fit of the chunk in a few vectorised :func:`operascope.analysis.fiducial.fit_boxes`
calls (first fit, re-centring, wide-box refit of defocused spots) instead of one call per frame. It has no
state and no I/O, so chunks can be fitted in any order or in parallel; only the cheap jump check between
successive frames (:func:`operascope.analysis.drift.track_fiducial`) runs in order.

A spot prior (where the spot was, how wide) chooses the box once per chunk: a focused spot is fitted in the
standard box and never refitted; a spot known to be defocused is fitted straight away in its wider box.
Only frames whose fitted width does not suit their box are refitted (together, in one call).

A fit is failed (``ok`` False, with a reason) when it is not finite, did not converge, left its box (the
fitter ran to an edge or a width limit), left the prior region (farther than ``prior_radius_px`` from the
anchor), or has an implausible width, no amplitude or too low a signal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from operascope.analysis.fiducial import _B, _N, _S, _X, _Y, BatchFit, fit_boxes, spot_model

#: A spot wider than box / WIDE_RATIO wants a bigger box (as :func:`operascope.analysis.fiducial.fit_spot`).
WIDE_RATIO = 4.5
#: Re-centre the box when the fitted centre is farther than this from its middle (px).
RECENTRE_PX = 2.0


@dataclass(frozen=True)
class ChunkFits:
    """One fiducial fit per frame of a chunk; coordinates in full-image px (x = column, y = row)."""

    x_px: np.ndarray
    y_px: np.ndarray
    sigma_px: np.ndarray
    signal: np.ndarray          # integrated spot signal N, image units
    background: np.ndarray      # per pixel, image units
    noise_gain: np.ndarray      # residual variance per model count (image units per photon)
    box_px: np.ndarray          # side of the box each frame was finally fitted in
    crlb_px: np.ndarray         # Cramér–Rao bound on x (px) from the fit's own photon estimate; NaN if failed
    ok: np.ndarray              # bool
    reasons: tuple[str, ...]    # "ok" or why the fit failed
    n_fit_calls: int            # vectorised fit_boxes calls used for the chunk
    n_refits: int               # frames refitted in a wider box


def wide_box_px(sigma_px: float, box_px: int, max_box_px: int) -> int:
    """Odd box of about ±3σ for a spot of width ``sigma_px``, between ``box_px`` and ``max_box_px``."""
    if not math.isfinite(sigma_px):
        return box_px
    return int(min(max(2 * int(math.ceil(3.0 * sigma_px)) + 1, box_px), max_box_px))


def prior_box_px(prior_sigma_px: float | None, box_px: int, max_box_px: int) -> int:
    """Box for a chunk given the spot width seen before: ``box_px`` for a focused spot, wider if defocused."""
    if prior_sigma_px is None or not math.isfinite(prior_sigma_px) or prior_sigma_px <= box_px / WIDE_RATIO:
        return box_px
    return wide_box_px(prior_sigma_px, box_px, max_box_px)


def _origins(centre: np.ndarray, box_px: int, size: int) -> np.ndarray:
    """First index of a ``box_px`` window centred on each ``centre``, kept inside ``[0, size)``."""
    start = np.round(centre).astype(int) - box_px // 2
    return np.clip(start, 0, size - box_px)


def _cut(regions: np.ndarray, frames: np.ndarray, r0: np.ndarray, c0: np.ndarray, box_px: int) -> np.ndarray:
    """Boxes (len(frames), box, box) at per-frame origins."""
    offsets = np.arange(box_px)
    rows = (r0[:, None] + offsets)[:, :, None]
    cols = (c0[:, None] + offsets)[:, None, :]
    return regions[frames[:, None, None], rows, cols]


class _Fitter:
    """Fits boxes of the chunk's regions, counting the vectorised calls."""

    def __init__(self, regions: np.ndarray, sigma_px: float | None, read_variance: float) -> None:
        self.regions = regions
        self.sigma_px = sigma_px
        self.read_variance = read_variance
        self.calls = 0

    def fit(self, frames: np.ndarray, cx: np.ndarray, cy: np.ndarray, box_px: int
            ) -> tuple[BatchFit, np.ndarray, np.ndarray]:
        """Fit boxes centred near (cx, cy) (region px), re-centring once those found off-centre.

        Returns the fit and the box origins (r0, c0) in region px.
        """
        _, height, width = self.regions.shape
        r0, c0 = _origins(cy, box_px, height), _origins(cx, box_px, width)
        fit = self._fit(frames, r0, c0, box_px)
        off = ((np.abs(fit.x_px + c0 - (c0 + box_px // 2)) > RECENTRE_PX)
               | (np.abs(fit.y_px + r0 - (r0 + box_px // 2)) > RECENTRE_PX))
        off &= (fit.x_px >= 0) & (fit.x_px < box_px) & (fit.y_px >= 0) & (fit.y_px < box_px)
        if off.any():
            again = np.flatnonzero(off)
            r1 = _origins(fit.y_px[again] + r0[again], box_px, height)
            c1 = _origins(fit.x_px[again] + c0[again], box_px, width)
            refit = self._fit(frames[again], r1, c1, box_px)
            fit = _merge(fit, again, refit)
            r0, c0 = r0.copy(), c0.copy()
            r0[again], c0[again] = r1, c1
        return fit, r0, c0

    def _fit(self, frames: np.ndarray, r0: np.ndarray, c0: np.ndarray, box_px: int) -> BatchFit:
        self.calls += 1
        return fit_boxes(_cut(self.regions, frames, r0, c0, box_px), sigma_px=self.sigma_px,
                         read_variance=self.read_variance)


def _merge(fit: BatchFit, where: np.ndarray, part: BatchFit) -> BatchFit:
    """``fit`` with entries ``where`` replaced by ``part``."""
    fields = {}
    for name in ("x_px", "y_px", "sigma_px", "signal", "background", "converged", "noise_gain", "inside_box"):
        values = np.array(getattr(fit, name), copy=True)
        values[where] = getattr(part, name)
        fields[name] = values
    return BatchFit(n_iterations=max(fit.n_iterations, part.n_iterations), **fields)


def fit_fiducial_chunk(
    regions: np.ndarray,
    origin_rc: tuple[int, int],
    anchor_xy: tuple[float, float],
    box_px: int = 21,
    max_box_px: int = 31,
    sigma_px: float | None = None,
    prior_sigma_px: float | None = None,
    prior_radius_px: float | None = None,
    read_variance: float = 0.0,
    min_snr: float = 5.0,
) -> ChunkFits:
    """Fit the fiducial in every frame of a chunk.

    ``regions`` (n, H, W): the same window of each binned frame, its top-left pixel at ``origin_rc`` (row,
    column) of the full frame. ``anchor_xy``: where the spot is expected (full-image px). ``sigma_px`` fixes
    the width; ``prior_sigma_px`` (the width seen before) picks the starting box; ``prior_radius_px`` (None =
    anything inside the window) bounds how far from the anchor a fit may land and still count.
    Pure: the result depends only on the arguments.
    """
    data = np.asarray(regions, dtype=float)
    if data.ndim != 3 or data.shape[0] < 1:
        raise ValueError(f"regions must have shape (n >= 1, H, W), got {np.shape(regions)}")
    if not (isinstance(box_px, (int, np.integer)) and 5 <= box_px <= max_box_px):
        raise ValueError(f"box_px must be an integer in [5, max_box_px={max_box_px}], got {box_px!r}")
    n, height, width = data.shape
    max_box_px = int(min(max_box_px, (min(height, width) - 1) // 2 * 2 + 1))
    if box_px > max_box_px:
        raise ValueError(f"region {height}x{width} px is smaller than the fit box ({box_px} px)")
    r_origin, c_origin = int(origin_rc[0]), int(origin_rc[1])
    ax, ay = float(anchor_xy[0]) - c_origin, float(anchor_xy[1]) - r_origin
    if not (math.isfinite(ax) and math.isfinite(ay)):
        raise ValueError(f"anchor_xy must be finite, got {anchor_xy!r}")
    fitter = _Fitter(data, sigma_px, read_variance)
    frames = np.arange(n)
    start_box = box_px if sigma_px is not None else prior_box_px(prior_sigma_px, box_px, max_box_px)
    fit, r0, c0 = fitter.fit(frames, np.full(n, ax), np.full(n, ay), start_box)
    boxes = np.full(n, start_box)

    n_refits = 0
    if sigma_px is None:
        # frames whose spot is wider than their box suits: refit in the box their width asks for (one call)
        wants = np.array([wide_box_px(s, box_px, max_box_px) for s in fit.sigma_px])
        wider = np.isfinite(fit.sigma_px) & (fit.sigma_px > start_box / WIDE_RATIO) & (wants > start_box)
        if wider.any():
            idx = np.flatnonzero(wider)
            wide = int(wants[idx].max())
            inside = (fit.x_px[idx] >= 0) & (fit.x_px[idx] < start_box) & (fit.y_px[idx] >= 0) & (fit.y_px[idx] < start_box)
            cx = np.where(inside, fit.x_px[idx] + c0[idx], ax)
            cy = np.where(inside, fit.y_px[idx] + r0[idx], ay)
            refit, r1, c1 = fitter.fit(idx, cx, cy, wide)
            fit = _merge(fit, idx, refit)
            r0, c0 = r0.copy(), c0.copy()
            r0[idx], c0[idx], boxes[idx] = r1, c1, wide
            n_refits = idx.size

    x = fit.x_px + c0 + c_origin
    y = fit.y_px + r0 + r_origin
    reasons = _verdicts(fit, boxes, min_snr)
    if prior_radius_px is not None:
        far = np.hypot(x - anchor_xy[0], y - anchor_xy[1]) > prior_radius_px
        reasons = [f"fit left the prior region (> {prior_radius_px:.1f} px from the expected position)"
                   if bad and why == "ok" else why for why, bad in zip(reasons, far)]
    ok = np.array([why == "ok" for why in reasons], dtype=bool)
    crlb = np.full(n, np.nan)
    crlb[ok] = crlb_x_px(fit.signal[ok], fit.background[ok], fit.noise_gain[ok], fit.sigma_px[ok], boxes[ok])
    return ChunkFits(x_px=x, y_px=y, sigma_px=fit.sigma_px, signal=fit.signal, background=fit.background,
                     noise_gain=fit.noise_gain, box_px=boxes, crlb_px=crlb, ok=ok, reasons=tuple(reasons),
                     n_fit_calls=fitter.calls, n_refits=n_refits)


def _verdicts(fit: BatchFit, boxes: np.ndarray, min_snr: float) -> list[str]:
    """The quality checks of :func:`operascope.analysis.fiducial.fit_spot`, per frame."""
    x, y, s = fit.x_px, fit.y_px, fit.sigma_px
    with np.errstate(invalid="ignore", divide="ignore"):
        amplitude = fit.signal / (2.0 * np.pi * s * s)
        noise = np.sqrt(np.maximum(fit.noise_gain, 0.0) * np.maximum(fit.background, 1e-12))
    finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(s) & np.isfinite(fit.signal) & np.isfinite(fit.background)
    inside_box = fit.inside_box if fit.inside_box is not None else np.ones(x.size, dtype=bool)
    reasons = []
    for k in range(x.size):
        box = int(boxes[k])
        if not finite[k]:
            reasons.append("non-finite parameters")
        elif not inside_box[k]:
            reasons.append("fit left the box (no spot found in it)")
        elif not fit.converged[k]:
            reasons.append("did not converge")
        elif not (1.0 <= x[k] <= box - 2.0 and 1.0 <= y[k] <= box - 2.0):
            reasons.append("spot centre outside the fit box")
        elif not (0.5 <= s[k] <= box / 3.0):
            reasons.append(f"implausible width sigma={s[k]:.2f} px")
        elif amplitude[k] <= 0:
            reasons.append("non-positive amplitude")
        elif np.isfinite(noise[k]) and amplitude[k] < min_snr * noise[k]:
            reasons.append(f"low signal (peak/noise {amplitude[k] / noise[k]:.1f} < {min_snr})")
        else:
            reasons.append("ok")
    return reasons


def crlb_x_px(signal: np.ndarray, background: np.ndarray, noise_gain: np.ndarray, sigma_px: np.ndarray,
              boxes: np.ndarray) -> np.ndarray:
    """Vectorised :func:`operascope.analysis.fiducial.crlb_of_fit`: bound on x (px), width free, spot centred.

    Image units are turned into photons by each fit's noise gain (1 where it is not a positive number).
    """
    gain = np.where(np.isfinite(noise_gain) & (noise_gain > 0), noise_gain, 1.0)
    photons = signal / gain
    background_photons = np.maximum(np.maximum(background, 0.0) / gain, 1e-9)
    out = np.full(signal.shape, np.nan)
    usable = np.isfinite(photons) & (photons > 0) & np.isfinite(sigma_px) & (sigma_px > 0)
    order = [_X, _Y, _N, _B, _S]
    for box in np.unique(boxes[usable]):
        idx = np.flatnonzero(usable & (boxes == box))
        centre = (int(box) - 1) / 2.0
        params = np.empty((idx.size, 5))
        params[:, _X] = params[:, _Y] = centre
        params[:, _S], params[:, _N], params[:, _B] = sigma_px[idx], photons[idx], background_photons[idx]
        mu, jac = spot_model(params, (int(box), int(box)))
        j = jac[..., order].reshape(idx.size, -1, len(order))
        info = np.einsum("nkp,nk,nkq->npq", j, 1.0 / mu.reshape(idx.size, -1), j)
        out[idx] = np.sqrt(np.linalg.inv(info)[:, 0, 0])
    return out
