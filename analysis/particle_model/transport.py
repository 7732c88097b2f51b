"""Transport law for the particle model: the effective diffusivity D_eff(θ) of paper Eq. 12.

Eq. 10 gives the Li flux J = −N_L·D_eff(θ)·∇θ with D_eff = D_ab(θ)·θ·(F/RT)·(−dV_oc/dθ).
Two forms are offered (physics-and-algorithms.md section 6, "do not double-count the
thermodynamic factor"):

* ``"chemical"`` (default): D_eff = D(θ) directly. The default D is O'Regan et al. 2022
  (PyBaMM ``nmc_LGM50_diffusivity_ORegan2022``), already a chemical diffusivity.
* ``"paper"``: D_eff = D_ab(θ)·θ·(F/RT)·(−dV_oc/dθ), Eq. 10 literally. Use it only with a
  self (tracer) diffusivity D_ab such as Xu et al., Joule 6, 2535 (2022); the default V_oc is
  Chen et al. 2020 (PyBaMM ``nmc_LGM50_ocp_Chen2020``).

Both functions can be replaced by the user's own tables
(:class:`operascope.analysis.materials.TabulatedFunction`) or any callable of θ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from operascope.analysis.materials import (
    DEFAULT_TEMPERATURE_K,
    FARADAY_C_MOL,
    GAS_CONSTANT_J_MOL_K,
    diffusivity_oregan2022,
    docv_dtheta_chen2020,
    ocv_chen2020,
)

ThetaFunction = Callable[[np.ndarray], np.ndarray]
DiffusionForm = Literal["chemical", "paper"]

#: θ range the material functions are evaluated on (keeps tanh/exp fits finite).
THETA_EVALUATION_RANGE = (1e-3, 1.0)
#: Step for the numerical dV/dθ when only V_oc is given.
_DERIVATIVE_STEP = 1e-5


def _constant(value_m2_s: float) -> ThetaFunction:
    def constant_diffusivity(theta: np.ndarray) -> np.ndarray:
        return np.full(np.shape(theta), value_m2_s, dtype=float)

    return constant_diffusivity


@dataclass(frozen=True)
class MaterialFunctions:
    """D(θ) (m²/s), V_oc(θ) (V) and how they combine into D_eff (see module docstring).

    ``diffusivity_m2_s`` None means O'Regan 2022 at ``temperature_k``.

    ``docv_dtheta`` (V per unit θ) defaults to a central difference of ``ocv_v`` when None.
    """

    diffusivity_m2_s: ThetaFunction | None = None
    ocv_v: ThetaFunction = ocv_chen2020
    docv_dtheta_v: ThetaFunction | None = docv_dtheta_chen2020
    form: DiffusionForm = "chemical"
    temperature_k: float = DEFAULT_TEMPERATURE_K

    def __post_init__(self) -> None:
        if self.form not in ("chemical", "paper"):
            raise ValueError(f"form must be 'chemical' or 'paper', got {self.form!r}")
        if not self.temperature_k > 0:
            raise ValueError(f"temperature_k must be > 0 K, got {self.temperature_k!r}")

    @classmethod
    def constant(cls, diffusivity_m2_s: float) -> "MaterialFunctions":
        """Constant D_eff (m²/s), e.g. for the analytic Crank check."""
        if not diffusivity_m2_s > 0:
            raise ValueError(f"diffusivity_m2_s must be > 0 m²/s, got {diffusivity_m2_s!r}")
        return cls(diffusivity_m2_s=_constant(float(diffusivity_m2_s)), form="chemical")

    def docv(self, theta: np.ndarray) -> np.ndarray:
        """dV_oc/dθ (V per unit θ)."""
        if self.docv_dtheta_v is not None:
            return np.asarray(self.docv_dtheta_v(theta), dtype=float)
        h = _DERIVATIVE_STEP
        return (np.asarray(self.ocv_v(theta + h), dtype=float) - np.asarray(self.ocv_v(theta - h), dtype=float)) / (2 * h)

    def thermodynamic_factor(self, theta: np.ndarray) -> np.ndarray:
        """θ·(F/RT)·(−dV_oc/dθ), dimensionless."""
        theta = np.clip(np.asarray(theta, dtype=float), *THETA_EVALUATION_RANGE)
        return theta * FARADAY_C_MOL / (GAS_CONSTANT_J_MOL_K * self.temperature_k) * (-self.docv(theta))

    def effective_diffusivity_m2_s(self, theta: np.ndarray) -> np.ndarray:
        """D_eff(θ) in m²/s; raises if it is not positive and finite."""
        theta = np.clip(np.asarray(theta, dtype=float), *THETA_EVALUATION_RANGE)
        if self.diffusivity_m2_s is None:
            d = np.asarray(diffusivity_oregan2022(theta, self.temperature_k), dtype=float)
        else:
            d = np.asarray(self.diffusivity_m2_s(theta), dtype=float)
        if self.form == "paper":
            d = d * self.thermodynamic_factor(theta)
        if not np.all(np.isfinite(d)) or np.any(d <= 0):
            bad = theta[~(np.isfinite(d) & (d > 0))]
            raise ValueError(f"effective diffusivity must be > 0 and finite; not at theta = {bad[:3]} (check the D / V_oc tables)")
        return d
