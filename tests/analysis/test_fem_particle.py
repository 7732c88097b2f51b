"""FemParticle: the simulator seam driven by the finite-element model."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.simulators.world.fem_particle import FemParticle
from operascope.simulators.world.particles import ParticleLithiation, UniformParticle, theta_rate_per_s

PIXEL_UM = 0.0347


def pixel_grid(diameter_um: float) -> tuple[np.ndarray, np.ndarray]:
    half = int(np.ceil(diameter_um / 2 / PIXEL_UM)) + 2
    offsets = np.arange(-half, half + 1) * PIXEL_UM
    return np.meshgrid(offsets, offsets)


def test_charge_lowers_mean_theta_by_the_passed_charge():
    particle: ParticleLithiation = FemParticle(3.0, gamma=0.4, eta=0.1, rsl_angle_deg=30.0)
    reference = UniformParticle(0.95)
    for dt_s, current in [(1.0, 0.2)] * 200 + [(13.7, 0.4)] * 10 + [(0.3, 0.05)] * 7:
        particle.advance(dt_s, current)
        reference.advance(dt_s, current)
        assert particle.mean_theta() == pytest.approx(reference.mean_theta(), abs=1e-11)
    expected = 0.95 + theta_rate_per_s(0.2) * 200 + theta_rate_per_s(0.4) * 137 + theta_rate_per_s(0.05) * 2.1
    assert particle.mean_theta() == pytest.approx(expected, abs=1e-11)


def test_blocked_side_stays_lithiated_in_image_coordinates():
    particle = FemParticle(3.0, gamma=0.5, eta=0.0, rsl_angle_deg=90.0)  # rock salt downwards (+y)
    for _ in range(300):
        particle.advance(1.0, 0.4)  # 2C
    dx, dy = pixel_grid(3.0)
    theta = particle.theta_at(dx, dy)
    assert theta.shape == dx.shape
    inside = np.hypot(dx, dy) < 1.4
    below, above = inside & (dy > 0.7), inside & (dy < -0.7)
    assert theta[below].mean() - theta[above].mean() > 0.1
    # left/right mirror symmetric about the arc centre line
    assert particle.theta_at(np.array([1.0]), np.array([0.3]))[0] == pytest.approx(
        particle.theta_at(np.array([-1.0]), np.array([0.3]))[0], abs=2e-3
    )
    # the pixel-grid average follows the mean θ
    assert theta[np.hypot(dx, dy) < 1.5].mean() == pytest.approx(particle.mean_theta(), abs=0.01)


def test_fresh_particle_is_radially_symmetric():
    particle = FemParticle(2.0)
    for _ in range(100):
        particle.advance(2.0, 0.4)
    ring = particle.theta_at(0.9 * np.cos(np.linspace(0, 2 * np.pi, 12)), 0.9 * np.sin(np.linspace(0, 2 * np.pi, 12)))
    centre = particle.theta_at(np.array([0.0]), np.array([0.0]))[0]
    assert np.ptp(ring) < 2e-3
    assert centre - ring.mean() > 0.01


def test_charge_rest_discharge_and_probe_cache():
    particle = FemParticle(2.0, gamma=0.3, eta=0.2, rsl_angle_deg=-45.0)
    dx, dy = pixel_grid(2.0)
    first = particle.theta_at(dx, dy)
    assert np.all(first == pytest.approx(0.95))
    for _ in range(600):
        particle.advance(1.0, 0.2)
    charged_spread = np.ptp(particle.theta_nodes)
    charged = particle.theta_at(dx.copy(), dy.copy())  # equal grid, new arrays: cached probe reused
    assert charged.mean() < first.mean() - 0.05
    assert particle.probe_matrices_built == 1
    particle.theta_at(dx[:5], dy[:5])
    assert particle.probe_matrices_built == 2
    for _ in range(20):
        particle.advance(30.0, 0.0)  # rest: gradients relax, mean unchanged
    assert np.ptp(particle.theta_nodes) < 0.2 * charged_spread
    assert particle.mean_theta() == pytest.approx(0.95 + theta_rate_per_s(0.2) * 600, abs=1e-11)
    for _ in range(600):
        particle.advance(1.0, -0.2)  # discharge back
    assert particle.mean_theta() == pytest.approx(0.95, abs=1e-11)
    # rest with a uniform field costs no solve
    fresh = FemParticle(2.0)
    fresh.advance(100.0, 0.0)
    assert fresh.linear_solves == 0 and fresh.mean_theta() == pytest.approx(0.95, abs=1e-14)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(diameter_um=-1.0), "diameter_um"),
        (dict(diameter_um=3.0, gamma=1.0), "gamma"),
        (dict(diameter_um=3.0, eta=2.0), "eta"),
        (dict(diameter_um=3.0, initial_theta=1.5), "initial_theta"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FemParticle(**kwargs)


def test_bad_advance():
    particle = FemParticle(2.0)
    with pytest.raises(ValueError, match="dt_s"):
        particle.advance(-1.0, 0.1)
    with pytest.raises(ValueError, match="specific_current_a_g"):
        particle.advance(1.0, float("nan"))
