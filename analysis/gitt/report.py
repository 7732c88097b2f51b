"""`operascope gitt`: D(x) from a GITT run file or CSV, by Eq. 1 and by a diffusion-model fit.

Writes gitt.csv (one row per pulse), gitt_D_vs_x.png (log axis) and gitt_summary.json (notes on
inputs, geometry and the bias of the equation path relative to the model fit).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from operascope.analysis import figures
from operascope.analysis.errors import RunFileError
from operascope.analysis.gitt.pulses import (
    GittPulse,
    analyse_gitt,
    cumulative_charge_c,
    diffusion_length_cm,
    initial_lithium_content,
    lithium_content,
)
from operascope.analysis.gitt.model_fit import fit_pulse_model, ocv_curvature_v, sphere_modes
from operascope.analysis.materials import FARADAY_C_MOL
from operascope.analysis.json_safe import json_safe
from operascope.analysis.runfile import open_run

ProgressCallback = Callable[[int, int, str], None]
#: Flags that make an Eq. 1 value doubtful (drawn hollow).
EQUATION_FLAGS = ("tau_not_small_vs_L2_over_D", "sqrt_t_fit_r2_below_0.99", "rest_not_relaxed")
#: A relaxation (Kang & Chueh) fit below this R² is flagged and drawn hollow.
RELAXATION_MIN_R2 = 0.95
#: Li diffusivities in layered oxides lie within this range (cm²/s); outside: flagged, drawn hollow.
RELAXATION_D_RANGE_CM2_S = (1e-15, 1e-7)
DEFAULT_CSV_MASS_MG = 1.0
CSV_COLUMNS = ("time_s", "voltage_V", "current_A")


def read_gitt_csv(path: Path) -> dict[str, np.ndarray]:
    """Columns time_s, voltage_V, current_A (and optional step; names case-insensitive) of a CSV file."""
    try:
        with open(path, newline="") as fh:
            sample = fh.read(4096)
            fh.seek(0)
            if not sample.strip():
                raise RunFileError(f"{path}: CSV file is empty; expected columns {', '.join(CSV_COLUMNS)} [, step]")
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or []) if h is not None]
            lower = {h.lower(): h for h in header}  # column names match case-insensitively
            missing = [c for c in CSV_COLUMNS if c.lower() not in lower]
            if missing:
                raise RunFileError(f"{path}: CSV lacks column(s) {', '.join(missing)}; found {', '.join(header) or 'none'}")
            rows = [{(k or "").strip().lower(): v for k, v in row.items()} for row in reader]
    except UnicodeDecodeError as exc:
        raise RunFileError(f"{path}: not a text CSV file ({exc})") from exc
    if len(rows) < 3:
        raise RunFileError(f"{path}: CSV has {len(rows)} data rows; a GITT needs many")
    columns = list(CSV_COLUMNS) + (["step"] if "step" in rows[0] else [])
    out: dict[str, np.ndarray] = {}
    for name in columns:
        try:
            out[name] = np.array([float(r[name.lower()]) for r in rows])
        except (TypeError, ValueError) as exc:
            raise RunFileError(f"{path}: column {name} holds a non-numeric value ({exc})") from exc
    return out


def _load(path: Path, active_mass_mg: float | None, notes: list[str]) -> tuple[dict[str, np.ndarray], float]:
    """Time, voltage, current (and step) plus the active mass (mg) from a run file or CSV."""
    if not path.exists():
        raise RunFileError(f"{path}: file does not exist")
    if path.suffix.lower() == ".csv":
        data = read_gitt_csv(path)
        if active_mass_mg is None:
            active_mass_mg = DEFAULT_CSV_MASS_MG
            notes.append(f"active mass not given: assumed {DEFAULT_CSV_MASS_MG} mg (affects only x and capacity, "
                         "not D)")
        return data, active_mass_mg
    with open_run(path) as run:
        ec = run.require_echem()
        data = {"time_s": ec.time_s, "voltage_V": ec.voltage_v, "current_A": ec.current_a}
        if ec.step is not None:
            data["step"] = ec.step
        if active_mass_mg is None:
            if run.active_mass_mg and run.active_mass_mg > 0:
                active_mass_mg = run.active_mass_mg
                notes.append(f"active mass {active_mass_mg} mg from the run file")
            else:
                active_mass_mg = DEFAULT_CSV_MASS_MG
                notes.append(f"no active mass in the run file: assumed {DEFAULT_CSV_MASS_MG} mg (affects only x)")
    return data, active_mass_mg


def gitt_from_file(
    path: str | Path,
    out_dir: str | Path,
    active_mass_mg: float | None = None,
    bet_m2_g: float = 0.6,
    molar_mass_g_mol: float = 97.46,
    molar_volume_cm3_mol: float = 20.39,
    progress: ProgressCallback | None = None,
    x_start: float | None = None,
) -> list[dict[str, Any]]:
    """Analyse every GITT pulse in ``path`` (run file or CSV) and write the report to ``out_dir``.

    Returns one dict per pulse (the rows of gitt.csv). D by Eq. 1 ("equation") and by the
    spherical-diffusion model fit ("model"), both in cm²/s, with R = 3 V/S from the BET area.
    ``x_start`` (Li per formula unit at the start) defaults to the Chen2020 OCV inverse of the
    first voltage sample.
    """
    p = Path(path)
    if active_mass_mg is not None and not (active_mass_mg > 0):
        raise ValueError(f"active_mass_mg must be > 0 mg, got {active_mass_mg}")
    if x_start is not None and not (0 < x_start <= 1.2):
        raise ValueError(f"x_start (Li per formula unit) must be in (0, 1.2], got {x_start}")
    length_cm = diffusion_length_cm(bet_m2_g, molar_mass_g_mol, molar_volume_cm3_mol)
    notes: list[str] = []
    data, mass_mg = _load(p, active_mass_mg, notes)
    t, v, i = data["time_s"], data["voltage_V"], data["current_A"]
    good = np.isfinite(t) & np.isfinite(v) & np.isfinite(i)
    if good.sum() < 3:
        raise RunFileError(f"{p}: fewer than 3 finite (time, voltage, current) samples")
    t, v, i = t[good], v[good], i[good]
    step = data["step"][good] if "step" in data else None
    if np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        t, v, i = t[order], v[order], i[order]
        step = step[order] if step is not None else None
        notes.append("samples were not time-ordered; sorted by time")
    pulses = analyse_gitt(t, v, i, step, bet_m2_g, molar_mass_g_mol, molar_volume_cm3_mol)
    if not pulses:
        on = np.abs(i) > 0.5 * np.abs(i).max() if np.abs(i).max() > 0 else np.zeros(i.size, bool)
        n_on = int(np.count_nonzero(np.diff(on.astype(int)) == 1) + int(on[0]))
        detail = f"{n_on} current step(s) in {t[-1] - t[0]:.0f} s of data"
        if on[0]:
            detail += "; the data start during a pulse, so its rest before is missing"
        raise RunFileError(f"{p}: no GITT pulse with a rest before and after it was found ({detail})")
    if x_start is not None:
        notes.append(f"x at start {x_start:.4f} as given")
    else:
        try:
            x_start = initial_lithium_content(float(v[0]))
            notes.append(f"x at start {x_start:.4f} from the Chen2020 OCV inverse of {v[0]:.4f} V")
        except ValueError:
            x_start = 1.0
            notes.append("first voltage outside the OCV table: x at start assumed 1.0")
    mass_g = mass_mg * 1e-3
    radius_m = 3.0 * length_cm * 1e-2
    modes = sphere_modes()
    charge = cumulative_charge_c(t, i)
    rows = []
    # relaxed states between pulses (occupancy from Coulomb counting) give the OCV curvature per pulse
    moles = mass_g / molar_mass_g_mol
    occupancy = [x_start - charge[pulses[0].segment.pulse[0]] / (FARADAY_C_MOL * moles)]
    relaxed = [pulses[0].e0_v]
    for pulse in pulses:
        occupancy.append(x_start - charge[pulse.segment.rest_after[0]] / (FARADAY_C_MOL * moles))
        relaxed.append(pulse.e0_v + pulse.delta_e_s_v)
    for k, pulse in enumerate(pulses):
        fit = fit_pulse_model(pulse.segment, t, v, i, radius_m, mass_g * bet_m2_g, molar_volume_cm3_mol * 1e-6,
                              modes, ocv_curvature_v=ocv_curvature_v(np.array(occupancy), np.array(relaxed), k))
        rows.append(_row(pulse, fit, charge, t, mass_g, molar_mass_g_mol, x_start, radius_m))
        if progress is not None:
            progress(k + 1, len(pulses), "GITT pulses")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "gitt.csv", rows)
    x = np.array([r["x"] for r in rows])
    flags = [r["flags"].split(";") for r in rows]
    figures.plot_gitt_diffusivity(out / "gitt_D_vs_x.png", x,
                                  {"Eq. 1 (Weppner-Huggins)": np.array([r["D_equation_cm2_s"] for r in rows]),
                                   "diffusion-model fit": np.array([r["D_model_cm2_s"] for r in rows]),
                                   "relaxation (Kang & Chueh)": np.array([r["D_relaxation_cm2_s"] for r in rows])},
                                  "x in Li$_x$MO$_2$ (Coulomb counting)",
                                  flagged={"Eq. 1 (Weppner-Huggins)": np.array([any(f in EQUATION_FLAGS for f in fl) for fl in flags]),
                                           "diffusion-model fit": np.array(["model_D_at_search_bound" in fl for fl in flags]),
                                           "relaxation (Kang & Chueh)": np.array([any(f.startswith("relaxation_") for f in fl)
                                                                                   for fl in flags])})
    ratios = np.array([r["equation_over_model"] for r in rows], dtype=float)
    finite = ratios[np.isfinite(ratios)]
    relax = np.array([r["D_relaxation_cm2_s"] / r["D_model_cm2_s"] if r["D_model_cm2_s"] > 0 else np.nan
                      for r in rows], dtype=float)
    relax = relax[np.isfinite(relax)]
    summary = {
        "input": str(p),
        "n_pulses": len(rows),
        "active_mass_mg": mass_mg,
        "bet_m2_g": bet_m2_g, "molar_mass_g_mol": molar_mass_g_mol, "molar_volume_cm3_mol": molar_volume_cm3_mol,
        "diffusion_length_um": length_cm * 1e4,
        "model_sphere_radius_um": radius_m * 1e6,
        "equation_bias": {
            "median_equation_over_model": float(np.median(finite)) if finite.size else None,
            "range": [float(finite.min()), float(finite.max())] if finite.size else None,
            "explanation": "Eq. 1 assumes semi-infinite planar diffusion (tau << L^2/D); sphere curvature and "
                           "finite size bias it low for realistic pulses. The model fit is preferred.",
        },
        "relaxation_bias": {
            "median_relaxation_over_model": float(np.median(relax)) if relax.size else None,
            "explanation": "Kang & Chueh relaxation fit on the first tau of each rest; also semi-infinite, so "
                           "biased when tau D / R^2 is not small.",
        },
        "n_pulses_flagged_tau_not_small": sum("tau_not_small_vs_L2_over_D" in r["flags"] for r in rows),
        "notes": notes,
    }
    with open(out / "gitt_summary.json", "w") as fh:
        json.dump(json_safe(summary), fh, indent=2)
    return rows


def _row(pulse: GittPulse, fit: Any, charge: np.ndarray, t: np.ndarray, mass_g: float, molar_mass: float,
         x_start: float, radius_m: float) -> dict[str, Any]:
    flags = list(pulse.flags)
    d_eq, d_model = pulse.d_equation_cm2_s, fit.d_cm2_s
    ratio = d_eq / d_model if d_model > 0 and math.isfinite(d_eq) else float("nan")
    if fit.at_bound:
        flags.append("model_D_at_search_bound")
    if math.isfinite(ratio) and (ratio > 2 or ratio < 0.5):
        flags.append("equation_model_disagree_2x")
    d_relax = pulse.d_relaxation_cm2_s
    if math.isfinite(d_relax) and d_relax > 0 and math.isfinite(d_eq) and not 0.5 <= d_eq / d_relax <= 2:
        flags.append("equation_relaxation_disagree_2x")
    r2_relax = pulse.relaxation_fit_r2
    if not (math.isfinite(r2_relax) and r2_relax >= RELAXATION_MIN_R2):
        flags.append(f"relaxation_fit_r2_below_{RELAXATION_MIN_R2}")
    if not (math.isfinite(d_relax) and RELAXATION_D_RANGE_CM2_S[0] <= d_relax <= RELAXATION_D_RANGE_CM2_S[1]):
        flags.append("relaxation_D_outside_physical_range")
    tau_d_ratio = pulse.duration_s * fit.d_m2_s / radius_m**2
    if tau_d_ratio > 0.04:
        flags.append("model_tauD_over_R2_above_0.04")
    return {
        "pulse": pulse.index,
        "start_s": pulse.start_s,
        "duration_s": pulse.duration_s,
        "current_A": pulse.current_a,
        "x": float(lithium_content(pulse.charge_mid_c, mass_g, molar_mass, x_start)),
        "capacity_mAh_g": pulse.charge_mid_c / 3.6 / mass_g,
        "D_equation_cm2_s": d_eq,
        "D_model_cm2_s": d_model,
        "D_relaxation_cm2_s": pulse.d_relaxation_cm2_s,
        "equation_over_model": ratio,
        "dE_s_V": pulse.delta_e_s_v,
        "dE_t_V": pulse.delta_e_t_v,
        "IR_step_V": pulse.ir_step_v,
        "dEs_over_dEt": pulse.ratio,
        "sqrt_t_fit_r2": pulse.sqrt_fit_r2,
        "relaxation_fit_r2": pulse.relaxation_fit_r2,
        "tauD_over_R2_model": tau_d_ratio,
        "model_rms_mV": fit.rms_residual_v * 1e3,
        "model_series_resistance_ohm": fit.series_resistance_ohm,
        "model_ocv_slope_V": fit.ocv_slope_v,
        "flags": ";".join(flags),
    }


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
