"""The fast per-particle chunk kernel against the per-frame reference path it replaces (equal to float rounding)."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.analysis.differential import differential
from operascope.analysis.drift import shift_image, shift_stack
from operascope.analysis.particle_chunk import particle_chunk_series, particle_statics
from operascope.analysis.reaction_front import front_com, rim_erosion_px, unreacted_region


@pytest.mark.parametrize("shape", [(6, 40, 52), (3, 5, 9), (2, 1, 30)])
def test_shift_stack_equals_shift_image_per_frame(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(3)
    stack = rng.normal(1000.0, 100.0, shape).astype(np.float32)
    dx = rng.uniform(-4.0, 4.0, shape[0])
    dy = rng.uniform(-4.0, 4.0, shape[0])
    dx[0], dy[1] = 15.3, -40.2   # beyond ndimage's 12 px pre-padding: taps clamped like ndimage
    dx[-1] = 2.0                 # an integer shift
    fast = shift_stack(stack, dx, dy)
    reference = np.stack([shift_image(stack[k], dx[k], dy[k]) for k in range(shape[0])])
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, reference, rtol=1e-6, atol=1e-3)


def test_shift_stack_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="one shift per frame"):
        shift_stack(np.zeros((2, 4, 4)), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        shift_stack(np.zeros((1, 4, 4)), np.array([np.nan]), np.zeros(1))
    with pytest.raises(ValueError, match=r"\(n, h, w\)"):
        shift_stack(np.zeros((4, 4)), np.zeros(1), np.zeros(1))


def _scene(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A disc particle whose brightening front sweeps in from the left, drifting, with noise."""
    h, w = 48, 56
    yy, xx = np.mgrid[0:h, 0:w]
    disc = (xx - 28.0) ** 2 + (yy - 24.0) ** 2 <= 14.0 ** 2
    base = np.where(disc, 4000.0, 2000.0)
    frames = []
    dx = np.cumsum(rng.normal(0, 0.3, n))
    dy = np.cumsum(rng.normal(0, 0.3, n))
    for k in range(n):
        front = 14.0 + 36.0 * k / max(n - 1, 1)
        image = base * np.where(disc & (xx < front), 1.2, 1.0)
        frames.append(image + rng.normal(0.0, 20.0, image.shape))
    stack = np.asarray(frames, dtype=np.float32)
    drifted = np.stack([shift_image(f, a, b) for f, a, b in zip(stack, dx, dy)])
    reference = shift_image(drifted[0], -dx[0], -dy[0])
    return drifted, reference, disc, dx, dy


def _per_frame(block, reference, mask, area_px, dx, dy, pixel_nm, threshold, min_fraction) -> np.ndarray:
    """The per-frame path (what analysis/report.py did before the chunk kernel)."""
    out = np.full((3, block.shape[0]), np.nan)
    for k in range(block.shape[0]):
        corrected = shift_image(block[k], -dx[k], -dy[k])
        diff = differential(corrected, reference, mask)
        out[0, k] = front_com(diff, mask, rim_erosion_px(pixel_nm), threshold, min_fraction,
                              reference=reference).distance_px * pixel_nm
        out[1, k] = float(np.nanmean(diff[mask]))
        out[2, k] = unreacted_region(diff, mask, threshold).sum() / max(area_px, 1)
    return out


@pytest.mark.parametrize("threshold", [0.05, 0.15])
def test_chunk_kernel_equals_per_frame_path(threshold: float) -> None:
    rng = np.random.default_rng(7)
    block, reference, mask, dx, dy = _scene(12, rng)
    area = int(mask.sum())
    fast = particle_chunk_series(block, reference, mask, area, dx, dy, 34.7, threshold, 0.05)
    slow = _per_frame(block, reference, mask, area, dx, dy, 34.7, threshold, 0.05)
    assert np.isfinite(slow[0]).sum() >= 3
    if threshold == 0.05:
        assert np.isnan(slow[0]).sum() >= 1   # the swept-particle (NaN) regime is exercised too
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_chunk_kernel_on_a_flat_reference_falls_back_like_front_com() -> None:
    rng = np.random.default_rng(8)
    block = rng.normal(1000.0, 30.0, (4, 30, 30)).astype(np.float32)
    reference = np.full((30, 30), 1000.0, dtype=np.float32)     # no particle contrast: no coverage correction
    mask = np.zeros((30, 30), dtype=bool)
    mask[8:22, 8:22] = True
    dx, dy = rng.normal(0, 0.5, 4), rng.normal(0, 0.5, 4)
    fast = particle_chunk_series(block, reference, mask, int(mask.sum()), dx, dy, 34.7)
    slow = _per_frame(block, reference, mask, int(mask.sum()), dx, dy, 34.7, 0.05, 0.05)
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_chunk_kernel_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="must be"):
        particle_chunk_series(np.zeros((2, 10, 10)), np.ones((9, 10)), np.ones((10, 10), bool), 100,
                              np.zeros(2), np.zeros(2), 34.7)


def test_shift_stack_of_a_sub_window_equals_the_cut_of_the_whole() -> None:
    rng = np.random.default_rng(5)
    stack = rng.normal(1000.0, 100.0, (5, 37, 43)).astype(np.float32)
    dx, dy = rng.uniform(-6.0, 6.0, 5), rng.uniform(-6.0, 6.0, 5)
    dx[0] = 20.5                  # taps clamped at the edge for this frame
    whole = shift_stack(stack, dx, dy)
    for rows, cols in ((slice(5, 30), slice(8, 40)), (slice(0, 37), slice(0, 1)), (slice(36, 37), slice(0, 43))):
        part = shift_stack(stack, dx, dy, rows, cols)
        assert part.shape == (5, rows.stop - rows.start, cols.stop - cols.start) and part.flags.c_contiguous
        np.testing.assert_array_equal(part, whole[:, rows, cols])
    with pytest.raises(ValueError, match="rows"):
        shift_stack(stack, dx, dy, slice(10, 10), None)
    with pytest.raises(ValueError, match="cols"):
        shift_stack(stack, dx, dy, None, slice(0, 40, 2))


def test_shift_stack_with_runs_of_equal_taps_equals_shift_image() -> None:
    """Slow drift: successive frames share their integer offset and are interpolated together."""
    rng = np.random.default_rng(11)
    stack = rng.normal(1000.0, 100.0, (9, 30, 34)).astype(np.float32)
    dx = np.array([0.1, 0.2, 0.3, 1.4, 1.5, 1.6, -2.2, -2.1, 14.9])
    dy = np.array([0.0, 0.05, 0.1, 0.15, -0.7, -0.6, -0.5, 3.3, 3.4])
    fast = shift_stack(stack, dx, dy, slice(2, 27), slice(3, 30))
    reference = np.stack([shift_image(stack[k], dx[k], dy[k]) for k in range(9)])[:, 2:27, 3:30]
    np.testing.assert_allclose(fast, reference, rtol=1e-6, atol=1e-3)


def test_chunk_kernel_with_statics_computed_once_gives_the_same_series() -> None:
    rng = np.random.default_rng(9)
    block, reference, mask, dx, dy = _scene(10, rng)
    area = int(mask.sum())
    statics = particle_statics(reference, mask, 34.7)
    for start, stop in ((0, 4), (4, 10)):
        once = particle_chunk_series(block[start:stop], reference, mask, area, dx[start:stop], dy[start:stop], 34.7,
                                     statics=statics)
        every = particle_chunk_series(block[start:stop], reference, mask, area, dx[start:stop], dy[start:stop], 34.7)
        np.testing.assert_array_equal(once, every)
    with pytest.raises(ValueError, match="statics"):
        particle_chunk_series(block[:2], reference, mask, area, dx[:2], dy[:2], 30.0, statics=statics)
    with pytest.raises(ValueError, match="one"):
        particle_statics(reference[:-1], mask, 34.7)
