"""Each particle's true reaction state (simulators/world/particle_truth.py) against analytic values, and the
World's per-bin particle truth (only the asked particles evaluated; SOC as the cell's)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from operascope.config.loader import load_config, preset_path
from operascope.simulators.world.particle_truth import front_truth, front_truth_columns
from operascope.simulators.world.particles import UniformParticle
from operascope.simulators.world.world import World

KAPPA = 0.25
THETA0 = 0.95


class HalfReacted:
    """θ0 on the left half (x < 0), fully delithiated on the right: the unreacted region is a half-disk."""

    def theta_at(self, dx_um, dy_um):
        return np.where(np.asarray(dx_um) < 0, THETA0, 0.2)

    def mean_theta(self) -> float:
        return (THETA0 + 0.2) / 2


def test_half_disk_front_com_is_4r_over_3pi():
    diameter_um, pixel_nm = 3.0, 10.0
    truth = front_truth(HalfReacted(), diameter_um, pixel_nm, THETA0, KAPPA, 275.0 / 200.0)
    radius_nm = diameter_um * 500.0
    assert truth.com_distance_nm == pytest.approx(4 * radius_nm / (3 * math.pi), rel=0.02)
    assert truth.unreacted_fraction == pytest.approx(0.5, abs=0.01)
    assert truth.soc == pytest.approx((THETA0 - (THETA0 + 0.2) / 2) * 275.0 / 200.0)


def test_uniform_particle_is_unreacted_until_the_threshold_then_gone():
    particle = UniformParticle(THETA0)
    fresh = front_truth(particle, 2.0, 34.7, THETA0, KAPPA, 1.0)
    assert fresh.unreacted_fraction == 1.0 and fresh.com_distance_nm == pytest.approx(0.0, abs=1e-9)
    particle.advance(3600.0, 0.2)   # 1C for an hour: θ far below θ0 - 0.05 / κ
    gone = front_truth(particle, 2.0, 34.7, THETA0, KAPPA, 1.0)
    assert gone.unreacted_fraction == 0.0 and math.isnan(gone.com_distance_nm)


def test_columns_are_nan_for_particles_not_asked_for():
    state = front_truth(UniformParticle(THETA0), 2.0, 34.7, THETA0, KAPPA, 1.0)
    columns = front_truth_columns([None, state, None], 3)
    assert np.isnan(columns["particle_com_distance_nm"][0]) and columns["particle_unreacted_fraction"][1] == 1.0


def test_world_particle_truth_evaluates_only_the_field_and_reports_the_cell_soc():
    world = World(load_config(preset_path("simulated_positions"), overrides={"simulation": {"particle_model": "uniform"}}))
    truth = world.particle_truth([3, 4])
    n = len(world.particles)
    assert len(truth["particle_theta"]) == n
    assert [k for k in range(n) if np.isfinite(truth["particle_theta"][k])] == [3, 4]
    assert truth["soc"] == pytest.approx(world.truth()["soc"], abs=1e-9)
    assert world.stage_return_error_at_nm("x", 0.0) == pytest.approx(0.0)
