"""The slice-based live shift and the prepared-reference differential give the results of the
straightforward versions they replaced (np.pad + interpolation; a masked divide), bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.acquisition.live_differential import LiveDifferential, shift_bilinear
from operascope.analysis.differential import differential, differential_valid, valid_reference


def padded_shift_axis(image: np.ndarray, shift_px: float, axis: int) -> np.ndarray:
    """The former kernel: pad with edge values, then two shifted slices weighted (1-f, f)."""
    n = image.shape[axis]
    k = int(np.floor(-shift_px))
    f = np.float32(-shift_px - k)
    pad = abs(k) + 1
    widths = [(0, 0), (0, 0)]
    widths[axis] = (pad, pad)
    padded = np.pad(image, widths, mode="edge")
    index = [slice(None), slice(None)]
    index[axis] = slice(pad + k, pad + k + n)
    out = padded[tuple(index)] * (np.float32(1.0) - f)
    index[axis] = slice(pad + k + 1, pad + k + 1 + n)
    out += padded[tuple(index)] * f
    return out


def padded_shift(image: np.ndarray, dx_px: float, dy_px: float) -> np.ndarray:
    img = np.asarray(image, dtype=np.float32)
    return padded_shift_axis(padded_shift_axis(img, dy_px, 0), dx_px, 1)


def masked_divide(frame: np.ndarray, reference: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The former differential: NaN-filled output, divide where the reference is usable and masked in."""
    f, r = np.asarray(frame, np.float32), np.asarray(reference, np.float32)
    valid = np.isfinite(r) & (r > 0)
    if mask is not None:
        valid &= mask
    out = np.full(f.shape, np.nan, dtype=np.float32)
    np.divide(f - r, r, out=out, where=valid)
    return out


SHIFTS = [(0.3, -0.7), (-2.5, 3.25), (0.0, 0.0), (4.0, -3.0), (1e-3, -1e-3), (15.2, -40.9), (-100.1, 100.1)]


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (7, 9), (64, 81)])
def test_slice_shift_equals_the_padded_shift_on_random_data(shape):
    rng = np.random.default_rng(sum(shape))
    image = rng.normal(1000.0, 300.0, shape).astype(np.float32)
    buffers = [np.empty(shape, dtype=np.float32) for _ in range(3)]
    for dx, dy in SHIFTS + [tuple(rng.uniform(-3, 3, 2))]:
        expected = padded_shift(image, dx, dy)
        assert np.array_equal(shift_bilinear(image, dx, dy), expected), (dx, dy)
        assert np.array_equal(shift_bilinear(image, dx, dy, buffers), expected), (dx, dy)


def test_reused_buffers_do_not_leak_into_the_next_shift():
    rng = np.random.default_rng(3)
    a, b = (rng.random((20, 30), dtype=np.float32) for _ in range(2))
    buffers = [np.full((20, 30), np.nan, dtype=np.float32) for _ in range(3)]
    shift_bilinear(a, 7.5, -3.5, buffers)
    assert np.array_equal(shift_bilinear(b, -0.25, 0.75, buffers), padded_shift(b, -0.25, 0.75))


def test_prepared_reference_differential_equals_the_masked_divide():
    rng = np.random.default_rng(5)
    frame = rng.uniform(100, 4000, (50, 70)).astype(np.float32)
    reference = rng.uniform(100, 4000, (50, 70)).astype(np.float32)
    reference[3, 4], reference[5, 6], reference[7, 8] = 0.0, -2.0, np.nan
    frame[9, 10], frame[11, 12] = np.nan, np.inf
    for mask in (None, rng.random((50, 70)) < 0.4):
        expected = masked_divide(frame, reference, mask)
        assert np.array_equal(differential(frame, reference, mask), expected, equal_nan=True)
        got = differential_valid(frame, valid_reference(reference, mask))
        assert np.array_equal(got, expected, equal_nan=True)
        assert np.isnan(got[3, 4]) and np.isnan(got[5, 6]) and np.isnan(got[7, 8])


def test_prepared_reference_refuses_a_mask_or_frame_of_another_shape():
    reference = np.ones((10, 12), dtype=np.float32)
    with pytest.raises(ValueError, match="mask"):
        valid_reference(reference, np.ones((10, 11), dtype=bool))
    with pytest.raises(ValueError, match="same shape"):
        differential_valid(np.ones((9, 12), dtype=np.float32), valid_reference(reference))


def test_live_differential_equals_the_former_shift_and_divide():
    yy, xx = np.mgrid[0:64, 0:80].astype(np.float32)
    rng = np.random.default_rng(7)

    def scene(dx: float, dy: float) -> np.ndarray:
        img = 1000.0 + 3000.0 * (((xx - 50 - dx) ** 2 + (yy - 32 - dy) ** 2) < 12 ** 2)
        img = img + 8000.0 * np.exp(-((xx - 15 - dx) ** 2 + (yy - 15 - dy) ** 2) / 8.0)
        return (img + rng.normal(0, 5, img.shape)).astype(np.float32)

    live = LiveDifferential(mask_threshold=2500.0, fiducial_xy_px=(15, 15))
    reference = scene(0, 0)
    live.process(reference, 0.0)
    for k, (dx, dy) in enumerate([(0.6, -0.4), (1.3, 0.9), (-0.7, 2.2)], start=1):
        frame = scene(dx, dy)
        out = live.process(frame, float(k))
        expected = masked_divide(padded_shift(frame, -out.drift_x_px, -out.drift_y_px), reference, live.mask)
        assert np.array_equal(out.pixels, expected, equal_nan=True)
