"""Analytic reference: a disk (infinite cylinder) with constant D and uniform surface flux (Crank, ch. 5).

θ(r,t) = θ0 − (q·a/D)·[2Dt/a² + r²/(2a²) − 1/4 − 2·Σ_n exp(−Dα_n²t)·J0(α_n r)/(a²α_n²·J0(α_n a))]
with q = j/N_L the outward flux (length/time), α_n·a the positive roots of J1. The mean falls as
θ0 − 2qt/a. Any consistent length/time units work (the model uses µm and s).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import j0, jn_zeros

#: Number of J1 roots used by default (the series converges slowly near r = a at early times).
DEFAULT_ROOTS = 400


@lru_cache(maxsize=8)
def _j1_roots(count: int) -> np.ndarray:
    roots = jn_zeros(1, count)
    roots.flags.writeable = False
    return roots


def crank_theta(
    r: np.ndarray, t_s: float, radius: float, diffusivity: float, flux: float, theta0: float, roots: int = DEFAULT_ROOTS
) -> np.ndarray:
    """θ at radii ``r`` (same units as ``radius``) and time ``t_s`` for outward flux ``flux`` (length/s)."""
    if roots < 200:
        raise ValueError(f"roots must be >= 200 for an accurate series, got {roots!r}")
    r = np.asarray(r, dtype=float)
    a, d = float(radius), float(diffusivity)
    alpha = _j1_roots(int(roots)) / a
    decay = np.exp(-d * alpha**2 * t_s)
    terms = decay[:, None] * j0(np.outer(alpha, r.ravel())) / (a**2 * alpha[:, None] ** 2 * j0(alpha[:, None] * a))
    bracket = 2 * d * t_s / a**2 + r.ravel() ** 2 / (2 * a**2) - 0.25 - 2.0 * terms.sum(axis=0)
    return (theta0 - flux * a / d * bracket).reshape(r.shape)


def crank_mean_theta(t_s: float, radius: float, flux: float, theta0: float) -> float:
    """Area-averaged θ: θ0 − 2·q·t/a."""
    return theta0 - 2.0 * flux * t_s / radius
