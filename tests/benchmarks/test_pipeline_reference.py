"""The bare reference loop of bench_pipeline does the pipeline's work correctly (a ratio to a wrong
reference would mean nothing): its shift is scipy's bilinear shift, and it writes every bin."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from pipeline_reference import _shift_axis, bare_loop  # noqa: E402


@pytest.mark.parametrize("shift_px", [0.37, -1.62, 3.0, -0.01])
@pytest.mark.parametrize("axis", [0, 1])
def test_the_reference_shift_is_scipys_bilinear_shift_with_nearest_edges(shift_px, axis):
    image = np.random.default_rng(1).normal(1000.0, 50.0, (40, 56)).astype(np.float32)
    out, scratch = np.empty_like(image), np.empty_like(image)
    shifted = _shift_axis(image, shift_px, axis, out, scratch)
    shifts = (shift_px, 0.0) if axis == 0 else (0.0, shift_px)
    expected = ndimage.shift(image.astype(np.float64), shifts, order=1, mode="nearest")
    np.testing.assert_allclose(shifted, expected, rtol=0, atol=1e-2)


def test_the_bare_loop_writes_every_bin_and_reports_user_and_system_cpu(tmp_path):
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:80, 0:96]
    frames = []
    for k in range(5):
        spot = 3000.0 * np.exp(-((xx - 30 - 0.2 * k) ** 2 + (yy - 40) ** 2) / (2 * 2.5 ** 2))
        frames.append(np.clip(1500.0 + spot + rng.normal(0, 20, xx.shape), 0, 4095).astype(np.uint16))
    user_s, system_s = bare_loop(frames, 100, tmp_path / "bare.h5", bin_size=20)
    assert user_s > 0 and system_s >= 0
    with h5py.File(tmp_path / "bare.h5", "r") as f:
        assert f["binned/frames"].shape == (5, 80, 96)
        assert f["differential/frames"].shape == (5, 80, 96)
        mean = np.mean(np.stack(frames[:5] * 4).astype(np.float64), axis=0)   # bin 1: frames 0-4, four times
        np.testing.assert_allclose(f["binned/frames"][0], mean, rtol=1e-6)
        assert np.nanmax(np.abs(f["differential/frames"][0])) == 0.0          # the reference against itself
