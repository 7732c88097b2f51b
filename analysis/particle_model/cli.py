"""`operascope model`: run the particle model (one case or the paper's parametric sweep) and write the outputs.

Files in ``out_dir``:

* ``model.h5`` — ``/mesh/points_um`` (N×2, image axes), ``/mesh/triangles`` (M×3); per case
  ``/cases/<label>/`` with ``times_s``, ``mean_theta``, ``surface_theta``, ``soc``, ``com_distance_nm``,
  ``com_offset_um`` (dx, dy of the unreacted COM from the particle COM), ``snapshot_times_s``,
  ``snapshots_theta`` (K×N), and attributes c_rate, eta, gamma, diameter_um, rsl_angle_deg,
  stop_reason, kappa_per_theta, unreacted_theta.
* ``summary.json`` — per case the soc, com_distance_nm, mean_theta and surface_theta series.
* PNGs — θ snapshots and series per case; ``sweep_com_vs_soc.png`` for a sweep.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from operascope.analysis.json_safe import json_safe
from operascope.analysis.particle_model.fem import RockSaltBoundary, check_positive, check_rock_salt
from operascope.analysis.particle_model.figures import plot_series, plot_snapshots, plot_sweep
from operascope.analysis.particle_model.transport import MaterialFunctions
from operascope.analysis.particle_model.run import ModelResult, RunSettings, simulate_delithiation

#: Parametric study of the methods: C-rates, and (η, γ) rock-salt cases (γ = 0 is the fresh particle).
SWEEP_C_RATES = (0.25, 1.0, 2.0)
SWEEP_ETAS = (0.0, 0.2, 0.5)
SWEEP_GAMMAS = (0.0, 0.25, 0.5)

Progress = Callable[[int, int, str], None]


def sweep_cases(c_rates=SWEEP_C_RATES, etas=SWEEP_ETAS, gammas=SWEEP_GAMMAS) -> list[tuple[float, float, float]]:
    """(n, η, γ) of the sweep; η does not matter at γ = 0, so the fresh case is run once per C-rate (η = 1)."""
    cases = []
    for n in c_rates:
        for gamma in gammas:
            for eta in (1.0,) if gamma == 0 else etas:
                cases.append((n, eta, gamma))
    return cases


def _label(c_rate: float, eta: float, gamma: float) -> str:
    return f"n{c_rate:g}_eta{eta:g}_gamma{gamma:g}"


def _write_case(group: h5py.Group, result: ModelResult) -> None:
    for name, values in (
        ("times_s", result.times_s),
        ("mean_theta", result.mean_theta),
        ("surface_theta", result.surface_theta),
        ("soc", result.soc),
        ("com_distance_nm", result.com_distance_nm),
        ("com_offset_um", np.asarray(result.com_offset_um)),
        ("snapshot_times_s", result.snapshot_times_s),
    ):
        group.create_dataset(name, data=np.asarray(values, dtype=float))
    group.create_dataset("snapshots_theta", data=np.asarray(result.snapshots), compression="gzip")
    group.attrs.update(
        c_rate=result.c_rate,
        eta=result.boundary.eta,
        gamma=result.boundary.gamma,
        rsl_angle_deg=result.boundary.rsl_angle_deg,
        diameter_um=result.diameter_um,
        stop_reason=result.stop_reason,
        kappa_per_theta=result.settings.kappa_per_theta,
        unreacted_theta=result.settings.unreacted_theta,
    )


def _case_summary(label: str, result: ModelResult) -> dict:
    return {
        "label": label,
        "c_rate": result.c_rate,
        "eta": result.boundary.eta,
        "gamma": result.boundary.gamma,
        "diameter_um": result.diameter_um,
        "stop_reason": result.stop_reason,
        "duration_s": result.times_s[-1],
        "max_com_distance_nm": float(np.nanmax(result.com_distance_nm)) if np.any(np.isfinite(result.com_distance_nm)) else None,
        "soc": result.soc,
        "com_distance_nm": result.com_distance_nm,
        "mean_theta": result.mean_theta,
        "surface_theta": result.surface_theta,
    }


#: Largest particle and C-rate the model accepts (a single-crystal particle; a 100C charge).
MAX_DIAMETER_UM = 50.0
MAX_C_RATE = 100.0


def run_model(
    c_rate: float = 1.0,
    eta: float = 1.0,
    gamma: float = 0.0,
    diameter_um: float = 3.0,
    out_dir: str | Path = "model_out",
    sweep: bool = False,
    progress: Progress | None = None,
    settings: RunSettings | None = None,
    materials: MaterialFunctions | None = None,
    sweep_grid: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]] | None = None,
    rsl_angle_deg: float = 0.0,
) -> dict:
    """Run one delithiation (or the sweep over n, η, γ, ignoring c_rate/eta/gamma) and write the files.

    Returns {"out_dir", "files", "cases"}; each case has label, c_rate, eta, gamma, stop_reason,
    duration_s, max_com_distance_nm and the soc / com_distance_nm / mean_theta / surface_theta series.
    ``progress(done, total, what)`` is called after each case (sweep) or each ~1 % of a single run.
    ``sweep_grid`` = (c_rates, etas, gammas) replaces the default sweep. ``rsl_angle_deg``: direction of the
    rock-salt arc's centre (image coordinates, from +x towards +y), for every case.
    """
    check_positive("c_rate", c_rate, "(C)")
    check_positive("diameter_um", diameter_um, "µm")
    if diameter_um > MAX_DIAMETER_UM or c_rate > MAX_C_RATE:
        raise ValueError(f"diameter_um must be <= {MAX_DIAMETER_UM:g} µm and c_rate <= {MAX_C_RATE:g} C "
                         f"(single particles, operando rates); got {diameter_um:g} µm, {c_rate:g} C")
    check_rock_salt(gamma, eta)
    if not math.isfinite(rsl_angle_deg):
        raise ValueError(f"rsl_angle_deg must be a finite angle in degrees, got {rsl_angle_deg!r}")
    settings = settings or RunSettings()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cases = sweep_cases(*(sweep_grid or ())) if sweep else [(c_rate, eta, gamma)]

    results: list[tuple[str, ModelResult]] = []
    for index, (n, case_eta, case_gamma) in enumerate(cases):
        label = _label(n, case_eta, case_gamma)
        run_progress = None
        if progress is not None and not sweep:
            def run_progress(fraction: float, _label: str = label) -> None:
                progress(int(round(100 * fraction)), 100, _label)
        result = simulate_delithiation(n, RockSaltBoundary(case_gamma, case_eta, float(rsl_angle_deg)), diameter_um, materials, settings, run_progress)
        results.append((label, result))
        if progress is not None and sweep:
            progress(index + 1, len(cases), label)

    files: dict[str, object] = {"model_h5": out / "model.h5", "summary_json": out / "summary.json", "png": []}
    with h5py.File(out / "model.h5", "w") as h5:
        first = results[0][1]
        h5.create_dataset("mesh/points_um", data=first.mesh_points_um)
        h5.create_dataset("mesh/triangles", data=first.mesh_triangles)
        h5.attrs.update(sweep=sweep, diameter_um=diameter_um, **{f"settings_{k}": ("none" if v is None else v) for k, v in asdict(settings).items()})
        for label, result in results:
            _write_case(h5.create_group(f"cases/{label}"), result)
    for label, result in results:
        files["png"].append(plot_snapshots(result, out / f"snapshots_{label}.png"))
        files["png"].append(plot_series(result, out / f"series_{label}.png"))
    if sweep:
        files["png"].append(plot_sweep([r for _, r in results], out / "sweep_com_vs_soc.png"))
    summary = {
        "sweep": sweep,
        "diameter_um": diameter_um,
        "settings": asdict(settings),
        "unreacted_theta": settings.unreacted_theta,
        "cases": [_case_summary(label, result) for label, result in results],
    }
    (out / "summary.json").write_text(json.dumps(json_safe(summary), indent=1))
    return {"out_dir": out, "files": files, "cases": summary["cases"]}
