"""The fused strip kernel (shift + differential) equals the two kernels it replaces on the live path,
bit for bit, for any strip height, shift and frame shape."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.acquisition.live_differential import shift_bilinear
from operascope.acquisition.shift_divide import StripWork, shift_differential
from operascope.analysis.differential import differential_valid, valid_reference

SHIFTS = [(0.3, -0.7), (-2.5, 3.25), (0.0, 0.0), (4.0, -3.0), (1e-3, -1e-3), (15.2, -40.9), (-100.1, 100.1),
          (0.5, 0.0), (0.0, -0.5)]


def two_kernels(image, dx, dy, reference_valid):
    return differential_valid(shift_bilinear(image, dx, dy), reference_valid)


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (7, 9), (64, 81), (101, 33)])
@pytest.mark.parametrize("strip_rows", [1, 3, 32, 500])
def test_fused_kernel_equals_shift_then_divide_on_random_data(shape, strip_rows):
    rng = np.random.default_rng(sum(shape) + strip_rows)
    image = rng.normal(1000.0, 300.0, shape).astype(np.float32)
    reference = rng.normal(1000.0, 300.0, shape).astype(np.float32)
    reference.flat[:: 7] = 0.0                      # unusable pixels: NaN in the result
    mask = rng.random(shape) < 0.7
    ref_valid = valid_reference(reference, mask)
    out = np.full(shape, 123.0, dtype=np.float32)   # stale content must not survive
    work = StripWork(min(strip_rows, shape[0]), shape[1])
    for dx, dy in SHIFTS + [tuple(rng.uniform(-3, 3, 2))]:
        expected = two_kernels(image, dx, dy, ref_valid)
        got = shift_differential(image, dx, dy, ref_valid, out=out, work=work, strip_rows=strip_rows)
        assert got is out
        assert np.array_equal(got, expected, equal_nan=True), (dx, dy)
        assert np.array_equal(shift_differential(image, dx, dy, ref_valid, strip_rows=strip_rows), expected,
                              equal_nan=True), (dx, dy)


def test_fused_kernel_refuses_mismatched_shapes_and_bad_shifts():
    img = np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match="same shape"):
        shift_differential(img, 0.1, 0.1, np.ones((5, 4), np.float32))
    with pytest.raises(ValueError, match="finite shift"):
        shift_differential(img, np.nan, 0.1, np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match="strip_rows"):
        shift_differential(img, 0.1, 0.1, np.ones((4, 5), np.float32), strip_rows=0)
