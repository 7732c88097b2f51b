"""The figures of `operascope analyze` that need no particle result, and the montage's images.

:func:`montage_images` reads and drift-corrects the montage frames (HDF5 reads: call it from the thread that
reads the run). :func:`draw_early_figures` draws drift.png, differential_montage.png, the electrochemistry figures
and focus_lock.png from arrays already in memory, so :mod:`operascope.analysis.report` runs it in a worker thread
while the particles are analysed (issue 16 item 4: the figures were ~40 % of an analysis). It touches no file but
the PNGs it writes, and uses its own figures only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from operascope.analysis import figures
from operascope.analysis.cycling import capacity_per_cycle, rate_capability
from operascope.analysis.differential import differential
from operascope.analysis.drift import shift_stack
from operascope.analysis.masking import Particle

log = logging.getLogger(__name__)


def montage_images(run: Any, reference: np.ndarray, labels: np.ndarray, kept: Sequence[Particle], margin_px: int,
                   dx_px: np.ndarray, dy_px: np.ndarray, montage_frames: int) -> tuple[list[int], list[np.ndarray]]:
    """(bin indices, drift-corrected differential images) of ``montage_frames`` bins evenly spread over the run,
    cut to the kept particles' bounding box (+5 px); the whole frame if no particle was kept."""
    n, shape = run.n_frames, run.frame_shape
    indices = sorted(set(np.linspace(0, n - 1, min(montage_frames, n)).round().astype(int).tolist()))
    if kept:
        r0 = max(min(p.bbox[0] for p in kept) - 5, 0)
        r1 = min(max(p.bbox[1] for p in kept) + 5, shape[0])
        c0 = max(min(p.bbox[2] for p in kept) - 5, 0)
        c1 = min(max(p.bbox[3] for p in kept) + 5, shape[1])
        keep_mask = np.isin(labels, [p.label for p in kept])
    else:
        r0, r1, c0, c1 = 0, shape[0], 0, shape[1]
        keep_mask = labels > 0   # the whole mask
    # Shift only the montage window (plus the drift margin), not the whole frame.
    wr = slice(max(r0 - margin_px, 0), min(r1 + margin_px, shape[0]))
    wc = slice(max(c0 - margin_px, 0), min(c1 + margin_px, shape[1]))
    inner = (slice(r0 - wr.start, r1 - wr.start), slice(c0 - wc.start, c1 - wc.start))
    corrected = shift_stack(np.stack([run.frame_region(k, wr, wc) for k in indices]), -dx_px[indices],
                            -dy_px[indices])
    return indices, [differential(frame, reference[wr, wc], keep_mask[wr, wc])[inner] for frame in corrected]


@dataclass
class EarlyFigures:
    """What :func:`draw_early_figures` wrote and found, in the report's order."""

    drift: Path
    montage: Path
    echem_written: list[Path] = field(default_factory=list)   # voltage_capacity.png, cycling.png
    focus: Path | None = None
    echem_summary: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


def draw_early_figures(out: Path, run: Any, time_s: np.ndarray, dx_nm: np.ndarray, dy_nm: np.ndarray,
                       truth_xy: tuple[np.ndarray, np.ndarray] | None, montage: list[np.ndarray],
                       montage_labels: list[str], pixel_nm: float) -> EarlyFigures:
    """drift.png, differential_montage.png, the electrochemistry summary and figures, focus_lock.png.

    Reads only what ``run`` holds in memory (its echem, focus-lock and binned logs), no frames."""
    drawn = EarlyFigures(drift=figures.plot_drift(out / "drift.png", time_s, dx_nm, dy_nm, truth_xy),
                         montage=figures.plot_differential_montage(out / "differential_montage.png", montage,
                                                                   montage_labels, pixel_nm))
    drawn.echem_summary = echem_summary(run, out, drawn.echem_written, drawn.warnings)
    fl = run.focus_lock
    if fl is not None and fl.time_s.size:
        drawn.focus = figures.plot_focus_lock(out / "focus_lock.png", fl.time_s, fl.error_nm, fl.z_nm)
    return drawn


def echem_summary(run: Any, out: Path, written: list[Path], warnings: list[str]) -> dict[str, Any] | None:
    """Voltage range, capacity per cycle and rate capability from the echem log; its figures appended to
    ``written`` (voltage vs capacity, and capacity per cycle when there is more than one cycle)."""
    ec = run.echem
    if ec is None or ec.time_s.size < 2:
        if run.binned.voltage_v is not None and run.binned.capacity_mAh_g is not None:
            written.append(figures.plot_voltage_capacity(out / "voltage_capacity.png", run.binned.capacity_mAh_g,
                                                         run.binned.voltage_v))
        return None
    capacity = ec.capacity_mAh_g
    mass = run.active_mass_mg
    if capacity is None and mass:
        from operascope.analysis.gitt.pulses import cumulative_charge_c

        capacity = cumulative_charge_c(ec.time_s, ec.current_a) / 3.6 / (mass * 1e-3)
    if capacity is not None:
        written.append(figures.plot_voltage_capacity(out / "voltage_capacity.png", capacity, ec.voltage_v))
    result: dict[str, Any] = {"n_samples": int(ec.time_s.size), "voltage_range_v": [float(ec.voltage_v.min()),
                                                                                  float(ec.voltage_v.max())]}
    if mass and mass > 0:
        cycles = capacity_per_cycle(ec.time_s, ec.current_a, mass, ec.cycle)
        result["cycles"] = [{"cycle": c.cycle, "charge_mAh_g": c.charge_mAh_g, "discharge_mAh_g": c.discharge_mAh_g,
                             "charge_current_mA_g": c.charge_current_mA_g,
                             "discharge_current_mA_g": c.discharge_current_mA_g} for c in cycles]
        result["rate_capability"] = [{"rate_mA_g": r.rate_mA_g, "c_rate": r.c_rate, "n_cycles": r.n_cycles,
                                      "discharge_mAh_g": r.discharge_mAh_g, "charge_mAh_g": r.charge_mAh_g}
                                     for r in rate_capability(cycles)]
        if len(cycles) > 1:
            written.append(figures.plot_cycling(out / "cycling.png", np.array([c.cycle for c in cycles]),
                                                np.array([c.charge_mAh_g for c in cycles]),
                                                np.array([c.discharge_mAh_g for c in cycles])))
    else:
        warnings.append("no active mass in the file: capacity per cycle not computed")
    return result
