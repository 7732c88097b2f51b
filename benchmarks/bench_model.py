"""Benchmark of the finite-element particle model (not a test; prints tables).

1. Wall time of a full 1C delithiation on the default mesh (fresh and aged particle).
2. Per-step cost vs mesh size: stiffness assembly (ours vs skfem BilinearForm, measured here as the
   reference), a Picard step (assemble + LU per iteration) and a lagged step with a cached LU; and the
   Crank error at that mesh level.
3. FemParticle step cost for the simulator vs UniformParticle (reference).

Run: .venv/bin/python benchmarks/bench_model.py [--sweep]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from skfem import BilinearForm
from skfem.helpers import dot, grad

from operascope.analysis.particle_model.fem import DiffusionStepper, DiskFem, RockSaltBoundary, facet_flux_um_s, mean_theta_rate_per_s, specific_current_a_g
from operascope.analysis.particle_model.crank import crank_theta
from operascope.analysis.particle_model.transport import MaterialFunctions
from operascope.analysis.particle_model.run import RunSettings, simulate_delithiation
from operascope.simulators.world.fem_particle import FemParticle
from operascope.simulators.world.particles import UniformParticle


def _best_of(function, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def full_runs() -> None:
    print("== full 1C delithiation, d = 3 µm, default mesh (nrefs 4), O'Regan D, stop at 4.3 V / θ = 0.25")
    print(f"{'case':>22} {'wall s':>8} {'steps':>6} {'solves':>7} {'stop':>18} {'SOC end':>8} {'COM@SOC0.2 nm':>14}")
    for label, boundary in (("fresh", RockSaltBoundary()), ("aged γ=0.5 η=0", RockSaltBoundary(0.5, 0.0))):
        start = time.perf_counter()
        result = simulate_delithiation(1.0, boundary, 3.0)
        wall = time.perf_counter() - start
        com = float(np.interp(0.2, result.soc, np.nan_to_num(result.com_distance_nm)))
        print(f"{label:>22} {wall:8.2f} {len(result.times_s) - 1:6d} {result.linear_solves:7d} {result.stop_reason:>18} {result.soc[-1]:8.3f} {com:14.1f}")


def nonlinear_convergence() -> None:
    print("\n== accuracy of the nonlinear run vs mesh and step tolerance (2C, d = 3 µm, γ = 0.5, η = 0, to SOC 0.5)")
    print(f"{'nrefs':>5} {'tol':>7} {'steps':>6} {'wall s':>7} {'surf θ @SOC0.3':>15} {'COM @SOC0.2 nm':>15} {'Δsurf':>9} {'ΔCOM nm':>8}")
    target = 0.95 - 0.5 * 0.7272
    rows = []
    for nrefs, tolerance in ((3, 1e-4), (4, 1e-4), (4, 1e-5), (5, 1e-4), (5, 1e-5)):
        settings = RunSettings(nrefs=nrefs, local_error_tolerance=tolerance, target_mean_theta=target, com_pixel_nm=10.0)
        start = time.perf_counter()
        result = simulate_delithiation(2.0, RockSaltBoundary(0.5, 0.0), 3.0, settings=settings)
        wall = time.perf_counter() - start
        surface = float(np.interp(0.3, result.soc, result.surface_theta))
        com = float(np.interp(0.2, result.soc, np.nan_to_num(result.com_distance_nm)))
        rows.append((nrefs, tolerance, len(result.times_s) - 1, wall, surface, com))
    reference = rows[-1]
    for nrefs, tolerance, steps, wall, surface, com in rows:
        print(f"{nrefs:5d} {tolerance:7.0e} {steps:6d} {wall:7.2f} {surface:15.5f} {com:15.1f} "
              f"{surface - reference[4]:9.1e} {com - reference[5]:8.1f}")
    print("(Δ relative to the finest row)")


def crank_error(fem: DiskFem, radius_um: float, d_m2_s: float) -> float:
    stepper = DiffusionStepper(fem, MaterialFunctions.constant(d_m2_s), picard_tolerance=None)
    current = specific_current_a_g(1.0)
    load = fem.boundary_load(facet_flux_um_s(fem, RockSaltBoundary(), current))
    d_um2_s = d_m2_s * 1e12
    tau = radius_um**2 / d_um2_s
    q = -mean_theta_rate_per_s(current) * radius_um / 2
    dt = 1e-3 * tau
    worst = 0.0
    for k in range(1, 501):
        stepper.step(dt, load)
        if k >= 10:
            exact = crank_theta(np.array([radius_um]), k * dt, radius_um, d_um2_s, q, 0.95)[0]
            worst = max(worst, abs(fem.surface_mean(stepper.theta) - exact))
    drop = 0.95 - crank_theta(np.array([radius_um]), 500 * dt, radius_um, d_um2_s, q, 0.95)[0]
    return worst / drop


def per_step_table() -> None:
    print("\n== per-step cost vs mesh size (radius 1.5 µm, O'Regan D, 1C, dt = 2 s)")
    print(f"{'nrefs':>5} {'nodes':>6} {'K ours ms':>10} {'K skfem ms':>11} {'ratio':>6} {'Picard step ms':>15} {'iters':>5} "
          f"{'lagged+LU ms':>13} {'Crank surf err':>15}")
    materials = MaterialFunctions()
    for nrefs in (3, 4, 5, 6):
        fem = DiskFem(1.5, nrefs)
        theta = np.full(fem.n_nodes, 0.8) + 0.01 * fem.mesh.p[0]
        d_elem = materials.effective_diffusivity_m2_s(fem.element_theta(theta)) * 1e12
        ours = _best_of(lambda: fem.stiffness(d_elem))
        theta_field = fem.basis.interpolate(theta)
        form = BilinearForm(lambda u, v, w: materials.effective_diffusivity_m2_s(w["th"]) * 1e12 * dot(grad(u), grad(v)))
        reference = _best_of(lambda: form.assemble(fem.basis, th=theta_field), repeats=3)
        load = fem.boundary_load(facet_flux_um_s(fem, RockSaltBoundary(0.5, 0.0), specific_current_a_g(1.0)))
        picard = DiffusionStepper(fem, materials, 0.95, picard_tolerance=1e-8)
        picard.step(2.0, load)
        solves_before = picard.solves
        steps = 5
        start = time.perf_counter()
        for _ in range(steps):
            picard.step(2.0, load)
        picard_ms = (time.perf_counter() - start) / steps * 1e3
        iterations = (picard.solves - solves_before) / steps
        lagged = DiffusionStepper(fem, materials, 0.95, picard_tolerance=None, refactor_relative_d=0.02)
        lagged.step(2.0, load)
        steps = 50
        start = time.perf_counter()
        for _ in range(steps):
            lagged.step(2.0, load)
        lagged_ms = (time.perf_counter() - start) / steps * 1e3
        error = crank_error(fem, 1.5, 5e-15) if nrefs <= 5 else float("nan")
        print(f"{nrefs:5d} {fem.n_nodes:6d} {ours * 1e3:10.3f} {reference * 1e3:11.3f} {reference / ours:6.1f} "
              f"{picard_ms:15.2f} {iterations:5.1f} {lagged_ms:13.3f} {error:15.2e}")


def simulator_particle() -> None:
    print("\n== simulator particle: 3600 advance(1 s) calls at 1C, d = 3 µm, γ = 0.5, η = 0.1")
    fem_particle = FemParticle(3.0, gamma=0.5, eta=0.1, rsl_angle_deg=30.0)
    uniform = UniformParticle(0.95)
    current = specific_current_a_g(1.0)
    start = time.perf_counter()
    for _ in range(3600):
        fem_particle.advance(1.0, current * 0.9)
    fem_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(3600):
        uniform.advance(1.0, current * 0.9)
    uniform_s = time.perf_counter() - start
    offsets = np.arange(-45, 46) * 0.0347
    dx, dy = np.meshgrid(offsets, offsets)
    first = _best_of(lambda: FemParticle(3.0).theta_at(dx, dy), repeats=1)
    fem_particle.theta_at(dx, dy)
    cached = _best_of(lambda: fem_particle.theta_at(dx, dy))
    print(f"FemParticle {fem_s:.3f} s ({fem_s / 3600 * 1e3:.3f} ms/step, {fem_particle.linear_solves} solves); "
          f"UniformParticle {uniform_s:.4f} s; ratio {fem_s / uniform_s:.0f}x")
    print(f"theta_at on a 91x91 grid: first call (incl. mesh + probe matrix) {first * 1e3:.1f} ms, cached {cached * 1e3:.2f} ms")
    print(f"mean θ {fem_particle.mean_theta():.4f} vs uniform {uniform.mean_theta():.4f} (must agree)")


def sweep() -> None:
    from tempfile import TemporaryDirectory

    from operascope.analysis.particle_model.cli import run_model

    with TemporaryDirectory() as folder:
        start = time.perf_counter()
        out = run_model(out_dir=folder, sweep=True)
        wall = time.perf_counter() - start
    print(f"\n== parametric sweep ({len(out['cases'])} cases, nrefs {RunSettings().nrefs}): {wall:.1f} s")
    for case in out["cases"]:
        com = float(np.interp(0.2, case["soc"], np.nan_to_num(np.asarray(case["com_distance_nm"], dtype=float))))
        print(f"  {case['label']:>22}: COM distance at SOC 0.2 = {com:7.1f} nm, end SOC {case['soc'][-1]:.3f} ({case['stop_reason']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="also time the full parametric sweep (a few minutes)")
    args = parser.parse_args()
    full_runs()
    nonlinear_convergence()
    per_step_table()
    simulator_particle()
    if args.sweep:
        sweep()


if __name__ == "__main__":
    main()
