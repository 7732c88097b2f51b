"""Synthetic run files with known truth (drift, reaction fronts), for tests and benchmarks.

Frames are rendered as: background + particles (discs whose intensity rises by ``contrast`` where
they have reacted; the unreacted core is a disc that shrinks and may sit off-centre) blurred by a
Gaussian PSF, moved by a known sub-pixel drift (Fourier shift, exact for band-limited images),
plus a pixel-integrated Gaussian fiducial at the drifted position, then Poisson noise.
The file follows DESIGN.md "The run file" (paths from operascope.analysis.runfile_layout), written with h5py.
Drift convention: +drift_x_nm moves image content towards higher column index.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np
from scipy import ndimage

from operascope.analysis import runfile_layout as layout
from operascope.analysis.fiducial import spot_model


@dataclass(frozen=True)
class SyntheticParticle:
    """A disc particle (px) whose unreacted core shrinks linearly from radius to 0 over the run.

    The core centre moves from the particle centre to ``core_offset_xy_px`` (fraction of the way
    given by the core progress), so the COM distance of the unreacted region is known.
    """

    x_px: float
    y_px: float
    radius_px: float
    core_offset_xy_px: tuple[float, float] = (0.0, 0.0)
    brightness: float = 1.0      # particle intensity relative to the background


def render_frame(
    shape: tuple[int, int],
    particles: list[SyntheticParticle],
    progress_fraction: float,
    background: float,
    contrast: float,
    psf_sigma_px: float,
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Noise-free undrifted image and, per particle, the true unreacted-core offset (dx, dy) in px.

    ``progress_fraction`` 0..1: core radius = radius * (1 - progress); core centre offset =
    core_offset * progress.
    """
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    image = np.full(shape, float(background))
    offsets = []
    for p in particles:
        inside = (xx - p.x_px) ** 2 + (yy - p.y_px) ** 2 <= p.radius_px**2
        core_r = p.radius_px * (1.0 - progress_fraction)
        ox, oy = p.core_offset_xy_px[0] * progress_fraction, p.core_offset_xy_px[1] * progress_fraction
        core = (xx - p.x_px - ox) ** 2 + (yy - p.y_px - oy) ** 2 <= core_r**2
        level = np.where(core, 1.0, 1.0 + contrast) * p.brightness * background
        image = np.where(inside, background + level, image)
        offsets.append((ox, oy))
    return ndimage.gaussian_filter(image, psf_sigma_px, mode="nearest"), offsets


def shift_content(image: np.ndarray, dx_px: float, dy_px: float) -> np.ndarray:
    """Move content by (dx, dy) with a Fourier shift (periodic; keep content away from edges)."""
    spectrum = ndimage.fourier_shift(np.fft.rfft2(image), (dy_px, dx_px), n=image.shape[1])
    return np.fft.irfft2(spectrum, s=image.shape)


@dataclass(frozen=True)
class RunTruth:
    """What the synthetic file was built from."""

    time_s: np.ndarray
    drift_x_nm: np.ndarray
    drift_y_nm: np.ndarray
    core_offsets_px: np.ndarray   # (n_frames, n_particles, 2)
    capacity_mAh_g: np.ndarray


def write_run_file(
    path: str | Path,
    frames: Iterable[np.ndarray],
    shape: tuple[int, int],
    time_s: np.ndarray,
    capacity_mAh_g: np.ndarray,
    voltage_v: np.ndarray,
    current_a: np.ndarray,
    pixel_size_nm: float,
    active_mass_mg: float | None = 1.0,
    truth_drift_nm: tuple[np.ndarray, np.ndarray] | None = None,
    focus_log: dict[str, np.ndarray] | None = None,
    compression: str | None = None,
) -> Path:
    """Write binned frames + logs in the run-file layout (NaN-free float32 frames, one chunk per frame)."""
    p = Path(path)
    n = len(time_s)
    with h5py.File(p, "w") as f:
        entry = f.create_group(layout.ENTRY)
        entry.attrs["NX_class"] = "NXentry"
        entry.create_dataset("title", data="synthetic run")
        binned = f.create_group(layout.BINNED)
        binned.attrs["NX_class"] = "NXdata"
        binned.attrs["signal"] = "frames"
        ds = binned.create_dataset("frames", shape=(n, *shape), dtype=np.float32, chunks=(1, *shape),
                                   compression=compression)
        for k, frame in enumerate(frames):
            ds[k] = frame
        binned.create_dataset("time", data=np.asarray(time_s, float))
        binned.create_dataset("voltage", data=np.asarray(voltage_v, float))
        binned.create_dataset("current", data=np.asarray(current_a, float))
        binned.create_dataset("capacity_mAh_g", data=np.asarray(capacity_mAh_g, float))
        binned.create_dataset("n_frames_in_bin", data=np.full(n, 20, dtype=np.int32))
        binned.create_dataset("partial", data=np.zeros(n, dtype=np.uint8))
        camera = f.create_group(layout.CAMERA)
        camera.create_dataset("pixel_size", data=float(pixel_size_nm))
        sample = f.create_group(layout.SAMPLE)
        if active_mass_mg is not None:
            sample.create_dataset("active_mass_mg", data=float(active_mass_mg))
        echem = f.create_group(layout.ELECTROCHEMISTRY)
        echem.create_dataset("time", data=np.asarray(time_s, float))
        echem.create_dataset("voltage", data=np.asarray(voltage_v, float))
        echem.create_dataset("current", data=np.asarray(current_a, float))
        echem.create_dataset("capacity_mAh_g", data=np.asarray(capacity_mAh_g, float))
        echem.create_dataset("step", data=np.ones(n, dtype=np.int32))
        echem.create_dataset("cycle", data=np.zeros(n, dtype=np.int32))
        if truth_drift_nm is not None:
            sim = f.create_group(layout.SIMULATION)
            sim.create_dataset("time", data=np.asarray(time_s, float))
            sim.create_dataset("drift_x_nm", data=np.asarray(truth_drift_nm[0], float))
            sim.create_dataset("drift_y_nm", data=np.asarray(truth_drift_nm[1], float))
        if focus_log is not None:
            log = f.create_group(f"{layout.FOCUS_LOCK}/log")
            for name, values in focus_log.items():
                log.create_dataset(name, data=np.asarray(values))
    return p


def make_synthetic_run(
    path: str | Path,
    n_frames: int = 12,
    shape: tuple[int, int] = (96, 128),
    particles: list[SyntheticParticle] | None = None,
    fiducial_xy_px: tuple[float, float] = (110.0, 80.0),
    fiducial_photons: float = 2e5,
    background: float = 2000.0,
    contrast: float = 0.2,
    psf_sigma_px: float = 3.2,
    pixel_size_nm: float = 34.7,
    drift_rate_nm_per_frame: tuple[float, float] = (6.0, -4.0),
    drift_jitter_nm: float = 2.0,
    seed: int = 0,
) -> RunTruth:
    """Render and write a small synthetic charge run; returns the truth it was built from."""
    rng = np.random.default_rng(seed)
    if particles is None:
        particles = [SyntheticParticle(40.0, 45.0, 18.0, (6.0, -3.0))]
    k = np.arange(n_frames, dtype=float)
    drift_x = drift_rate_nm_per_frame[0] * k + rng.normal(0, drift_jitter_nm, n_frames)
    drift_y = drift_rate_nm_per_frame[1] * k + rng.normal(0, drift_jitter_nm, n_frames)
    drift_x -= drift_x[0]
    drift_y -= drift_y[0]
    time_s = 10.0 * k + 5.0
    progress = k / max(n_frames - 1, 1) * 0.8
    capacity = 200.0 * progress
    voltage = 3.6 + 0.6 * progress
    current = np.full(n_frames, 1e-4)
    offsets = np.zeros((n_frames, len(particles), 2))

    def frames() -> Iterable[np.ndarray]:
        for i in range(n_frames):
            clean, offs = render_frame(shape, particles, float(progress[i]), background, contrast, psf_sigma_px)
            offsets[i] = offs
            dx_px, dy_px = drift_x[i] / pixel_size_nm, drift_y[i] / pixel_size_nm
            moved = shift_content(clean, dx_px, dy_px)
            spot, _ = spot_model(np.array([[fiducial_xy_px[0] + dx_px, fiducial_xy_px[1] + dy_px, psf_sigma_px,
                                            fiducial_photons, 0.0]]), shape)
            yield rng.poisson(np.clip(moved + spot[0], 0, None)).astype(np.float32)

    write_run_file(path, frames(), shape, time_s, capacity, voltage, current, pixel_size_nm,
                   truth_drift_nm=(drift_x, drift_y),
                   focus_log={"time": time_s, "error_nm": rng.normal(0, 5, n_frames), "z_nm": 1000 + k,
                              "state": np.full(n_frames, 3, dtype=np.int8)})
    return RunTruth(time_s, drift_x, drift_y, offsets, capacity)
