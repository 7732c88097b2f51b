"""Reused output arrays on the live path: an array still held anywhere (writer queue, live slot, a
view) is never handed out again, so a bin or differential image is never overwritten under a reader."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.acquisition.array_pool import ArrayPool
from operascope.acquisition.binner import Binner
from operascope.acquisition.live_differential import LiveDifferential, shift_bilinear
from operascope.analysis.differential import differential_valid, valid_reference
from operascope.devices.base import Frame


def test_pool_reuses_only_arrays_nobody_else_holds():
    pool = ArrayPool(capacity=2)
    a = pool.take((4, 5))
    a_id = id(a)
    b = pool.take((4, 5))
    assert b is not a
    view = a[1:3]
    del a
    c = pool.take((4, 5))          # a is still referred to through its view; b is held
    assert id(c) != a_id and c is not b
    del view
    d = pool.take((4, 5))
    assert id(d) == a_id and pool.reused == 1
    assert pool.allocated == 3      # c was made outside the full pool


def test_pool_lets_free_arrays_of_an_old_shape_go():
    pool = ArrayPool(capacity=1)
    pool.take((4, 5))               # dropped at once: free
    e = pool.take((6, 5))
    assert e.shape == (6, 5) and pool.take((6, 5)).shape == (6, 5)
    with pytest.raises(ValueError, match="capacity"):
        ArrayPool(-1)


def frame(k: int, value: float, shape=(6, 7)) -> Frame:
    return Frame(np.full(shape, value, dtype=np.uint16), k, k * 1000, float(k))


def test_binned_means_held_by_a_consumer_keep_their_values():
    binner = Binner(2)
    held = []
    for k in range(40):
        out = binner.add(frame(k, 10 * (k // 2) + 1))
        if out is not None:
            held.append(out)
            if len(held) > 3:        # a consumer letting go of older bins: those arrays get reused
                held.pop(0)
            for b in held:
                assert np.all(b.pixels == 10 * b.index + 1), b.index
    assert binner._means.reused > 0


def drifting_scene(k: int, shape=(60, 80)) -> np.ndarray:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    cx, cy = 40 + 0.3 * k, 30 - 0.2 * k
    img = 1000.0 + 300.0 * np.sin(xx / 7.0) * np.cos(yy / 5.0)
    img += 5000.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 2.5 ** 2))
    return img.astype(np.float32)


def test_live_differential_equals_shift_then_divide_and_held_outputs_stay_intact():
    live = LiveDifferential(mask_threshold=900.0, fiducial_xy_px=(40.0, 30.0))
    held = []
    for k in range(12):
        image = drifting_scene(k)
        diff = live.process(image, float(k))
        if k == 0:
            reference_valid = valid_reference(image, live.mask)
        shifted = shift_bilinear(image, -diff.drift_x_px, -diff.drift_y_px) if k else image
        expected = differential_valid(shifted, reference_valid)
        assert np.array_equal(diff.pixels, expected, equal_nan=True), k
        held.append((diff, expected))
        if len(held) > 2:
            held.pop(0)
        for d, e in held:
            assert np.array_equal(d.pixels, e, equal_nan=True)
    assert abs(held[-1][0].drift_x_px) > 0.01
    assert live._outputs.reused > 0


@pytest.mark.parametrize("bin_size, shape", [(20, (130, 37)), (3, (64, 5)), (300, (70, 9)), (1, (2, 2))])
def test_bin_means_equal_the_former_sum_then_divide(bin_size, shape):
    """The last frame of a bin is added and the mean taken strip by strip: same bits as before."""
    rng = np.random.default_rng(bin_size)
    frames = [rng.integers(0, 65536, shape, dtype=np.uint16) for _ in range(2 * bin_size + 1)]
    binner = Binner(bin_size)
    bins = [b for k, f in enumerate(frames) if (b := binner.add(Frame(f, k, k * 1000, float(k)))) is not None]
    bins += [b for b in [binner.flush()] if b is not None]
    assert len(bins) == 3              # two full bins and a partial one (three full ones of 1 frame)
    dtype = np.float32 if bin_size <= 256 else np.float64
    for b in bins:
        chunk = frames[b.first_frame_id:b.last_frame_id + 1]
        total = np.empty(shape, dtype=dtype)
        np.copyto(total, chunk[0], casting="unsafe")
        for f in chunk[1:]:
            np.add(total, f, out=total)
        expected = np.multiply(total, 1.0 / len(chunk), dtype=np.float32)
        assert b.n_frames == len(chunk) and np.array_equal(b.pixels, expected), b.index
