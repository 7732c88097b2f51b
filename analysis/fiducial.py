"""Fiducial spot localisation: pixel-integrated 2-D Gaussian fit and its Cramér–Rao bound.

Model of one box (pixel ``(i, j)`` = row ``i``, column ``j``; pixel centres at integer coordinates)::

    mu_ij = b + N * Ex(j) * Ey(i)
    Ex(j) = 0.5 * [erf((j + 1/2 - x0) / (sqrt(2) s)) - erf((j - 1/2 - x0) / (sqrt(2) s))]

with ``x0, y0`` the centre (px), ``s`` the Gaussian sigma (px), ``N`` the integrated spot signal and
``b`` the background per pixel (both in image units). The fit is a Poisson maximum-likelihood fit
(Fisher scoring with Levenberg–Marquardt damping), vectorised over a stack of boxes. A Poisson
likelihood is invariant to the image's gain (ADU per photon), so images in ADU or averaged binned
frames are fitted without knowing the gain; read noise is handled by the shifted-Poisson rule
(add the read variance, in image units, to data and model).

:func:`crlb_xy` is the exact Fisher-information bound (physics reference section 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.special import erf

_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)
#: Parameter order of the internal vectors.
_X, _Y, _S, _N, _B = range(5)


@dataclass(frozen=True)
class SpotFit:
    """Result of one spot fit. Coordinates in full-image pixels (x = column, y = row)."""

    x_px: float
    y_px: float
    sigma_px: float
    amplitude: float          # peak height above background, image units (N / (2 pi s^2))
    background: float         # per pixel, image units
    ok: bool
    reason: str               # "ok" or why the fit was rejected
    integrated_signal: float = float("nan")   # N, image units summed over the spot
    noise_gain: float = float("nan")          # residual variance / model mean: image units per photon
    n_iterations: int = 0
    box_px: int = 0                           # side of the box actually fitted

    def photons(self) -> tuple[float, float]:
        """(signal photons, background photons per pixel) implied by :attr:`noise_gain`."""
        gain = self.noise_gain if np.isfinite(self.noise_gain) and self.noise_gain > 0 else 1.0
        return self.integrated_signal / gain, max(self.background, 0.0) / gain


@dataclass(frozen=True)
class BatchFit:
    """Vectorised fit results for a stack of boxes (box-local pixel coordinates)."""

    x_px: np.ndarray
    y_px: np.ndarray
    sigma_px: np.ndarray
    signal: np.ndarray        # integrated N
    background: np.ndarray
    converged: np.ndarray     # bool: converged with the centre inside the box and the width off its limits
    noise_gain: np.ndarray    # weighted residual variance per model count
    n_iterations: int
    inside_box: np.ndarray | None = None   # bool: centre within the box, width strictly inside its limits


# ----------------------------------------------------------------------------- model


def _edge_terms(centre: np.ndarray, sigma: np.ndarray, n_px: int) -> tuple[np.ndarray, ...]:
    """Per-axis pixel integrals E and their derivatives d/dcentre, d/dsigma. Shapes (n, n_px)."""
    grid = np.arange(n_px, dtype=float)[None, :]
    c = centre[:, None]
    s = sigma[:, None]
    upper = grid + 0.5 - c
    lower = grid - 0.5 - c
    inv = 1.0 / (_SQRT2 * s)
    e_val = 0.5 * (erf(upper * inv) - erf(lower * inv))
    g_up = np.exp(-0.5 * (upper / s) ** 2)
    g_lo = np.exp(-0.5 * (lower / s) ** 2)
    d_centre = -(g_up - g_lo) / (_SQRT2PI * s)
    d_sigma = -(upper * g_up - lower * g_lo) / (_SQRT2PI * s * s)
    return e_val, d_centre, d_sigma


def spot_model(params: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Model mean (n, h, w) and Jacobian (n, h, w, 5) for parameters (n, 5) = (x, y, s, N, b)."""
    h, w = shape
    ex, dex, dsx = _edge_terms(params[:, _X], params[:, _S], w)
    ey, dey, dsy = _edge_terms(params[:, _Y], params[:, _S], h)
    n_sig = params[:, _N][:, None, None]
    outer = ey[:, :, None] * ex[:, None, :]
    mu = params[:, _B][:, None, None] + n_sig * outer
    jac = np.empty(mu.shape + (5,))
    jac[..., _X] = n_sig * ey[:, :, None] * dex[:, None, :]
    jac[..., _Y] = n_sig * dey[:, :, None] * ex[:, None, :]
    jac[..., _S] = n_sig * (ey[:, :, None] * dsx[:, None, :] + dsy[:, :, None] * ex[:, None, :])
    jac[..., _N] = outer
    jac[..., _B] = 1.0
    return mu, jac


# ----------------------------------------------------------------------------- fitting


def _initial_guess(boxes: np.ndarray, sigma_px: float | None) -> np.ndarray:
    """Moment-based start values (n, 5) from border-median background and a thresholded centroid."""
    n, h, w = boxes.shape
    border = np.concatenate(
        [boxes[:, 0, :], boxes[:, -1, :], boxes[:, 1:-1, 0], boxes[:, 1:-1, -1]], axis=1
    )
    bg = np.median(border, axis=1)
    excess = boxes - bg[:, None, None]
    peak = excess.reshape(n, -1).max(axis=1)
    weight = np.where(excess > 0.3 * peak[:, None, None], excess, 0.0)
    total = weight.sum(axis=(1, 2))
    total = np.where(total > 0, total, 1.0)
    rows = np.arange(h, dtype=float)[None, :, None]
    cols = np.arange(w, dtype=float)[None, None, :]
    y0 = (weight * rows).sum(axis=(1, 2)) / total
    x0 = (weight * cols).sum(axis=(1, 2)) / total
    if sigma_px is None:
        var = (weight * ((rows - y0[:, None, None]) ** 2 + (cols - x0[:, None, None]) ** 2)).sum(axis=(1, 2))
        # Thresholding at 30 % of the peak keeps radii up to 1.55 s; its second moment is ~0.35 of 2 s^2.
        s0 = np.sqrt(var / total / (2.0 * 0.35))
        s0 = np.clip(s0, 0.8, max(1.0, min(h, w) / 4.0))
    else:
        s0 = np.full(n, float(sigma_px))
    signal = np.clip(excess, 0, None).sum(axis=(1, 2))
    signal = np.maximum(signal, peak * 2 * np.pi * s0**2 * 0.5)
    return np.stack([x0, y0, s0, np.maximum(signal, 1e-9), bg], axis=1)


def _neg_log_likelihood(data_shifted: np.ndarray, mu_shifted: np.ndarray) -> np.ndarray:
    """Shifted-Poisson negative log-likelihood per box (constant terms dropped); inf if mu <= 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = mu_shifted - data_shifted * np.log(mu_shifted)
    value = terms.sum(axis=(1, 2))
    bad = (mu_shifted <= 0).any(axis=(1, 2))
    return np.where(bad | ~np.isfinite(value), np.inf, value)


def fit_boxes(
    boxes: np.ndarray,
    sigma_px: float | None = None,
    read_variance: float = 0.0,
    max_iterations: int = 30,
    tolerance_px: float = 1e-4,
) -> BatchFit:
    """Fit a pixel-integrated Gaussian to each box of ``boxes`` (n, h, w) by Poisson MLE.

    ``sigma_px`` fixes the width (4 free parameters) when given; ``read_variance`` is the camera
    read-noise variance in image units. Coordinates are box-local pixels.
    """
    data = np.asarray(boxes, dtype=float)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or min(data.shape[1:]) < 5:
        raise ValueError(f"boxes must have shape (n, h, w) with h, w >= 5, got {np.shape(boxes)}")
    n, h, w = data.shape
    free = [_X, _Y, _N, _B] if sigma_px is not None else [_X, _Y, _S, _N, _B]
    params = _initial_guess(data, sigma_px)
    # Shift so data + offset stays >= ~0 (shifted Poisson also absorbs negative read-noise samples).
    offset = max(float(read_variance), 0.0) + np.maximum(0.0, -data.reshape(n, -1).min(axis=1))[:, None, None]
    data_s = data + offset
    mu, jac = spot_model(params, (h, w))
    nll = _neg_log_likelihood(data_s, mu + offset)
    damping = np.full(n, 1e-3)
    converged = np.zeros(n, dtype=bool)
    s_max = max(h, w) / 2.0
    iterations = 0
    for iterations in range(1, max_iterations + 1):
        active = ~converged
        if not active.any():
            break
        idx = np.nonzero(active)[0]
        j = jac[idx][..., free].reshape(len(idx), h * w, len(free))
        weight = 1.0 / np.maximum(mu[idx] + offset[idx], 1e-12)
        resid = (data_s[idx] - mu[idx] - offset[idx]) * weight
        j_weighted_t = (j * weight.reshape(len(idx), -1, 1)).transpose(0, 2, 1)   # batched matmul: BLAS, not einsum
        grad = (j.transpose(0, 2, 1) @ resid.reshape(len(idx), -1, 1))[..., 0]
        fisher = j_weighted_t @ j
        diag = np.einsum("npp->np", fisher)
        lhs = fisher + damping[idx, None, None] * np.einsum("np,pq->npq", diag, np.eye(len(free)))
        try:
            step = np.linalg.solve(lhs, grad[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.zeros_like(grad)
            for k in range(len(idx)):
                step[k] = np.linalg.lstsq(lhs[k], grad[k], rcond=None)[0]
        trial = params[idx].copy()
        trial[:, free] += step
        trial[:, _X] = np.clip(trial[:, _X], -1.0, w)
        trial[:, _Y] = np.clip(trial[:, _Y], -1.0, h)
        trial[:, _S] = np.clip(trial[:, _S], 0.3, s_max)
        trial[:, _N] = np.maximum(trial[:, _N], 1e-12)
        mu_t, jac_t = spot_model(trial, (h, w))
        nll_t = _neg_log_likelihood(data_s[idx], mu_t + offset[idx])
        better = nll_t <= nll[idx]
        take = idx[better]
        moved = np.abs(trial[better][:, [_X, _Y]] - params[take][:, [_X, _Y]]).max(axis=1)
        params[take] = trial[better]
        mu[take] = mu_t[better]
        jac[take] = jac_t[better]
        nll[take] = nll_t[better]
        damping[take] = np.maximum(damping[take] * 0.3, 1e-7)
        damping[idx[~better]] *= 10.0
        converged[take[moved < tolerance_px]] = True
        converged[idx[~better][damping[idx[~better]] > 1e8]] = True  # stuck: cannot improve further
    # A fit that ran off the box (centre clamped at or beyond an edge) or to a width limit found no spot in
    # the box: it may have stopped improving, but it did not converge to a spot (issue 15 item 10).
    inside = ((params[:, _X] >= 0.0) & (params[:, _X] <= w - 1.0) & (params[:, _Y] >= 0.0) & (params[:, _Y] <= h - 1.0)
              & (params[:, _S] > 0.3 * (1 + 1e-9)) & (params[:, _S] < s_max * (1 - 1e-9)))
    converged &= inside
    weight = 1.0 / np.maximum(mu + offset, 1e-12)
    dof = max(h * w - len(free), 1)
    noise_gain = (((data - mu) ** 2) * weight).sum(axis=(1, 2)) / dof
    return BatchFit(
        x_px=params[:, _X], y_px=params[:, _Y], sigma_px=params[:, _S], signal=params[:, _N],
        background=params[:, _B], converged=converged, noise_gain=noise_gain, n_iterations=iterations,
        inside_box=inside,
    )


def _box_origin(centre: float, box_px: int, size: int) -> int:
    """First index of a ``box_px`` window centred on ``centre`` and kept inside ``[0, size)``."""
    start = int(round(centre)) - box_px // 2
    return int(min(max(start, 0), size - box_px))


def find_brightest_spot(image: np.ndarray, sigma_px: float = 2.0) -> tuple[float, float]:
    """(x, y) of the maximum of the Gaussian-smoothed image: a start point when no guess is given."""
    smooth = ndimage.gaussian_filter(np.asarray(image, dtype=np.float32), sigma_px)
    row, col = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    return float(col), float(row)


def fit_spot(
    image: np.ndarray,
    guess_xy: tuple[float, float] | None = None,
    box_px: int = 21,
    sigma_px: float | None = None,
    read_variance: float = 0.0,
    min_snr: float = 5.0,
    max_box_px: int = 31,
) -> SpotFit:
    """Fit the fiducial spot near ``guess_xy`` (full-image px; brightest spot if None).

    ``box_px`` is the side of the fitted square (odd, >= 5; ~ +-3 sigma). A spot found wider than
    the box suits (defocus) is refitted once in a box of ~ +-3 sigma, up to ``max_box_px``.
    ``sigma_px`` fixes the width. A fit is rejected (``ok=False`` with a ``reason``) if it does not
    converge, its centre leaves the box, its width is implausible or its peak is below
    ``min_snr`` x residual noise.
    """
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D (rows, columns), got shape {img.shape}")
    if not isinstance(box_px, (int, np.integer)) or box_px < 5:
        raise ValueError(f"box_px must be an integer >= 5, got {box_px!r}")
    if img.shape[0] < box_px or img.shape[1] < box_px:
        raise ValueError(f"image {img.shape} is smaller than the fit box ({box_px} px)")
    if guess_xy is None:
        guess_xy = find_brightest_spot(img)
    gx, gy = float(guess_xy[0]), float(guess_xy[1])
    if not (np.isfinite(gx) and np.isfinite(gy)):
        raise ValueError(f"guess_xy must be finite, got {guess_xy!r}")
    fit = None
    for _attempt in range(2):  # re-centre the box once if the spot sits off-centre
        r0 = _box_origin(gy, box_px, img.shape[0])
        c0 = _box_origin(gx, box_px, img.shape[1])
        box = np.asarray(img[r0:r0 + box_px, c0:c0 + box_px], dtype=float)
        fit = fit_boxes(box[None], sigma_px=sigma_px, read_variance=read_variance)
        x_local, y_local = float(fit.x_px[0]), float(fit.y_px[0])
        new_x, new_y = x_local + c0, y_local + r0
        if abs(new_x - (c0 + box_px // 2)) <= 2 and abs(new_y - (r0 + box_px // 2)) <= 2:
            break
        if not (0 <= x_local < box_px and 0 <= y_local < box_px):
            break
        gx, gy = new_x, new_y
    assert fit is not None
    result = _to_spot_fit(fit, 0, c0, r0, box_px, min_snr)
    wide_box = 2 * int(math.ceil(3.0 * result.sigma_px)) + 1
    wide_box = min(wide_box, max_box_px, (min(img.shape) - 1) // 2 * 2 + 1)
    if sigma_px is None and np.isfinite(result.sigma_px) and result.sigma_px > box_px / 4.5 and wide_box > box_px:
        inside = 0 <= result.x_px - c0 < box_px and 0 <= result.y_px - r0 < box_px
        centre = (result.x_px, result.y_px) if inside else (float(guess_xy[0]), float(guess_xy[1]))
        return fit_spot(img, centre, wide_box, None, read_variance, min_snr, max_box_px=wide_box)
    return result


def _to_spot_fit(fit: BatchFit, k: int, c0: int, r0: int, box_px: int, min_snr: float) -> SpotFit:
    """Convert entry ``k`` of a batch fit to a :class:`SpotFit` with quality checks."""
    x, y, s = float(fit.x_px[k]), float(fit.y_px[k]), float(fit.sigma_px[k])
    signal, bg, gain = float(fit.signal[k]), float(fit.background[k]), float(fit.noise_gain[k])
    amplitude = signal / (2.0 * math.pi * s * s)
    # Background noise per pixel in image units: variance = gain * mean.
    noise = math.sqrt(max(gain, 0.0) * max(bg, 1e-12)) if np.isfinite(gain) else float("nan")
    reason = "ok"
    if not all(np.isfinite(v) for v in (x, y, s, signal, bg)):
        reason = "non-finite parameters"
    elif fit.inside_box is not None and not fit.inside_box[k]:
        reason = "fit left the box (no spot found in it)"
    elif not fit.converged[k]:
        reason = "did not converge"
    elif not (1.0 <= x <= box_px - 2.0 and 1.0 <= y <= box_px - 2.0):
        reason = "spot centre outside the fit box"
    elif not (0.5 <= s <= box_px / 3.0):
        reason = f"implausible width sigma={s:.2f} px"
    elif amplitude <= 0:
        reason = "non-positive amplitude"
    elif np.isfinite(noise) and amplitude < min_snr * noise:
        reason = f"low signal (peak/noise {amplitude / noise:.1f} < {min_snr})"
    return SpotFit(
        x_px=x + c0, y_px=y + r0, sigma_px=s, amplitude=amplitude, background=bg, ok=reason == "ok",
        reason=reason, integrated_signal=signal, noise_gain=gain, n_iterations=fit.n_iterations, box_px=box_px,
    )


# ----------------------------------------------------------------------------- bound


def fisher_information(
    photons: float,
    background_photons: float,
    sigma_px: float,
    box_px: int = 15,
    x_offset_px: float = 0.0,
    y_offset_px: float = 0.0,
    read_variance: float = 0.0,
    fit_sigma: bool = False,
) -> np.ndarray:
    """Fisher information matrix for (x, y, N, b[, s]) of a spot centred in a ``box_px`` box.

    ``photons`` = N (signal photons), ``background_photons`` = b^2 per pixel, ``read_variance`` in
    photons^2; offsets move the spot from the central pixel's centre (px).
    """
    if photons <= 0 or background_photons < 0 or sigma_px <= 0 or read_variance < 0:
        raise ValueError(
            "crlb needs photons > 0, background_photons >= 0, sigma_px > 0, read_variance >= 0; got "
            f"{photons}, {background_photons}, {sigma_px}, {read_variance}"
        )
    if box_px < 3:
        raise ValueError(f"box_px must be >= 3, got {box_px}")
    centre = (box_px - 1) / 2.0
    params = np.array([[centre + x_offset_px, centre + y_offset_px, sigma_px, photons, background_photons]])
    mu, jac = spot_model(params, (box_px, box_px))
    order = [_X, _Y, _N, _B] + ([_S] if fit_sigma else [])
    j = jac[0][..., order].reshape(-1, len(order))
    weight = 1.0 / (mu[0].ravel() + read_variance)
    return (j * weight[:, None]).T @ j


def crlb_xy(
    photons: float,
    background_photons: float,
    sigma_px: float,
    box_px: int = 15,
    x_offset_px: float = 0.0,
    y_offset_px: float = 0.0,
    read_variance: float = 0.0,
    fit_sigma: bool = False,
) -> tuple[float, float]:
    """Exact Fisher Cramér–Rao bound (sigma_x, sigma_y) in px for a pixelated Gaussian spot.

    Free parameters x, y, N, b (plus s if ``fit_sigma``). Check values (s = 1.3 px, 15x15 box):
    N = 1e3, b^2 = 10 -> 0.0563 px; N = 5e3, b^2 = 50 -> 0.0252 px; N = 1e5, b^2 = 1e3 -> 0.0056 px.
    """
    info = fisher_information(
        photons, background_photons, sigma_px, box_px, x_offset_px, y_offset_px, read_variance, fit_sigma
    )
    inverse = np.linalg.inv(info)
    return float(math.sqrt(inverse[0, 0])), float(math.sqrt(inverse[1, 1]))


def crlb_of_fit(fit: SpotFit, box_px: int = 21, fit_sigma: bool = True) -> tuple[float, float]:
    """Bound (px) for a measured spot (in the box it was fitted in, else ``box_px``).

    Uses the fit's own noise gain to convert to photons.

    The noise gain (residual variance per model count) calibrates image units to photon-equivalents,
    so this works for ADU frames and binned averages alike.
    """
    photons, background = fit.photons()
    if not (np.isfinite(photons) and photons > 0):
        return float("nan"), float("nan")
    box = fit.box_px if fit.box_px >= 5 else box_px
    return crlb_xy(photons, max(background, 1e-9), fit.sigma_px, box, fit_sigma=fit_sigma)


def locate_fiducial(image: np.ndarray, sigma_px: float = 3.2, max_area_px: int = 400) -> tuple[float, float]:
    """Find a bright, isolated, diffraction-limited spot: (x, y) in px.

    Candidates are the strongest maxima of the scale-normalised Laplacian-of-Gaussian at the PSF
    width (favouring spots over large particles); the first whose above-half-maximum blob has at
    most ``max_area_px`` pixels wins. Falls back to the strongest LoG response.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {img.shape}")
    response = -ndimage.gaussian_laplace(img, sigma_px) * sigma_px**2
    peaks = (response == ndimage.maximum_filter(response, size=int(4 * sigma_px) | 1)) & (response > 0)
    rows, cols = np.nonzero(peaks)
    if rows.size == 0:
        return find_brightest_spot(img, sigma_px)
    order = np.argsort(response[rows, cols])[::-1][:20]
    background = float(np.median(img))
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        half = int(6 * sigma_px)
        r0, c0 = max(r - half, 0), max(c - half, 0)
        window = img[r0:r + half + 1, c0:c + half + 1]
        level = background + 0.5 * (float(img[r, c]) - background)
        if img[r, c] <= background:
            continue
        labels, _ = ndimage.label(window > level)
        blob = labels[r - r0, c - c0]
        if blob and np.count_nonzero(labels == blob) <= max_area_px and not _touches_edge(labels == blob):
            return float(c), float(r)
    k = order[0]
    return float(cols[k]), float(rows[k])


def _touches_edge(region: np.ndarray) -> bool:
    return bool(region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any())
