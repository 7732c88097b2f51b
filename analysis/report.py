"""`operascope analyze`: a run file in, numbers (summary.json, CSV) and PNG figures out.

Pipeline (physics reference section 1): fiducial drift on every binned frame -> drift-corrected
first frame -> mask + particle segmentation -> per particle and frame: drift-corrected
differential image and the reaction-front COM distance -> CSV, JSON and figures.
"""

from __future__ import annotations

import logging

import csv
import json
import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

import numpy as np

from operascope.analysis import figures
from operascope.analysis.drift import CHUNK_BINS, DriftTrace, track_fiducial
from operascope.analysis.errors import RunFileError
from operascope.analysis.fiducial import locate_fiducial
from operascope.analysis.figures_report import draw_early_figures, montage_images
from operascope.analysis.json_safe import json_safe
from operascope.analysis.lock_fault_fields import lock_fault_fields
from operascope.analysis.masking import Particle
from operascope.analysis.particle_identity import particle_names
from operascope.analysis.materials import SPECIFIC_CAPACITY_MAH_G
from operascope.analysis.particle_chunk import particle_chunk_series, particle_statics
from operascope.analysis.reference_particles import reference_particles
from operascope.analysis.runfile import Run, open_run

ProgressCallback = Callable[[int, int, str], None]
DEFAULT_PIXEL_SIZE_NM = 34.7


log = logging.getLogger(__name__)


def _configured_fiducial(run: Run) -> tuple[float, float] | None:
    """acquisition.fiducial_xy_px from the run's stored configuration, if set."""
    if not run.config_toml:
        return None
    try:
        value = tomllib.loads(run.config_toml).get("acquisition", {}).get("fiducial_xy_px")
    except tomllib.TOMLDecodeError:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return float(value[0]), float(value[1])
    return None


def _capacity_and_soc(run: Run, nominal_mAh_g: float) -> tuple[np.ndarray, np.ndarray]:
    """Capacity (mAh/g) at every binned frame, from the binned log or the echem log; SOC = capacity / nominal."""
    n = run.n_frames
    capacity = run.binned.capacity_mAh_g
    if capacity is None and run.echem is not None and run.echem.capacity_mAh_g is not None:
        capacity = np.interp(run.binned.time_s, run.echem.time_s, run.echem.capacity_mAh_g)
    if capacity is None:
        capacity = np.full(n, np.nan)
    return capacity, capacity / nominal_mAh_g


def _truth_comparison(run: Run, time_s: np.ndarray, dx_nm: np.ndarray, dy_nm: np.ndarray,
                      ref: int) -> tuple[dict[str, Any] | None, tuple[np.ndarray, np.ndarray] | None]:
    binned = getattr(run, "truth_binned", None)
    if binned is not None and binned.drift_x_nm is not None and binned.drift_y_nm is not None \
            and binned.drift_x_nm.size == time_s.size and np.isfinite(binned.drift_x_nm[ref]):
        # the truth averaged over each bin's exposures: what a bin's fiducial fit measures
        tx, ty, source = binned.drift_x_nm.astype(float), binned.drift_y_nm.astype(float), "bin-averaged"
        sx, sy = getattr(binned, "image_shift_x_nm", None), getattr(binned, "image_shift_y_nm", None)
        if sx is not None and sy is not None and np.isfinite(sx[ref]) and np.isfinite(sy[ref]):
            tx, ty, source = sx.astype(float), sy.astype(float), "bin-averaged image shift (drift - stage)"
    else:   # older files: instantaneous samples interpolated to the bin times
        truth = run.truth
        if truth is None or truth.drift_x_nm is None or truth.drift_y_nm is None or truth.time_s.size < 2:
            return None, None
        good = np.isfinite(truth.time_s) & np.isfinite(truth.drift_x_nm) & np.isfinite(truth.drift_y_nm)
        if good.sum() < 2:
            return None, None
        tt = truth.time_s[good]
        tx = np.interp(time_s, tt, truth.drift_x_nm[good])
        ty = np.interp(time_s, tt, truth.drift_y_nm[good])
        source = "instantaneous samples interpolated to the bin times"
    tx, ty = tx - tx[ref], ty - ty[ref]
    ok = np.isfinite(dx_nm) & np.isfinite(dy_nm) & np.isfinite(tx) & np.isfinite(ty)
    err = np.hypot(dx_nm - tx, dy_nm - ty)[ok]
    flipped = np.hypot(dx_nm + tx, dy_nm + ty)[ok]
    # The reference frame's own fit error is a constant offset: the per-axis std of the error
    # (offset removed) is the achieved localisation precision, comparable with the CRLB.
    ex, ey = (dx_nm - tx)[ok], (dy_nm - ty)[ok]
    result = {
        "error_std_xy_nm": [float(np.std(ex)), float(np.std(ey))] if ex.size > 1 else None,
        "rms_error_nm": float(np.sqrt(np.mean(err**2))) if err.size else float("nan"),
        "max_error_nm": float(err.max()) if err.size else float("nan"),
        "rms_error_if_sign_flipped_nm": float(np.sqrt(np.mean(flipped**2))) if flipped.size else float("nan"),
        "truth_range_nm": float(np.nanmax([np.nanmax(tx) - np.nanmin(tx), np.nanmax(ty) - np.nanmin(ty)])),
        "truth": source,
    }
    return result, (tx, ty)


class _BlockReader:
    """``read_region(k, rows, cols)`` for :func:`track_fiducial` that reads the same window of ``block_bins`` frames
    at once (one HDF5 read per chunk of bins instead of one per bin) and serves the following requests from it."""

    def __init__(self, run: Run, block_bins: int = CHUNK_BINS) -> None:
        self.run, self.block_bins = run, block_bins
        self.key: tuple[int, int, int | None, int | None, int | None, int | None] | None = None
        self.block: np.ndarray | None = None

    def __call__(self, k: int, rows: slice, cols: slice) -> np.ndarray:
        if rows.step not in (None, 1) or cols.step not in (None, 1):
            return self.run.frame_region(k, rows, cols)
        region = (rows.start, rows.stop, cols.start, cols.stop)
        if self.key is None or self.block is None or self.key[2:] != region or not self.key[0] <= k < self.key[1]:
            stop = min(k + self.block_bins, self.run.n_frames)
            if not 0 <= k < stop:
                return self.run.frame_region(k, rows, cols)   # its error names the bad index
            stack = self.run.stack("binned")
            try:
                self.block = np.asarray(stack[k:stop, rows, cols], dtype=np.float32)
            except (OSError, RuntimeError) as exc:
                raise RunFileError(f"{self.run.path}: binned frames {k}..{stop - 1} cannot be read ({exc}); "
                                   "file truncated?") from exc
            self.key = (k, stop, *region)
        return self.block[k - self.key[0]]


#: Bins per chunk of the per-particle kernel (one read of the particles' bounding window per chunk).
PARTICLE_CHUNK_BINS = 64


def _particle_blocks(run: Run, regions: list[tuple[slice, slice]], n: int, chunk_bins: int = PARTICLE_CHUNK_BINS
                     ) -> Iterator[tuple[int, int, list[np.ndarray]]]:
    """(start, stop, one (stop - start, h, w) block per region) for each chunk of bins: the window bounding every
    region is read once per chunk, then cut."""
    if not regions:
        return
    r0, r1 = min(rs.start for rs, _ in regions), max(rs.stop for rs, _ in regions)
    c0, c1 = min(cs.start for _, cs in regions), max(cs.stop for _, cs in regions)
    stack = run.stack("binned")
    for start in range(0, n, chunk_bins):
        stop = min(start + chunk_bins, n)
        try:
            window = np.asarray(stack[start:stop, r0:r1, c0:c1], dtype=np.float32)
        except (OSError, RuntimeError) as exc:
            raise RunFileError(f"{run.path}: binned frames {start}..{stop - 1} cannot be read ({exc}); "
                               "file truncated?") from exc
        yield start, stop, [window[:, rs.start - r0:rs.stop - r0, cs.start - c0:cs.stop - c0] for rs, cs in regions]


def _worker_threads() -> int:
    """Threads of the analysis pool: the figures and the particle kernels (NumPy/SciPy release the GIL)."""
    return max(2, min(os.cpu_count() or 1, 4))


def _particle_series(run: Run, kept: list[Particle], labels: np.ndarray, reference: np.ndarray, margin: int,
                     dx_px: np.ndarray, dy_px: np.ndarray, pixel_nm: float, unreacted_threshold: float,
                     min_unreacted_fraction: float, pool: ThreadPoolExecutor, progress: ProgressCallback | None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COM distance, mean differential and unreacted fraction (particles x bins): the pure chunk kernel per
    particle and chunk of bins, run on ``pool``; this thread reads the next chunk meanwhile (two in flight)."""
    n, shape = run.n_frames, run.frame_shape
    series = np.full((3, len(kept), n), np.nan)
    regions = [p.slices(margin, shape) for p in kept]
    particle_masks = [labels[rs, cs] == p.label for p, (rs, cs) in zip(kept, regions)]
    statics = [particle_statics(reference[rs, cs], pmask, pixel_nm) for (rs, cs), pmask in zip(regions, particle_masks)]

    def submit(start: int, stop: int, blocks: list[np.ndarray]) -> list[Future]:
        return [pool.submit(particle_chunk_series, block, reference[rs, cs], pmask, p.area_px, dx_px[start:stop],
                            dy_px[start:stop], pixel_nm, unreacted_threshold, min_unreacted_fraction, st)
                for p, (rs, cs), pmask, block, st in zip(kept, regions, particle_masks, blocks, statics)]

    def collect(start: int, stop: int, futures: list[Future]) -> None:
        for j, future in enumerate(futures):
            series[:, j, start:stop] = future.result()
        if progress is not None:
            progress(stop, n, "particles")

    pending: tuple[int, int, list[Future]] | None = None
    for start, stop, blocks in _particle_blocks(run, regions, n):
        submitted = (start, stop, submit(start, stop, blocks))
        if pending is not None:
            collect(*pending)
        pending = submitted
    if pending is not None:
        collect(*pending)
    return series[0], series[1], series[2]


def _write_csvs(out: Path, kept: list[Particle], time_s: np.ndarray, dx_nm: np.ndarray, dy_nm: np.ndarray,
                ok: np.ndarray, capacity: np.ndarray, soc: np.ndarray, com_nm: np.ndarray, mean_diff: np.ndarray,
                unreacted_fraction: np.ndarray) -> None:
    """drift.csv (one row per bin) and com.csv (one row per particle and bin)."""
    n = time_s.size
    with open(out / "drift.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time_s", "dx_nm", "dy_nm", "fit_ok", "drift_interpolated"])
        for k in range(n):
            w.writerow([f"{time_s[k]:.6g}", f"{dx_nm[k]:.4f}", f"{dy_nm[k]:.4f}", int(ok[k]), int(not ok[k])])
    with open(out / "com.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["particle", "time_s", "capacity_mAh_g", "soc", "com_distance_nm", "mean_differential",
                    "unreacted_fraction", "drift_interpolated"])
        for j, p in enumerate(kept):
            for k in range(n):
                w.writerow([p.label, f"{time_s[k]:.6g}", f"{capacity[k]:.6g}", f"{soc[k]:.6g}",
                            f"{com_nm[j, k]:.4f}", f"{mean_diff[j, k]:.6g}", f"{unreacted_fraction[j, k]:.6g}",
                            int(not ok[k])])


def _frame_labels(run: Run, k: int, capacity: np.ndarray, soc: np.ndarray) -> str:
    if np.isfinite(capacity[k]):
        return f"t={run.binned.time_s[k]:.0f} s, {capacity[k]:.1f} mAh/g"
    return f"t={run.binned.time_s[k]:.0f} s"


def analyze_run(
    run_path: str | Path,
    out_dir: str | Path,
    progress: ProgressCallback | None = None,
    unreacted_threshold: float = 0.05,
    min_unreacted_fraction: float = 0.05,
    fiducial_xy_px: tuple[float, float] | None = None,
    box_px: int = 21,
    mask_threshold: float | None = None,
    min_area_px: int = 30,
    nominal_capacity_mAh_g: float = SPECIFIC_CAPACITY_MAH_G,
    montage_frames: int = 8,
    position: str | None = None,
    max_jump_px: float = 5.0,
) -> dict[str, Any]:
    """Analyse a run file and write summary.json, drift.csv, com.csv and PNG figures to ``out_dir``.

    COM distances are reported only while the unreacted region covers at least
    ``min_unreacted_fraction`` of the particle (NaN afterwards: the front has swept it).
    ``progress(done, total, label)`` reports the fiducial fits and the per-frame particle analysis.
    Returns the summary dictionary. Raises :class:`RunFileError` for unusable files.
    A multi-position run is analysed per position (analysis/positions_report.py); ``position``
    analyses only that position's field.
    """
    if position is None:
        from operascope.analysis import positions_report

        if positions_report.run_positions(run_path):
            return positions_report.analyze_positions(
                run_path, out_dir, progress=progress, unreacted_threshold=unreacted_threshold,
                min_unreacted_fraction=min_unreacted_fraction, fiducial_xy_px=fiducial_xy_px, box_px=box_px,
                mask_threshold=mask_threshold, min_area_px=min_area_px,
                nominal_capacity_mAh_g=nominal_capacity_mAh_g, montage_frames=montage_frames)
    if not math.isfinite(unreacted_threshold):
        raise ValueError(f"unreacted_threshold must be finite, got {unreacted_threshold}")
    if nominal_capacity_mAh_g <= 0:
        raise ValueError(f"nominal_capacity_mAh_g must be > 0, got {nominal_capacity_mAh_g}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []
    with open_run(run_path) as whole:
        run = whole if position is None else whole.for_position(position)
        run.require_frames()
        n = run.n_frames
        shape = run.frame_shape
        pixel_nm = run.pixel_size_nm
        if pixel_nm is None or not pixel_nm > 0:
            warnings.append(f"no pixel size in the file; assumed {DEFAULT_PIXEL_SIZE_NM} nm/px")
            pixel_nm = DEFAULT_PIXEL_SIZE_NM
        first = run.frame(0)
        if not np.isfinite(first).any():
            raise RunFileError(f"{run.path}: the first binned frame holds no finite pixels")

        # ---------------------------------------------------------------- drift
        guess = fiducial_xy_px or _configured_fiducial(run) or locate_fiducial(first)
        trace: DriftTrace | None
        try:
            trace = track_fiducial(_BlockReader(run), n, shape, guess, box_px, progress=progress,
                                   max_jump_px=max_jump_px)
        except ValueError as exc:
            trace = None
            warnings.append(f"drift correction off: {exc}")
        if trace is not None:
            dx_px, dy_px = trace.filled()
            ok = trace.ok
            ref_index = trace.reference_index
        else:
            dx_px, dy_px, ok, ref_index = np.zeros(n), np.zeros(n), np.zeros(n, bool), 0
        lost = _fiducial_loss_warning(ok, trace is not None)
        if lost:
            log.warning(lost)
            warnings.append(lost)
        dx_nm, dy_nm = dx_px * pixel_nm, dy_px * pixel_nm
        time_s = run.binned.time_s
        truth_stats, truth_xy = _truth_comparison(run, time_s, np.where(ok, dx_nm, np.nan),
                                                  np.where(ok, dy_nm, np.nan), ref_index)
        if truth_stats and truth_stats["rms_error_if_sign_flipped_nm"] < 0.5 * truth_stats["rms_error_nm"]:
            warnings.append("recovered drift matches the simulation truth only with the opposite sign: check the "
                            "simulator's drift sign convention (analysis: +x = image content moves to higher column)")

        # ---------------------------------------------------------------- mask and particles
        segmented = reference_particles(first, dx_px, dy_px, trace, mask_threshold, min_area_px, str(run.path))
        reference, threshold, labels = segmented.reference, segmented.threshold, segmented.labels
        kept, border = list(segmented.kept), segmented.border_px
        warnings += segmented.warnings()

        # ---------------------------------------------------------------- figures (a worker) and particles
        margin = border + 2
        capacity, soc = _capacity_and_soc(run, nominal_capacity_mAh_g)
        montage_indices, montage = montage_images(run, reference, labels, kept, margin, dx_px, dy_px,
                                                  montage_frames)
        with ThreadPoolExecutor(max_workers=_worker_threads()) as pool:
            early = pool.submit(draw_early_figures, out, run, time_s, dx_nm, dy_nm, truth_xy, montage,
                                [_frame_labels(run, k, capacity, soc) for k in montage_indices], pixel_nm)
            com_nm, mean_diff, unreacted_fraction = _particle_series(
                run, kept, labels, reference, margin, dx_px, dy_px, pixel_nm, unreacted_threshold,
                min_unreacted_fraction, pool, progress)
            drawn = early.result()

        # ---------------------------------------------------------------- files
        _write_csvs(out, kept, time_s, dx_nm, dy_nm, ok, capacity, soc, com_nm, mean_diff, unreacted_fraction)
        written = [out / "drift.csv", out / "com.csv", drawn.drift, drawn.montage]
        written.append(figures.plot_com_vs_soc(
            out / "com_vs_soc.png", {name: (soc, com_nm[j]) for j, name in enumerate(particle_names(run, kept, pixel_nm))}))
        written += drawn.echem_written
        warnings += drawn.warnings
        echem_summary = drawn.echem_summary
        focus_summary = None
        if drawn.focus is not None:
            written.append(drawn.focus)
            focus_summary = _focus_summary(run.focus_lock, time_s)

        summary = _summary(run, n, shape, pixel_nm, guess, trace, dx_nm, dy_nm, ok, truth_stats, threshold, kept,
                           com_nm, mean_diff, capacity, unreacted_threshold, echem_summary, warnings, written)
        summary["focus_lock"] = focus_summary
        summary["focus_lock_faults"] = lock_fault_fields(run.events)   # analysis/lock_fault_fields.py
        summary["min_unreacted_fraction"] = min_unreacted_fraction
    with open(out / "summary.json", "w") as fh:
        json.dump(json_safe(summary), fh, indent=2)
    return json_safe(summary)


def _focus_summary(fl: Any, frame_time_s: np.ndarray) -> dict[str, Any]:
    """Lock error statistics while locked, and which binned frames fell in unlocked periods."""
    error = np.asarray(fl.error_nm, dtype=float)
    result: dict[str, Any] = {"n_samples": int(error.size)}
    if fl.state is not None:
        locked = np.array([s == "locked" for s in fl.state])
        result["locked_fraction"] = float(locked.mean())
        good = locked & np.isfinite(error)
        result["rms_error_locked_nm"] = float(np.sqrt(np.mean(error[good] ** 2))) if good.any() else float("nan")
        nearest = np.clip(np.searchsorted(fl.time_s, frame_time_s), 0, fl.time_s.size - 1)
        unlocked = np.nonzero(~locked[nearest])[0]
        result["n_binned_frames_not_locked"] = int(unlocked.size)
        result["binned_frames_not_locked"] = [int(k) for k in unlocked[:100]]  # first 100
    else:
        finite = np.isfinite(error)
        result["rms_error_nm"] = float(np.sqrt(np.mean(error[finite] ** 2))) if finite.any() else float("nan")
    return result


def _fiducial_loss_warning(ok: np.ndarray, tracked: bool) -> str | None:
    """A loud line when drift correction lost the fiducial in some bins (None if every fit was accepted)."""
    if not tracked or ok.all():
        return None
    failed = np.flatnonzero(~ok)
    runs = np.split(failed, np.flatnonzero(np.diff(failed) > 1) + 1)
    longest = max(runs, key=len)
    return (f"drift correction lost the fiducial in {failed.size} of {ok.size} bins ({failed.size / ok.size:.0%}; "
            f"longest gap bins {int(longest[0])}-{int(longest[-1])}): their drift is interpolated between accepted "
            f"fits and flagged drift_interpolated in drift.csv and com.csv; COM values there are less certain")


def _summary(run: Run, n: int, shape: tuple[int, int], pixel_nm: float, guess: tuple[float, float],
             trace: DriftTrace | None, dx_nm: np.ndarray, dy_nm: np.ndarray, ok: np.ndarray,
             truth_stats: dict[str, Any] | None, threshold: float, kept: list[Particle], com_nm: np.ndarray,
             mean_diff: np.ndarray, capacity: np.ndarray, unreacted_threshold: float,
             echem: dict[str, Any] | None, warnings: list[str], written: list[Path]) -> dict[str, Any]:
    failed = np.flatnonzero(~ok)
    drift: dict[str, Any] = {
        "n_fits_ok": int(ok.sum()), "n_rejected": int(n - ok.sum()),
        # bins whose drift is interpolated between accepted fits (held at the nearest one before the first / after
        # the last); flagged drift_interpolated = 1 in drift.csv and com.csv
        "n_interpolated": int(failed.size), "interpolated_bins": [int(k) for k in failed[:100]],  # first 100
    }
    if trace is not None:
        sx, sy = trace.scatter_px()
        bound = float(np.nanmedian(trace.crlb_px)) if np.isfinite(trace.crlb_px).any() else float("nan")
        drift.update({
            "fiducial_start_xy_px": list(guess),
            "reference_frame": trace.reference_index,
            "rejection_reasons": dict(Counter(r for r, g in zip(trace.reasons, trace.ok) if not g)),
            "max_abs_drift_nm": float(np.nanmax(np.abs(np.concatenate([dx_nm, dy_nm])))),
            "scatter_nm": [sx * pixel_nm, sy * pixel_nm],
            "crlb_nm": bound * pixel_nm,
            "scatter_to_crlb": [sx / bound if bound else float("nan"), sy / bound if bound else float("nan")],
            "note": "scatter = std of frame-to-frame differences / sqrt(2); includes any real drift jitter",
        })
    if truth_stats is not None:
        bound_nm = drift.get("crlb_nm")
        if truth_stats.get("error_std_xy_nm") and bound_nm:
            truth_stats["error_std_to_crlb"] = [v / bound_nm for v in truth_stats["error_std_xy_nm"]]
        drift["versus_simulation_truth"] = truth_stats
    particles = []
    for j, p in enumerate(kept):
        finite = np.isfinite(com_nm[j])
        particles.append({
            "label": p.label, "area_px": p.area_px, "area_um2": p.area_px * (pixel_nm / 1000.0) ** 2,
            "centroid_xy_px": list(p.centroid_xy_px),
            "com_distance_nm_max": float(com_nm[j][finite].max()) if finite.any() else float("nan"),
            "com_distance_nm_mean": float(com_nm[j][finite].mean()) if finite.any() else float("nan"),
            "mean_differential_last": float(mean_diff[j, -1]),
        })
    return {
        "run": str(run.path), "n_frames": n, "frame_shape": list(shape), "pixel_size_nm": pixel_nm,
        "time_range_s": [float(np.nanmin(run.binned.time_s)), float(np.nanmax(run.binned.time_s))],
        "capacity_range_mAh_g": [float(np.nanmin(capacity)), float(np.nanmax(capacity))]
        if np.isfinite(capacity).any() else None,
        "drift": drift,
        "mask": {"threshold": threshold, "n_particles": len(kept)},
        "unreacted_threshold": unreacted_threshold,
        "particles": particles,
        "electrochemistry": echem,
        "figures": [p.name for p in written if p.suffix == ".png"],
        "warnings": warnings,
    }
