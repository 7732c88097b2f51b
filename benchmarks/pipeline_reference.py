"""The bare reference loop of bench_pipeline: the pipeline's work per frame with nothing else.

One thread, plain numpy + h5py: copy the camera frame (a driver hands over its own buffer), sum 20
frames in float32, mean, fit the fiducial (the same ``fit_spot`` the pipeline uses), undo the drift with
a slice-based bilinear shift, divide by the reference inside a cached validity mask, and append the
binned and differential frames and their per-bin metadata (the same 13 columns) to an SWMR file,
flushed after every bin. Returns the CPU seconds (user, system) of that thread per camera frame after the
reference bin.
"""

from __future__ import annotations

import resource
from pathlib import Path

import h5py
import numpy as np

from operascope.analysis.fiducial import fit_spot, locate_fiducial

BINNED_COLUMNS = ("time", "n_frames_in_bin", "first_frame_id", "last_frame_id", "partial", "dropped_in_bin",
                  "voltage", "current", "capacity_mAh_g")
DIFFERENTIAL_COLUMNS = ("time", "drift_x_px", "drift_y_px", "fit_ok")


def _shift_axis(img: np.ndarray, shift_px: float, axis: int, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Linear interpolation along one axis from two slices into ``out`` (``scratch``: a work array of the same
    shape); edge rows/columns repeated."""
    n = img.shape[axis]
    k = int(np.floor(-shift_px))
    f = np.float32(-shift_px - k)
    src = np.clip(np.arange(n) + k, 0, n - 1)
    nxt = np.clip(np.arange(n) + k + 1, 0, n - 1)
    lo, hi = max(-k, 0), min(n - k - 1, n)
    take = (lambda a, b: (slice(a, b), slice(None))) if axis == 0 else (lambda a, b: (slice(None), slice(a, b)))
    np.multiply(img[take(lo + k, hi + k)], 1 - f, out=out[take(lo, hi)])
    out[take(lo, hi)] += np.multiply(img[take(lo + k + 1, hi + k + 1)], f, out=scratch[take(lo, hi)])
    for i in list(range(0, lo)) + list(range(hi, n)):
        out[take(i, i + 1)] = img[take(src[i], src[i] + 1)] * (1 - f) + img[take(nxt[i], nxt[i] + 1)] * f
    return out


def _appendable(group: h5py.Group, name: str, shape: tuple[int, ...], dtype: str) -> h5py.Dataset:
    return group.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape),
                                chunks=(1, *shape) if shape else (256,), dtype=dtype)


def _append(ds: h5py.Dataset, value) -> None:
    n = ds.shape[0]
    ds.resize(n + 1, axis=0)
    ds[n] = value


def thread_user_system_s() -> tuple[float, float]:
    """CPU seconds (user, system) of the calling thread so far."""
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime, usage.ru_stime


def bare_loop(frames: list[np.ndarray], n_frames: int, path: Path, bin_size: int = 20) -> tuple[float, float]:
    """CPU seconds (user, system) per frame of the bare loop over ``n_frames`` frames (cycling through ``frames``)."""
    shape = frames[0].shape
    with h5py.File(path, "w", libver=("v110", "v110")) as f:
        binned_g, diff_g = f.create_group("binned"), f.create_group("differential")
        binned = _appendable(binned_g, "frames", shape, "f4")
        diff = _appendable(diff_g, "frames", shape, "f4")
        cols = {("b", c): _appendable(binned_g, c, (), "f8") for c in BINNED_COLUMNS}
        cols.update({("d", c): _appendable(diff_g, c, (), "f8") for c in DIFFERENTIAL_COLUMNS})
        f.swmr_mode = True
        t0 = counted_from = None           # timed from the 2nd bin on (the pipeline's figure skips its warm-up too)
        total = np.zeros(shape, dtype=np.float32)
        # every array is made once and reused (fresh 9 MB arrays per bin cost page faults, see bench_pipeline)
        mean, rows, cols_done, scratch, relative = (np.empty(shape, dtype=np.float32) for _ in range(5))
        reference = valid = ref_xy = None
        for k in range(n_frames):
            pixels = frames[k % len(frames)].copy()
            np.add(total, pixels, out=total)
            if (k + 1) % bin_size:
                continue
            np.multiply(total, np.float32(1.0 / bin_size), out=mean)
            total[...] = 0.0
            dx = dy = 0.0
            if reference is None:
                reference = mean.copy()
                ref_xy = locate_fiducial(mean)
                spot = fit_spot(mean, guess_xy=ref_xy)
                ref_xy = last_xy = (spot.x_px, spot.y_px)
                valid = np.where(mean > np.percentile(mean, 60), mean, np.float32(np.nan))
                corrected = mean
            else:
                spot = fit_spot(mean, guess_xy=last_xy)
                last_xy = (spot.x_px, spot.y_px)
                dx, dy = spot.x_px - ref_xy[0], spot.y_px - ref_xy[1]
                corrected = mean
                if max(abs(dx), abs(dy)) > 0.01:
                    corrected = _shift_axis(_shift_axis(mean, -dy, 0, rows, scratch), -dx, 1, cols_done, scratch)
            np.subtract(corrected, valid, out=relative)
            np.divide(relative, valid, out=relative)
            _append(binned, mean)
            _append(diff, relative)
            for key, ds in cols.items():
                _append(ds, {"drift_x_px": dx, "drift_y_px": dy}.get(key[1], float(k)))
            f.flush()
            if t0 is None:
                t0, counted_from = thread_user_system_s(), k + 1
        t1, frames_counted = thread_user_system_s(), n_frames - counted_from
        return (t1[0] - t0[0]) / frames_counted, (t1[1] - t0[1]) / frames_counted
