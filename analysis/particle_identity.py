"""Which analysed particle is which configured one: aged (rock salt γ, η) or fresh, matched by position.

The simulated sample's particles are stored in ``/entry/simulation/particles`` (and in the run's
configuration TOML, ``[[simulation.particles]]``) in sample coordinates: full-sensor image µm at stage 0.
An analysed particle (its reference-frame centroid in ROI pixels) is matched to the nearest
configured particle whose centre lies within its radius plus ``tolerance_px``; unmatched ones keep a
plain name. A particle is fresh when it has no rock-salt arc (γ = 0) or the arc passes the full flux (η = 1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

import numpy as np

from operascope.analysis import runfile_layout as layout
from operascope.analysis.masking import Particle

log = logging.getLogger(__name__)

_FIELDS = ("x_um", "y_um", "diameter_um", "gamma", "eta")


@dataclass(frozen=True)
class ConfiguredParticle:
    x_um: float
    y_um: float
    diameter_um: float
    gamma: float
    eta: float

    @property
    def is_fresh(self) -> bool:
        return self.gamma <= 0.0 or self.eta >= 1.0

    def describe(self) -> str:
        return "fresh" if self.is_fresh else f"aged (γ={self.gamma:g}, η={self.eta:g})"


def configured_particles(run: Any) -> list[ConfiguredParticle]:
    """The simulated particles of ``run`` (file group first, then the stored TOML); [] if none."""
    columns = {name: run._array(f"{layout.PARTICLES}/{name}") for name in _FIELDS}
    if all(v is not None for v in columns.values()):
        return [ConfiguredParticle(*(float(columns[n][k]) for n in _FIELDS)) for k in range(columns["x_um"].size)]
    try:
        rows = tomllib.loads(run.config_toml or "").get("simulation", {}).get("particles", [])
    except tomllib.TOMLDecodeError:
        return []
    defaults = {"diameter_um": 3.0, "gamma": 0.0, "eta": 1.0}
    out = []
    for row in rows:
        if isinstance(row, dict) and "x_um" in row and "y_um" in row:
            out.append(ConfiguredParticle(*(float(row.get(n, defaults.get(n, 0.0))) for n in _FIELDS)))
    return out


def particle_names(run: Any, particles: Sequence[Particle], pixel_nm: float, tolerance_px: float = 10.0) -> list[str]:
    """Legend names: "particle 2: aged (γ=0.3, η=0.2)", "particle 1: fresh", or "particle 3" if unmatched."""
    configured = configured_particles(run)
    roi = run._array(f"{layout.CAMERA}/roi")
    x0, y0 = (float(roi[0]), float(roi[1])) if roi is not None and roi.size >= 2 else (0.0, 0.0)
    names = []
    for p in particles:
        name = f"particle {p.label}"
        best, best_d = None, np.inf
        for c in configured:
            cx, cy = c.x_um * 1000.0 / pixel_nm - x0, c.y_um * 1000.0 / pixel_nm - y0
            d = float(np.hypot(p.centroid_xy_px[0] - cx, p.centroid_xy_px[1] - cy))
            if d < best_d and d <= 0.5 * c.diameter_um * 1000.0 / pixel_nm + tolerance_px:
                best, best_d = c, d
        names.append(f"{name}: {best.describe()}" if best is not None else name)
    return names
