"""Material functions for Ni-rich NMC: open-circuit voltage and Li diffusivity.

Proxies from PyBaMM parameter sets (LG M50 NMC811, not Ni88; see
``reference/physics-and-algorithms.md`` section 6):

* ``ocv_chen2020`` — Chen et al., J. Electrochem. Soc. 167, 080534 (2020),
  fitted over x = 0.266 (4.29 V) to 0.906 (3.57 V); extrapolated beyond.
* ``diffusivity_oregan2022`` — O'Regan et al., Electrochim. Acta 425, 140700 (2022),
  an effective (chemical) diffusivity in m^2/s, already including the thermodynamic factor.

Users may replace either by tabulated data with :class:`TabulatedFunction`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FARADAY_C_MOL = 96485.33212
GAS_CONSTANT_J_MOL_K = 8.314462618
DEFAULT_TEMPERATURE_K = 295.15
SPECIFIC_CAPACITY_MAH_G = 200.0
DENSITY_G_CM3 = 4.78
MOLAR_MASS_G_MOL = 97.46
MOLAR_VOLUME_CM3_MOL = MOLAR_MASS_G_MOL / DENSITY_G_CM3
LITHIUM_SITES_MOL_M3 = DENSITY_G_CM3 * 1e6 / MOLAR_MASS_G_MOL
BET_AREA_M2_G = 0.6
#: Theoretical capacity (one Li per formula unit), mAh/g.
THEORETICAL_CAPACITY_MAH_G = FARADAY_C_MOL / 3.6 / MOLAR_MASS_G_MOL


def ocv_chen2020(theta: np.ndarray | float) -> np.ndarray | float:
    """Open-circuit voltage (V vs Li/Li+) at Li occupancy ``theta`` (Chen2020 NMC811 fit)."""
    x = np.asarray(theta, dtype=float)
    u = (
        -0.8090 * x
        + 4.4875
        - 0.0428 * np.tanh(18.5138 * (x - 0.5542))
        - 17.7326 * np.tanh(15.7890 * (x - 0.3117))
        + 17.5842 * np.tanh(15.9308 * (x - 0.3120))
    )
    return float(u) if np.ndim(theta) == 0 else u


def docv_dtheta_chen2020(theta: np.ndarray | float) -> np.ndarray | float:
    """dU/dθ (V per unit θ) of :func:`ocv_chen2020`, analytic."""
    x = np.asarray(theta, dtype=float)

    def dtanh(a: float, b: float) -> np.ndarray:
        return a / np.cosh(a * (x - b)) ** 2

    d = -0.8090 - 0.0428 * dtanh(18.5138, 0.5542) - 17.7326 * dtanh(15.7890, 0.3117) + 17.5842 * dtanh(15.9308, 0.3120)
    return float(d) if np.ndim(theta) == 0 else d


def diffusivity_oregan2022(theta: np.ndarray | float, temperature_k: float = DEFAULT_TEMPERATURE_K) -> np.ndarray | float:
    """Effective Li diffusivity (m^2/s) at occupancy ``theta`` and temperature (O'Regan 2022)."""
    x = np.asarray(theta, dtype=float)
    a = (-0.9231, -0.4066, -0.993)
    b = (0.3216, 0.4532, 0.8098)
    c = (0.002534, 0.003926, 0.09924)
    exponent = -13.96 + sum(ai * np.exp(-((x - bi) ** 2) / ci) for ai, bi, ci in zip(a, b, c))
    d = 2.7 * 10.0**exponent * np.exp(1449.0 * (1.0 / 298.15 - 1.0 / temperature_k))
    return float(d) if np.ndim(theta) == 0 else d


def theta_from_ocv(voltage_v: float, low: float = 0.2, high: float = 1.0) -> float:
    """Invert :func:`ocv_chen2020` (monotonic on [low, high]) by bisection."""
    lo, hi = low, high
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if ocv_chen2020(mid) > voltage_v:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class TabulatedFunction:
    """A user-supplied function of θ given as a table, linearly interpolated."""

    theta: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        t = np.asarray(self.theta, dtype=float)
        v = np.asarray(self.values, dtype=float)
        if t.ndim != 1 or t.shape != v.shape or t.size < 2:
            raise ValueError("table needs two 1-D columns of equal length >= 2 (theta, value)")
        if np.any(np.diff(t) <= 0):
            raise ValueError("table theta column must be strictly increasing")
        object.__setattr__(self, "theta", t)
        object.__setattr__(self, "values", v)

    def __call__(self, theta: np.ndarray | float) -> np.ndarray | float:
        out = np.interp(theta, self.theta, self.values)
        return float(out) if np.ndim(theta) == 0 else out
