"""An analysed run's COM vs SOC against the simulation's truth (simulated runs; issue 19 must-show).

After ``operascope analyze`` (``summary.json`` and ``com.csv`` in a folder) of a run, or of one position
of a multi-position run, each particle the analysis found is matched with the true particle nearest to
it in the field (the file's ``simulation/particles``), and its COM distance per bin is compared with
the true front COM of that particle in the same bin (``truth_binned``: the state the writer took right
after the bin, moved to the bin's true mid-time along the particle's own history). Compared are the
bins where the truth still has at least ``min_unreacted_fraction`` of the particle unreacted and the
analysis has a COM (late in the charge the unreacted region is small and its COM noisy in both).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from operascope.analysis.runfile import Run

log = logging.getLogger(__name__)

#: Truth unreacted fraction below which a bin is not compared.
MIN_UNREACTED_FRACTION = 0.2


@dataclass(frozen=True)
class ParticleComError:
    """One found particle against its true counterpart (NaN figures when no bin could be compared)."""

    label: int
    truth_index: int
    match_distance_px: float
    n_bins: int
    rms_error_nm: float
    max_error_nm: float
    truth_com_max_nm: float
    unreacted_rms_error: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def true_particles_px(run: Run) -> dict[str, np.ndarray]:
    """The true particles of ``run``'s field: index, x_px, y_px, radius_px in its binned image (no drift).
    A position's view reads its own table; a single-position run maps the sample's particles through the
    stage position at the start and the camera ROI."""
    parts = run.simulation_particles()
    if parts is None:
        raise ValueError(f"{run.path}: no simulation truth (not a simulated run)")
    if run.position is not None:
        return {k: parts[k] for k in ("index", "x_px", "y_px", "radius_px")}
    pixel_nm = float(run.pixel_size_nm or 0.0)
    if pixel_nm <= 0:
        raise ValueError(f"{run.path}: no camera pixel size; cannot place the true particles")
    x_axis = run.to_xarray("binned", slice(0, 1)).coords["x"].values
    y_axis = run.to_xarray("binned", slice(0, 1)).coords["y"].values
    stage = {a: run.table(f"stage_{a}") for a in ("x", "y")}
    stage_nm = {a: float(t["value"][0]) if t is not None and t["value"].size else 0.0 for a, t in stage.items()}
    col = (parts["x_um"] * 1000.0 - stage_nm["x"]) / pixel_nm - x_axis[0] * 1000.0 / pixel_nm
    row = (parts["y_um"] * 1000.0 - stage_nm["y"]) / pixel_nm - y_axis[0] * 1000.0 / pixel_nm
    return {"index": np.arange(col.size), "x_px": col, "y_px": row,
            "radius_px": parts["diameter_um"] * 500.0 / pixel_nm}


def _read_com_csv(path: Path) -> dict[int, dict[str, np.ndarray]]:
    rows: dict[int, dict[str, list[float]]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            curve = rows.setdefault(int(row["particle"]), {"com_distance_nm": [], "unreacted_fraction": []})
            for key in curve:
                curve[key].append(float(row[key]))
    return {label: {k: np.asarray(v) for k, v in c.items()} for label, c in rows.items()}


def truth_com_at_bins(truth: dict[str, np.ndarray], index: int) -> tuple[np.ndarray, np.ndarray]:
    """(front COM nm, unreacted fraction) of true particle ``index`` at each bin's true mid-time: its states
    (taken at ``particle_time``, just after each bin) interpolated back along its own history."""
    t_bin, t_state = truth["time"], truth["particle_time"]
    com = truth["particle_com_distance_nm"][:, index]
    unreacted = truth["particle_unreacted_fraction"][:, index]
    out_com, out_unreacted = com.copy(), unreacted.copy()
    good = np.isfinite(com) & np.isfinite(t_state)
    if good.sum() >= 2:
        out_com[good] = np.interp(t_bin[good], t_state[good], com[good])
    good = np.isfinite(unreacted) & np.isfinite(t_state)
    if good.sum() >= 2:
        out_unreacted[good] = np.interp(t_bin[good], t_state[good], unreacted[good])
    return out_com, out_unreacted


def compare_com_with_truth(run: Run, folder: str | Path,
                           min_unreacted_fraction: float = MIN_UNREACTED_FRACTION) -> list[ParticleComError]:
    """Every particle ``operascope analyze`` found in ``folder`` (of ``run``, or of a position's view)
    against the simulation's truth; unmatched particles (no true particle within its radius) are left out."""
    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text())
    com = _read_com_csv(folder / "com.csv")
    truth = run.table("truth_binned")
    if truth is None or "particle_com_distance_nm" not in truth:
        raise ValueError(f"{run.path}: no per-particle truth per bin (simulation/binned particle columns)")
    n = min(run.n_frames, truth["time"].size)
    truth = {k: v[:n] for k, v in truth.items()}
    true = true_particles_px(run)
    used: set[int] = set()
    out = []
    for p in summary["particles"]:
        cx, cy = p["centroid_xy_px"]
        distance = np.hypot(true["x_px"] - cx, true["y_px"] - cy)
        k = int(np.argmin(distance)) if distance.size else -1
        if k < 0 or distance[k] > true["radius_px"][k] or k in used:
            log.info("particle %s at (%.1f, %.1f) px: no true particle matched", p["label"], cx, cy)
            continue
        used.add(k)
        index = int(true["index"][k])
        true_com, true_unreacted = truth_com_at_bins(truth, index)
        curve = com.get(int(p["label"]))
        if curve is None:
            continue
        found_com, found_unreacted = curve["com_distance_nm"][:n], curve["unreacted_fraction"][:n]
        sel = (true_unreacted >= min_unreacted_fraction) & np.isfinite(true_com) & np.isfinite(found_com)
        err = found_com[sel] - true_com[sel]
        both = np.isfinite(true_unreacted) & np.isfinite(found_unreacted)
        out.append(ParticleComError(
            label=int(p["label"]), truth_index=index, match_distance_px=float(distance[k]), n_bins=int(sel.sum()),
            rms_error_nm=float(np.sqrt(np.mean(err**2))) if err.size else math.nan,
            max_error_nm=float(np.max(np.abs(err))) if err.size else math.nan,
            truth_com_max_nm=float(np.nanmax(true_com[sel])) if sel.any() else math.nan,
            unreacted_rms_error=float(np.sqrt(np.mean((found_unreacted[both] - true_unreacted[both]) ** 2)))
            if both.any() else math.nan))
    return out
