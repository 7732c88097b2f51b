"""Aged / fresh labels for the particles the window found, from the simulated sample's configuration.

Only the simulator knows what a particle is: ``config.simulation.particles`` gives each particle's sample
position (µm; sample coordinates = full-sensor image coordinates at stage 0) and its rock-salt layer
(γ = fraction of the perimeter covered, η = its flux ratio). A particle is *fresh* without a rock-salt layer
(γ = 0) and *aged* with one (γ > 0). A particle found in the live mask is matched to the configured particle
whose image position — sample position minus the stage position, in pixels of the ROI — is nearest its
centroid, within the particle's radius plus :data:`MATCH_SLACK_PX`. On a real rig nothing is known: no label.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

from operascope.config.schema import ParticleConfig, RigConfig

log = logging.getLogger(__name__)

#: allowed distance beyond the particle radius (drift, stage error, mask shape), px
MATCH_SLACK_PX = 4.0


@dataclass(frozen=True)
class SampleParticle:
    """A configured particle matched to a found one."""

    index: int          # in config.simulation.particles
    ageing: str         # "fresh" | "aged"
    gamma: float
    eta: float

    def describe(self) -> str:
        """e.g. 'aged (γ 0.30, η 0.20)' or 'fresh'."""
        if self.ageing == "fresh":
            return "fresh"
        return f"aged (γ {self.gamma:.2f}, η {self.eta:.2f})"


def ageing_of(particle: ParticleConfig) -> str:
    """'fresh' without a rock-salt layer (γ = 0), else 'aged'."""
    return "fresh" if particle.gamma <= 0.0 else "aged"


def sample_is_known(config: RigConfig) -> bool:
    """True when the camera and the stage are the simulator's: then the sample config is the sample imaged."""
    return config.devices.camera.driver == "simulated" and config.devices.stage.driver == "simulated"


def match_sample_particles(config: RigConfig, centroids_xy_px: Sequence[tuple[float, float]],
                           stage_nm: dict[str, float] | None) -> list[SampleParticle | None]:
    """For each found particle centroid (ROI px), the configured particle it is (None = not known)."""
    if not sample_is_known(config) or stage_nm is None:
        return [None] * len(centroids_xy_px)
    pixel_nm = float(config.acquisition.pixel_size_nm)
    roi = config.acquisition.roi
    x0_px, y0_px = (roi[0], roi[1]) if roi is not None else (0, 0)
    stage_x_nm, stage_y_nm = float(stage_nm.get("x", 0.0)), float(stage_nm.get("y", 0.0))
    images = []
    for index, particle in enumerate(config.simulation.particles):
        col = (particle.x_um * 1000.0 - stage_x_nm) / pixel_nm - x0_px
        row = (particle.y_um * 1000.0 - stage_y_nm) / pixel_nm - y0_px
        reach = particle.diameter_um * 500.0 / pixel_nm + MATCH_SLACK_PX
        images.append((index, particle, col, row, reach))
    matches: list[SampleParticle | None] = []
    for cx, cy in centroids_xy_px:
        best: SampleParticle | None = None
        best_distance = math.inf
        for index, particle, col, row, reach in images:
            distance = math.hypot(cx - col, cy - row)
            if distance <= reach and distance < best_distance:
                best_distance = distance
                best = SampleParticle(index, ageing_of(particle), particle.gamma, particle.eta)
        matches.append(best)
    log.debug("sample particles matched: %s", matches)
    return matches
