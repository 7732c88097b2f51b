"""Finite-element particle model: Crank analytic check, mass balance, Eq. 14 fluxes and arcs, material forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from operascope.analysis.materials import (
    DENSITY_G_CM3,
    FARADAY_C_MOL,
    GAS_CONSTANT_J_MOL_K,
    LITHIUM_SITES_MOL_M3,
    TabulatedFunction,
)
from operascope.analysis.particle_model.fem import (
    DiffusionStepper,
    DiskFem,
    RockSaltBoundary,
    eq14_fluxes_mol_m2_s,
    facet_flux_mol_m2_s,
    facet_flux_um_s,
    mean_theta_rate_per_s,
    specific_current_a_g,
)
from operascope.analysis.particle_model.crank import crank_mean_theta, crank_theta
from operascope.analysis.particle_model.transport import MaterialFunctions

RADIUS_UM = 1.5
D_M2_S = 5e-15


def crank_errors(nrefs: int) -> tuple[float, float]:
    """Max |error| of mean and surface θ over t in [0.01, 0.5]·a²/D, relative to the final surface drop."""
    fem = DiskFem(RADIUS_UM, nrefs)
    stepper = DiffusionStepper(fem, MaterialFunctions.constant(D_M2_S), picard_tolerance=None)
    current = specific_current_a_g(1.0)
    load = fem.boundary_load(facet_flux_um_s(fem, RockSaltBoundary(), current))
    d_um2_s = D_M2_S * 1e12
    tau_s = RADIUS_UM**2 / d_um2_s
    # uniform outward flux q (µm/s) of an exact circle removing Li at the same mean rate
    q_um_s = -mean_theta_rate_per_s(current) * RADIUS_UM / 2.0
    dt_s = 1e-3 * tau_s
    mean_err, surface_err = [], []
    for k in range(1, 501):
        stepper.step(dt_s, load)
        t_s = k * dt_s
        if t_s >= 0.01 * tau_s:
            exact_surface = crank_theta(np.array([RADIUS_UM]), t_s, RADIUS_UM, d_um2_s, q_um_s, 0.95, roots=400)[0]
            surface_err.append(abs(fem.surface_mean(stepper.theta) - exact_surface))
            mean_err.append(abs(fem.mean(stepper.theta) - crank_mean_theta(t_s, RADIUS_UM, q_um_s, 0.95)))
    drop = 0.95 - crank_theta(np.array([RADIUS_UM]), 500 * dt_s, RADIUS_UM, d_um2_s, q_um_s, 0.95)[0]
    return max(mean_err) / drop, max(surface_err) / drop


def test_crank_series_itself_matches_its_limits():
    # late-time surface-to-centre difference q·a/(2D); mean falls at 2q/a
    t_s, a, d, q = 500.0, 1.0, 0.01, 1e-5
    values = crank_theta(np.array([0.0, a]), t_s, a, d, q, 0.9)
    assert values[0] - values[1] == pytest.approx(q * a / (2 * d), rel=1e-6)
    r = np.linspace(0, a, 4001)
    profile = crank_theta(r, t_s, a, d, q, 0.9)
    area_mean = np.trapezoid(profile * 2 * r, r) / a**2
    assert area_mean == pytest.approx(crank_mean_theta(t_s, a, q, 0.9), abs=1e-7)
    with pytest.raises(ValueError, match="roots"):
        crank_theta(r, t_s, a, d, q, 0.9, roots=50)


def test_against_crank_with_mesh_convergence():
    errors = {nrefs: crank_errors(nrefs) for nrefs in (3, 4, 5)}
    for nrefs in (4, 5):
        mean_err, surface_err = errors[nrefs]
        assert mean_err < 5e-3 and surface_err < 5e-3, (nrefs, errors[nrefs])
    surface = [errors[n][1] for n in (3, 4, 5)]
    assert surface[0] > surface[1] > surface[2], surface


def test_mass_balance_nonlinear_with_rock_salt():
    # Li removed equals charge passed, independent of gamma, eta, d, and with the nonlinear D
    # d<θ>/dt = −nQρ/(F N_L), Q = 200 mAh/g = 720 C/g per hour
    rate_1c = 200 * 3.6 / 3600 * DENSITY_G_CM3 * 1e6 / (FARADAY_C_MOL * LITHIUM_SITES_MOL_M3)
    assert rate_1c == pytest.approx(2.02e-4, rel=2e-3)
    assert mean_theta_rate_per_s(specific_current_a_g(1.0)) == pytest.approx(-rate_1c, rel=1e-12)
    for gamma, eta, diameter_um, c_rate in ((0.5, 0.0, 3.0, 1.0), (0.3, 0.2, 1.0, 2.0)):
        fem = DiskFem(diameter_um / 2, 3)
        stepper = DiffusionStepper(fem, MaterialFunctions(), 0.95, picard_tolerance=1e-9)
        current = specific_current_a_g(c_rate)
        load = fem.boundary_load(facet_flux_um_s(fem, RockSaltBoundary(gamma, eta, 30.0), current))
        t_s = 0.0
        for dt_s in (0.5, 2.0, 7.0, 20.0, 20.0, 60.0):
            stepper.step(dt_s, load)
            t_s += dt_s
            expected = 0.95 - rate_1c * c_rate * t_s
            assert fem.mean(stepper.theta) == pytest.approx(expected, abs=1e-10)
        assert np.ptp(stepper.theta) > 0.01  # a real gradient developed, not a uniform drop


def test_eq14_limiting_cases():
    j0, j_rsl0 = eq14_fluxes_mol_m2_s(1.0, 0.3, 0.0, 2.0)
    assert j0 == pytest.approx(4.95e-6, rel=3e-3)  # reference: 1C, d = 2 µm
    assert j_rsl0 == pytest.approx(0.3 * j0)
    # (i) fresh particle: j = nQρA/(FΓ), scales with n and d
    assert eq14_fluxes_mol_m2_s(2.0, 0.5, 0.0, 4.0)[0] == pytest.approx(4 * j0)
    # (ii) fully blocking rock salt: j0/(1-γ) > j0, and RSL flux 0
    j_blocked, j_rsl = eq14_fluxes_mol_m2_s(1.0, 0.0, 0.25, 2.0)
    assert j_blocked == pytest.approx(j0 / 0.75) and j_blocked > j0 and j_rsl == 0.0
    # Eq. 13: I_NMC Γ_NMC + I_RSL Γ_RSL = nQρA
    j_nmc, j_rsl = eq14_fluxes_mol_m2_s(1.0, 0.2, 0.4, 2.0)
    assert j_nmc * 0.6 + j_rsl * 0.4 == pytest.approx(j0)


def test_discrete_fluxes_match_eq14_and_total_is_exact():
    fem = DiskFem(1.0, 4)
    current = specific_current_a_g(1.0)
    for gamma, eta in ((0.0, 1.0), (0.25, 0.0), (0.5, 0.2)):
        boundary = RockSaltBoundary(gamma, eta, rsl_angle_deg=90.0)
        flux = facet_flux_mol_m2_s(fem, boundary, current)
        j_nmc, j_rsl = eq14_fluxes_mol_m2_s(1.0, eta, gamma, 2.0)
        rsl = fem.rock_salt_fraction_per_facet(boundary)
        assert np.max(flux) == pytest.approx(j_nmc, rel=3e-3)
        if gamma > 0:
            assert flux[rsl == 1.0] == pytest.approx(np.full((rsl == 1.0).sum(), j_rsl), rel=3e-3, abs=1e-15)
            # discrete arc length equals γ·perimeter (fractional facet coverage)
            assert np.sum(rsl * fem.boundary_facet_length_um) == pytest.approx(gamma * fem.perimeter_um, rel=1e-3)
            # arc centred at +90° = +y (image down)
            mid = fem.mesh.p[:, fem.boundary_facet_nodes].mean(axis=1)
            assert np.mean(mid[1][rsl == 1.0]) > 0.5
        total = np.sum(flux * fem.boundary_facet_length_um * 1e-6) / LITHIUM_SITES_MOL_M3  # m²/s of θ per m height
        assert total == pytest.approx(-mean_theta_rate_per_s(current) * fem.area_um2 * 1e-12, rel=1e-12)


def test_arc_wraps_through_180_degrees():
    fem = DiskFem(1.0, 3)
    a = fem.rock_salt_fraction_per_facet(RockSaltBoundary(0.3, 0.0, 180.0))
    b = fem.rock_salt_fraction_per_facet(RockSaltBoundary(0.3, 0.0, -180.0))
    assert np.allclose(a, b)
    assert np.sum(a * fem.boundary_facet_length_um) == pytest.approx(0.3 * fem.perimeter_um, rel=1e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(gamma=1.0), "gamma"),
        (dict(gamma=-0.1), "gamma"),
        (dict(eta=1.2), "eta"),
        (dict(eta=-0.01), "eta"),
    ],
)
def test_rock_salt_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RockSaltBoundary(**kwargs)


def test_material_forms_and_user_tables():
    theta = np.array([0.3, 0.6, 0.9])
    chemical = MaterialFunctions()
    paper = MaterialFunctions(form="paper")
    # at θ = 0.9 the Chen2020 slope is ≈ −0.809 V per unit θ (reference table)
    factor_at_09 = 0.9 * FARADAY_C_MOL / (GAS_CONSTANT_J_MOL_K * 295.15) * 0.809
    ratio = paper.effective_diffusivity_m2_s(theta) / chemical.effective_diffusivity_m2_s(theta)
    assert ratio == pytest.approx(paper.thermodynamic_factor(theta))
    assert ratio[2] == pytest.approx(factor_at_09, rel=2e-3)
    assert np.all((ratio > 10) & (ratio < 40))
    table = TabulatedFunction(np.array([0.0, 1.0]), np.array([1e-15, 3e-15]))
    user = MaterialFunctions(diffusivity_m2_s=table)
    assert user.effective_diffusivity_m2_s(np.array([0.5]))[0] == pytest.approx(2e-15)
    numeric = MaterialFunctions(docv_dtheta_v=None, form="paper")
    assert numeric.thermodynamic_factor(theta) == pytest.approx(paper.thermodynamic_factor(theta), rel=1e-6)
    with pytest.raises(ValueError, match="form"):
        MaterialFunctions(form="fick")
    negative = MaterialFunctions(diffusivity_m2_s=TabulatedFunction(np.array([0.0, 1.0]), np.array([-1.0, 1.0])))
    with pytest.raises(ValueError, match="diffusivity"):
        negative.effective_diffusivity_m2_s(np.array([0.1]))


def test_probe_matrix_interpolates_linear_fields_exactly():
    fem = DiskFem(1.5, 3)
    field = 0.3 + 0.1 * fem.mesh.p[0] - 0.2 * fem.mesh.p[1]
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1.4, 1.4, (2, 500))
    inside = np.hypot(x, y) < fem.inner_radius_um
    values = fem.probe_matrix(x, y) @ field
    assert values[inside] == pytest.approx(0.3 + 0.1 * x[inside] - 0.2 * y[inside], abs=1e-12)
    # outside the disk: the value on the edge along the same ray
    far = fem.probe_matrix(np.array([3.0]), np.array([0.0])) @ field
    assert far[0] == pytest.approx(0.3 + 0.1 * fem.inner_radius_um, abs=1e-6)
    assert math.isclose(fem.area_um2, math.pi * 1.5**2, rel_tol=0.01)
