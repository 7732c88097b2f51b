"""`operascope analyze` of a multi-position run (issue 19): every position as its own field, one table across all.

Each position is analysed like a single-position run (:func:`operascope.analysis.report.analyze_run`
on the position's view, ``Run.for_position``): the fiducial is fitted on every binned frame, so the
stage's return error at each visit (a jump of the whole field) is measured and removed per bin like
any drift; then mask, particles, differential and COM vs SOC. Results go to ``position_<name>/``.

Across positions this writes:

* ``particles.csv`` / ``particles.json``: one row per particle of the run (position, label, size,
  COM asymmetry, fresh/aged class);
* ``com_all.csv``: COM distance vs SOC of every particle (long table);
* ``figure_s7_com_vs_soc.png``: COM/SOC curves of every particle, fresh vs aged (paper Fig. S7 summary);
* ``position_<name>/figure_s4_particle_<label>.png``: COM vs SOC of each particle (paper Fig. S4).

Fresh or aged is read from the data, not from labels: an aged particle (rock-salt arc) reacts
from one side, so the unreacted region's COM walks away from the particle's centre; a fresh one
reacts from the whole rim and its COM stays at the centre. ``asymmetry`` = median COM distance
(bins after the first) / equivalent radius; aged if it exceeds ``aged_asymmetry`` (default 0.1). The
median, not the largest value: late in the charge the unreacted region is small and its COM noisy.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from operascope.analysis import runfile_layout as layout
from operascope.analysis.json_safe import json_safe
from operascope.analysis.runfile import open_run

log = logging.getLogger(__name__)

#: Asymmetry (median COM distance / equivalent radius) above which a particle is called aged.
AGED_ASYMMETRY = 0.1
#: Largest accepted fiducial jump between bins (px): the stage's return error moves the whole field at
#: each visit (σ ~50 nm per axis, so ~70 nm between two visits); 12 px = 416 nm keeps > 5σ of that for
#: σ up to 60 nm, while the single-position default (5 px) would reject ~5 % of the visits.
POSITIONS_MAX_JUMP_PX = 12.0
#: Fiducial fit box (px) for a position's field: its bins are a whole cycle apart, so the fiducial moves further
#: between them (drift plus ~2 px of return error per visit) than within a single-position run; with the
#: single-position default (21) the chunked fit loses it after 30-90 bins of a 1C charge (bench_positions).
POSITIONS_BOX_PX = 31


def run_positions(run_path: str | Path) -> list[str]:
    """Position names of a run file (empty for a single-position run, or a file that is not a readable run:
    the single-position path then reports that). Only a multi-position file is opened as a full run."""
    try:
        with h5py.File(str(run_path), "r", locking=False) as handle:
            if not isinstance(handle.get(f"{layout.ENTRY}/positions/name"), h5py.Dataset):
                return []
    except (OSError, ValueError, TypeError):
        return []
    with open_run(run_path) as run:
        return list(run.positions())


def _read_com(path: Path) -> dict[int, dict[str, np.ndarray]]:
    """com.csv of one position: per particle label, arrays of soc, time_s and COM distance (nm)."""
    rows: dict[int, dict[str, list[float]]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            curve = rows.setdefault(int(row["particle"]), {"time_s": [], "soc": [], "com_distance_nm": []})
            for key in curve:
                curve[key].append(float(row[key]))
    return {label: {k: np.asarray(v) for k, v in curve.items()} for label, curve in rows.items()}


def classify(com_distance_nm: np.ndarray, area_um2: float, aged_asymmetry: float = AGED_ASYMMETRY) -> tuple[float, str]:
    """(asymmetry, "fresh" | "aged" | "unknown") of one particle's COM curve."""
    later = com_distance_nm[1:] if com_distance_nm.size > 1 else com_distance_nm
    finite = later[np.isfinite(later)]
    radius_nm = math.sqrt(max(area_um2, 0.0) / math.pi) * 1000.0
    if finite.size == 0 or radius_nm <= 0:
        return float("nan"), "unknown"
    asymmetry = float(np.median(finite) / radius_nm)
    return asymmetry, "aged" if asymmetry > aged_asymmetry else "fresh"


def analyze_positions(run_path: str | Path, out_dir: str | Path, aged_asymmetry: float = AGED_ASYMMETRY,
                      **analyze_kwargs: Any) -> dict[str, Any]:
    """Analyse every position of a multi-position run into ``out_dir``; returns the combined summary.

    ``analyze_kwargs`` go to :func:`operascope.analysis.report.analyze_run` for each position
    (a fixed ``fiducial_xy_px`` is refused: each field has its own fiducial).
    """
    from operascope.analysis import figures
    from operascope.analysis.report import analyze_run

    if analyze_kwargs.get("fiducial_xy_px") is not None:
        raise ValueError("fiducial_xy_px cannot be given for a multi-position run: every position has its own "
                         "fiducial (found per position)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = run_positions(run_path)
    if not names:
        raise ValueError(f"{run_path}: not a multi-position run (no /entry/positions)")
    per_position: dict[str, Any] = {}
    particles: list[dict[str, Any]] = []
    curves: dict[str, tuple[np.ndarray, np.ndarray, str]] = {}
    com_rows: list[list[Any]] = []
    warnings: list[str] = []
    for name in names:
        folder = out / f"position_{name}"
        try:
            summary = analyze_run(run_path, folder, position=name,
                                  **{"max_jump_px": POSITIONS_MAX_JUMP_PX, "box_px": POSITIONS_BOX_PX, **analyze_kwargs})
        except Exception as exc:  # noqa: BLE001 - one bad field must not lose the others' results
            message = f"position {name}: not analysed ({exc})"
            log.warning(message)
            warnings.append(message)
            per_position[name] = {"error": str(exc)}
            continue
        per_position[name] = {"folder": folder.name, "n_frames": summary["n_frames"],
                              "n_particles": summary["mask"]["n_particles"], "drift": summary["drift"],
                              "warnings": summary["warnings"]}
        com = _read_com(folder / "com.csv")
        for p in summary["particles"]:
            curve = com.get(int(p["label"]))
            if curve is None:
                continue
            asymmetry, kind = classify(curve["com_distance_nm"], p["area_um2"], aged_asymmetry)
            key = f"{name}/{p['label']}"
            particles.append({"position": name, "particle": p["label"], "area_um2": p["area_um2"],
                              "centroid_xy_px": p["centroid_xy_px"], "com_distance_nm_max": p["com_distance_nm_max"],
                              "asymmetry": asymmetry, "class": kind})
            curves[key] = (curve["soc"], curve["com_distance_nm"], kind)
            for t, s, d in zip(curve["time_s"], curve["soc"], curve["com_distance_nm"]):
                com_rows.append([name, p["label"], kind, f"{t:.6g}", f"{s:.6g}", f"{d:.4f}"])
            written = figures.plot_com_vs_soc(folder / f"figure_s4_particle_{p['label']}.png",
                                              {f"position {name}, particle {p['label']} ({kind})":
                                               (curve["soc"], curve["com_distance_nm"])})
            particles[-1]["figure_s4"] = str(written.relative_to(out))
    _write_tables(out, particles, com_rows)
    _plot_s7(out / "figure_s7_com_vs_soc.png", curves)
    counts = {kind: sum(1 for p in particles if p["class"] == kind) for kind in ("fresh", "aged", "unknown")}
    summary = {"run": str(run_path), "positions": per_position, "n_particles": len(particles),
               "classes": counts, "aged_asymmetry": aged_asymmetry, "particles": particles,
               "files": ["particles.csv", "particles.json", "com_all.csv", "figure_s7_com_vs_soc.png"],
               "warnings": warnings}
    with open(out / "summary.json", "w") as fh:
        json.dump(json_safe(summary), fh, indent=2)
    return json_safe(summary)


def _write_tables(out: Path, particles: list[dict[str, Any]], com_rows: list[list[Any]]) -> None:
    with open(out / "particles.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["position", "particle", "class", "asymmetry", "area_um2", "centroid_x_px", "centroid_y_px",
                    "com_distance_nm_max"])
        for p in particles:
            w.writerow([p["position"], p["particle"], p["class"], f"{p['asymmetry']:.4f}", f"{p['area_um2']:.4f}",
                        f"{p['centroid_xy_px'][0]:.2f}", f"{p['centroid_xy_px'][1]:.2f}",
                        f"{p['com_distance_nm_max']:.2f}"])
    with open(out / "particles.json", "w") as fh:
        json.dump(json_safe(particles), fh, indent=2)
    with open(out / "com_all.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["position", "particle", "class", "time_s", "soc", "com_distance_nm"])
        w.writerows(com_rows)


def _plot_s7(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray, str]]) -> Path:
    """COM distance vs SOC of every particle, fresh (blue) vs aged (red)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = {"fresh": "tab:blue", "aged": "tab:red", "unknown": "tab:gray"}
    labelled: set[str] = set()
    for key, (soc, distance_nm, kind) in curves.items():
        label = None if kind in labelled else f"{kind} particles"
        labelled.add(kind)
        ax.plot(soc, distance_nm, ".-", ms=3, lw=1, color=colours[kind], label=label)
    ax.set_xlabel("state of charge (capacity / nominal)")
    ax.set_ylabel("COM distance unreacted–particle (nm)")
    ax.set_title(f"{len(curves)} particles, all positions")
    if curves:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path
