"""One run's analysis as a Dask graph: a plan task (fiducial drift, reference, mask, particles) first,
then one task per chunk of bins computing the drift-corrected differential, per-particle COM distance,
mean differential and unreacted fraction. Every task opens the run file itself and reads only its own
bins (the file's HDF5 chunks are one binned frame each), so no frame passes through the client.

The kernels are the serial path's (:mod:`operascope.analysis.report`):
``track_fiducial`` and the per-particle chunk kernel ``particle_chunk_series``; results equal the serial
``operascope analyze`` to floating-point tolerance.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from dask import delayed
from dask.base import tokenize

from operascope.analysis import runfile_layout as layout
from operascope.analysis.distributed.cache import chunk_key, load, store
from operascope.analysis.drift import track_fiducial
from operascope.analysis.errors import RunFileError
from operascope.analysis.fiducial import locate_fiducial
from operascope.analysis.materials import SPECIFIC_CAPACITY_MAH_G
from operascope.analysis.particle_chunk import particle_chunk_series
from operascope.analysis.reference_particles import reference_particles
from operascope.analysis.report import DEFAULT_PIXEL_SIZE_NM, _capacity_and_soc, _configured_fiducial
from operascope.analysis.runfile import open_run

log = logging.getLogger(__name__)

#: Bins per particle task (each task reads chunk_bins x particle windows).
DEFAULT_CHUNK_BINS = 64


@dataclass(frozen=True)
class AnalysisSettings:
    """The analysis settings of :func:`operascope.analysis.report.analyze_run` (same defaults)."""

    unreacted_threshold: float = 0.05
    min_unreacted_fraction: float = 0.05
    fiducial_xy_px: tuple[float, float] | None = None
    box_px: int = 21
    mask_threshold: float | None = None
    min_area_px: int = 30
    nominal_capacity_mAh_g: float = SPECIFIC_CAPACITY_MAH_G
    chunk_bins: int = DEFAULT_CHUNK_BINS

    def __post_init__(self) -> None:
        if not math.isfinite(self.unreacted_threshold):
            raise ValueError(f"unreacted_threshold must be finite, got {self.unreacted_threshold}")
        if not self.nominal_capacity_mAh_g > 0:
            raise ValueError(f"nominal_capacity_mAh_g must be > 0, got {self.nominal_capacity_mAh_g}")
        if not (isinstance(self.chunk_bins, int) and self.chunk_bins >= 1):
            raise ValueError(f"chunk_bins must be an integer >= 1, got {self.chunk_bins!r}")


@dataclass(frozen=True)
class ParticleWindow:
    """One analysed particle: label, area, and its window (with the drift margin) and mask in that window."""

    label: int
    area_px: int
    rows: slice
    cols: slice
    mask: np.ndarray


@dataclass(frozen=True)
class RunPlan:
    """Everything the per-bin tasks need, computed once per run (small: one reference frame)."""

    path: str
    n_frames: int
    frame_shape: tuple[int, int]
    pixel_size_nm: float
    dx_px: np.ndarray
    dy_px: np.ndarray
    fit_ok: np.ndarray
    reference: np.ndarray
    particles: tuple[ParticleWindow, ...]
    time_s: np.ndarray
    capacity_mAh_g: np.ndarray
    soc: np.ndarray
    mask_threshold: float
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class RunResult:
    """Per particle (rows) and bin (columns) results of one run."""

    plan: RunPlan
    com_nm: np.ndarray
    mean_differential: np.ndarray
    unreacted_fraction: np.ndarray
    n_chunks: int = 0
    n_chunks_cached: int = 0


def plan_run(path: str | Path, settings: AnalysisSettings) -> RunPlan:
    """Fiducial drift of every bin (small windows only), then reference, mask and particles, as in the serial path."""
    warnings: list[str] = []
    with open_run(path) as run:
        run.require_frames()
        n, shape = run.n_frames, run.frame_shape
        pixel_nm = run.pixel_size_nm
        if pixel_nm is None or not pixel_nm > 0:
            warnings.append(f"no pixel size in the file; assumed {DEFAULT_PIXEL_SIZE_NM} nm/px")
            pixel_nm = DEFAULT_PIXEL_SIZE_NM
        first = run.frame(0)
        if not np.isfinite(first).any():
            raise RunFileError(f"{run.path}: the first binned frame holds no finite pixels")
        guess = settings.fiducial_xy_px or _configured_fiducial(run) or locate_fiducial(first)
        try:
            trace = track_fiducial(run.frame_region, n, shape, guess, settings.box_px)
        except ValueError as exc:
            trace = None
            warnings.append(f"drift correction off: {exc}")
        if trace is not None:
            dx_px, dy_px = trace.filled()
            ok = trace.ok
        else:
            dx_px, dy_px, ok = np.zeros(n), np.zeros(n), np.zeros(n, bool)
        segmented = reference_particles(first, dx_px, dy_px, trace, settings.mask_threshold, settings.min_area_px,
                                        str(run.path))
        reference, threshold, labels = segmented.reference, segmented.threshold, segmented.labels
        warnings += segmented.warnings()
        windows = []
        for p in segmented.kept:
            rs, cs = p.slices(segmented.border_px + 2, shape)
            windows.append(ParticleWindow(p.label, p.area_px, rs, cs, labels[rs, cs] == p.label))
        capacity, soc = _capacity_and_soc(run, settings.nominal_capacity_mAh_g)
        time_s = np.asarray(run.binned.time_s, dtype=float)
    return RunPlan(str(Path(path)), n, shape, float(pixel_nm), dx_px, dy_px, ok, reference, tuple(windows),
                   time_s, np.asarray(capacity, float), np.asarray(soc, float), threshold, tuple(warnings))


def read_bins(path: str, start: int, stop: int, windows: list[tuple[slice, slice]]) -> list[np.ndarray]:
    """Bins start..stop-1 of each (rows, cols) window, float32, read straight from the file's HDF5 chunks
    (the file is opened once for the whole chunk)."""
    try:
        with h5py.File(path, "r", locking=False) as handle:
            frames = handle[f"{layout.BINNED}/frames"]
            return [np.asarray(frames[start:stop, rows, cols], dtype=np.float32) for rows, cols in windows]
    except (OSError, RuntimeError, KeyError) as exc:
        raise RunFileError(f"{path}: binned frames {start}..{stop - 1} cannot be read ({exc})") from exc


def analyze_bins(plan: RunPlan, start: int, stop: int, settings: AnalysisSettings,
                 cache_dir: str | None = None) -> tuple[np.ndarray, bool]:
    """(3, n_particles, stop - start): COM distance (nm), mean differential, unreacted fraction of bins
    start..stop-1; and whether it came from the cache in ``cache_dir`` (None: no cache)."""
    blocks = read_bins(plan.path, start, stop, [(p.rows, p.cols) for p in plan.particles])
    references = [plan.reference[p.rows, p.cols] for p in plan.particles]
    key = None
    if cache_dir is not None:
        key = chunk_key(settings, plan.pixel_size_nm, plan.dx_px[start:stop], plan.dy_px[start:stop], blocks,
                        references, [p.mask for p in plan.particles])
        cached = load(cache_dir, key)
        if cached is not None and cached.shape == (3, len(plan.particles), stop - start):
            return cached, True
    out = np.full((3, len(plan.particles), stop - start), np.nan)
    for j, (p, block, ref) in enumerate(zip(plan.particles, blocks, references)):
        out[:, j, :] = particle_chunk_series(block, ref, p.mask, p.area_px, plan.dx_px[start:stop],
                                             plan.dy_px[start:stop], plan.pixel_size_nm,
                                             settings.unreacted_threshold, settings.min_unreacted_fraction)
    if key is not None:
        store(cache_dir, key, out)
    return out, False


def assemble(plan: RunPlan, parts: list[tuple[np.ndarray, bool]]) -> RunResult:
    """Join the chunk results (in bin order) into one :class:`RunResult`."""
    arrays = [a for a, _cached in parts]
    joined = np.concatenate(arrays, axis=2) if arrays else np.full((3, len(plan.particles), 0), np.nan)
    return RunResult(plan, joined[0], joined[1], joined[2], n_chunks=len(parts),
                     n_chunks_cached=sum(1 for _a, cached in parts if cached))


def chunk_bounds(n_frames: int, chunk_bins: int) -> list[tuple[int, int]]:
    """(start, stop) of each chunk of bins."""
    return [(s, min(s + chunk_bins, n_frames)) for s in range(0, n_frames, chunk_bins)]


def _n_frames(path: str | Path) -> int:
    with open_run(path) as run:
        run.require_frames()
        return run.n_frames


def run_graph(path: str | Path, settings: AnalysisSettings | None = None, cache_dir: str | Path | None = None) -> Any:
    """The Dask graph (a ``dask.delayed`` object) of one run's analysis; ``.compute()`` gives a :class:`RunResult`.

    Only the number of bins is read on the client, to lay out the chunks. ``cache_dir``: reuse chunk results
    stored there (see :mod:`operascope.analysis.distributed.cache`); it must be reachable by every worker.
    """
    cache = None if cache_dir is None else str(cache_dir)
    settings = settings or AnalysisSettings()
    stat = Path(path).stat()
    name = f"{Path(path).name}-{tokenize(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, settings, cache)}"
    plan = delayed(plan_run, pure=True)(str(path), settings, dask_key_name=f"plan-{name}")
    parts = [delayed(analyze_bins, pure=True)(plan, s, e, settings, cache, dask_key_name=f"bins-{name}-{s}")
             for s, e in chunk_bounds(_n_frames(path), settings.chunk_bins)]
    return delayed(assemble, pure=True)(plan, parts, dask_key_name=f"run-{name}")
