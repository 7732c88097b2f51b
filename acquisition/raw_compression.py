"""Raw-frame compression: the filters a run file may use, how to read each, and a rate check.

Chosen by ``benchmarks/bench_runfile.py`` (1920x1200 Mono16, this machine): bitshuffle+LZ4 (via
``hdf5plugin``) ~180 frames/s at ~1.8x; gzip level 1 + shuffle ~14 frames/s at ~1.9x (too close to the
10 Hz the experiment needs); lzf + shuffle ~23 frames/s at ~1.3x and readable only by h5py.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DEFAULT = "bitshuffle-lz4"
#: A filter must compress at least this many times the frame rate (the writer also bins and logs).
RATE_MARGIN = 1.5


@dataclass(frozen=True)
class Filter:
    """One compression choice: its h5py arguments and how a reader opens it."""

    name: str
    howto: str

    def h5py_kwargs(self) -> dict[str, Any]:
        if self.name == "none":
            return {}
        if self.name == "gzip":
            return {"compression": "gzip", "compression_opts": 1, "shuffle": True}
        if self.name == "lzf":
            return {"compression": "lzf", "shuffle": True}
        import hdf5plugin  # registers the filters with HDF5 for this process

        if self.name == "bitshuffle-lz4":
            return dict(hdf5plugin.Bitshuffle(cname="lz4"))
        return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.BITSHUFFLE))


FILTERS = {
    "none": Filter("none", "uncompressed: every HDF5 reader"),
    "gzip": Filter("gzip", "deflate level 1 + shuffle: every HDF5 reader (h5py, h5dump, HDF5 1.8+, Fiji)"),
    "lzf": Filter("lzf", "lzf + shuffle: h5py only (not h5dump, not other languages)"),
    "bitshuffle-lz4": Filter("bitshuffle-lz4", "bitshuffle+LZ4 (HDF5 filter 32008): python: `import hdf5plugin` "
                             "before h5py; h5dump/HDF5 tools: HDF5_PLUGIN_PATH=$(python -c 'import hdf5plugin; "
                             "print(hdf5plugin.PLUGIN_PATH)')"),
    "blosc-lz4": Filter("blosc-lz4", "Blosc LZ4 + bitshuffle (HDF5 filter 32001): python: `import hdf5plugin` "
                        "before h5py; h5dump/HDF5 tools: HDF5_PLUGIN_PATH=$(python -c 'import hdf5plugin; "
                        "print(hdf5plugin.PLUGIN_PATH)')"),
}


def get_filter(name: str) -> Filter:
    """The :class:`Filter` called ``name``; ValueError naming the allowed ones otherwise."""
    try:
        return FILTERS[name]
    except KeyError:
        raise ValueError(f"raw compression {name!r} is not known; use one of {', '.join(FILTERS)}") from None


def sample_frame(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A Mono16 frame like the camera's: 12-bit smooth background + shot noise, shifted to 16 bits."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    base = 800.0 + 300.0 * np.sin(xx / 40.0) * np.cos(yy / 55.0)
    noise = np.random.default_rng(seed).normal(0.0, 20.0, (h, w))
    return (np.clip(base + noise, 0, 4095).astype(np.uint16) << 4).astype(np.uint16)


def measure_frames_per_s(name: str, shape: tuple[int, int], n_frames: int = 3) -> tuple[float, float]:
    """(frames/s, compression ratio) of filter ``name`` writing ``n_frames`` frames to an in-memory file."""
    import h5py

    flt = get_filter(name)
    frame = sample_frame(shape)
    with h5py.File(f"bench-{time.monotonic_ns()}.h5", "w", driver="core", backing_store=False) as f:
        ds = f.create_dataset("frames", shape=(n_frames, *shape), chunks=(1, *shape), dtype="u2",
                              **flt.h5py_kwargs())
        t0 = time.perf_counter()
        for k in range(n_frames):
            ds[k] = frame
        f.flush()
        elapsed = max(time.perf_counter() - t0, 1e-9)
        stored = ds.id.get_storage_size() or 1
    return n_frames / elapsed, frame.nbytes * n_frames / stored


def check_rate(name: str, shape: tuple[int, int], frame_rate_hz: float) -> str | None:
    """Refuse (ValueError) a filter that cannot compress at the frame rate; a warning text if it has
    less than :data:`RATE_MARGIN` headroom, else None."""
    if name == "none" or frame_rate_hz <= 0:
        return None
    rate, _ = measure_frames_per_s(name, shape)
    if rate < frame_rate_hz:
        raise ValueError(f"raw compression {name!r} holds only {rate:.1f} frames/s of {shape[1]}x{shape[0]} here; "
                         f"the camera runs at {frame_rate_hz:g} Hz; use raw_compression = \"{DEFAULT}\" or \"none\"")
    if rate < RATE_MARGIN * frame_rate_hz:
        return (f"raw compression {name!r} holds {rate:.1f} frames/s, close to the {frame_rate_hz:g} Hz frame rate; "
                f"raw frames may back up the writer")
    log.info("raw compression %s: %.0f frames/s measured (camera %.3g Hz)", name, rate, frame_rate_hz)
    return None
