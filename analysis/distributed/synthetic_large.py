"""Large synthetic runs, fast: a few clean frames rendered once (reaction progress in steps), each binned frame
one of them plus the fiducial and fresh Poisson noise, streamed to the file one frame at a time (the generator
itself holds a few frames, never the run). For memory tests and benchmarks of the Dask path."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from operascope.analysis.fiducial import spot_model
from operascope.analysis.synthetic_run import SyntheticParticle, render_frame, write_run_file


def make_large_run(path: str | Path, n_frames: int, shape: tuple[int, int] = (512, 512),
                   n_progress_steps: int = 8, seed: int = 0, pixel_size_nm: float = 34.7) -> Path:
    """Write ``n_frames`` binned frames of ``shape`` (float32, one HDF5 chunk per frame); no drift.

    Three particles and a fiducial; the unreacted cores shrink in ``n_progress_steps`` steps.
    File size is about n_frames x h x w x 4 bytes.
    """
    if n_frames < 2:
        raise ValueError(f"n_frames must be >= 2, got {n_frames}")
    h, w = shape
    if h < 160 or w < 160:
        raise ValueError(f"shape must be at least 160 x 160 px, got {shape}")
    rng = np.random.default_rng(seed)
    particles = [SyntheticParticle(0.25 * w, 0.3 * h, 16.0, (5.0, -2.0)),
                 SyntheticParticle(0.5 * w, 0.6 * h, 14.0, (-3.0, 3.0)),
                 SyntheticParticle(0.3 * w, 0.75 * h, 12.0, (2.0, 2.0))]
    fiducial, _ = spot_model(np.array([[0.8 * w, 0.2 * h, 3.2, 2e5, 0.0]]), shape)
    levels = np.linspace(0.0, 0.8, n_progress_steps)
    clean = [render_frame(shape, particles, float(p), 2000.0, 0.2, 3.2)[0] + fiducial[0] for p in levels]
    k = np.arange(n_frames, dtype=float)
    progress = k / (n_frames - 1) * 0.8
    step = np.minimum((k / n_frames * n_progress_steps).astype(int), n_progress_steps - 1)

    def frames() -> Iterator[np.ndarray]:
        for i in range(n_frames):
            yield rng.poisson(clean[step[i]]).astype(np.float32)

    return write_run_file(path, frames(), shape, 10.0 * k + 5.0, 200.0 * progress, 3.6 + 0.6 * progress,
                          np.full(n_frames, 1e-4), pixel_size_nm)
