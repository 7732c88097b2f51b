"""COM-vs-SOC legend names: analysed particles matched to the configured ones by position."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from operascope.analysis import runfile_layout as L
from operascope.analysis.masking import Particle
from operascope.analysis.particle_identity import configured_particles, particle_names


def _run(arrays: dict[str, np.ndarray], toml: str = "") -> SimpleNamespace:
    return SimpleNamespace(_array=lambda path: arrays.get(path), config_toml=toml)


def _particle(label: int, x: float, y: float) -> Particle:
    return Particle(label, 100, (x, y), (0, 1, 0, 1))


def test_names_say_aged_with_gamma_eta_or_fresh_by_position_in_the_roi():
    arrays = {f"{L.PARTICLES}/x_um": np.array([3.5, 8.0]), f"{L.PARTICLES}/y_um": np.array([3.5, 3.6]),
              f"{L.PARTICLES}/diameter_um": np.array([3.0, 2.6]), f"{L.PARTICLES}/gamma": np.array([0.0, 0.3]),
              f"{L.PARTICLES}/eta": np.array([1.0, 0.2]), f"{L.CAMERA}/roi": np.array([10, 20, 320, 288])}
    pixel_nm = 34.7
    # listed in the opposite order, shifted by drift (a few px), in ROI pixels (offset 10, 20)
    found = [_particle(1, 8000 / pixel_nm - 10 + 3, 3600 / pixel_nm - 20 - 2),
             _particle(2, 3500 / pixel_nm - 10, 3500 / pixel_nm - 20 + 4),
             _particle(3, 5.0, 250.0)]
    assert particle_names(_run(arrays), found, pixel_nm) == [
        "particle 1: aged (γ=0.3, η=0.2)", "particle 2: fresh", "particle 3"]


def test_configured_particles_from_the_stored_toml_when_the_group_is_missing():
    toml = "[[simulation.particles]]\nx_um = 3.0\ny_um = 3.0\n\n[[simulation.particles]]\nx_um = 7.5\ny_um = 3.2\n" \
           "gamma = 0.5\neta = 1.0\n"
    parts = configured_particles(_run({}, toml))
    assert [p.describe() for p in parts] == ["fresh", "fresh"]        # η = 1 passes the full flux: not aged
    assert configured_particles(_run({}, "not toml [")) == []
