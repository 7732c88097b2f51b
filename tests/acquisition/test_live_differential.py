"""Live differential: fast bilinear shift, reference, mask, drift correction."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from operascope.acquisition.live_differential import LiveDifferential, shift_bilinear


@pytest.mark.parametrize("dx, dy", [(0.3, -0.7), (-2.25, 1.5), (0.0, 3.0), (5.9, -4.1)])
def test_bilinear_shift_matches_scipy_order_1_nearest(dx, dy):
    image = np.random.default_rng(1).normal(100, 20, (37, 53)).astype(np.float32)
    expected = ndimage.shift(image, (dy, dx), order=1, mode="nearest")
    np.testing.assert_allclose(shift_bilinear(image, dx, dy), expected, rtol=1e-5, atol=1e-3)


def spot_scene(dx: float = 0.0, dy: float = 0.0, particle_gain: float = 1.0) -> np.ndarray:
    yy, xx = np.mgrid[0:64, 0:80].astype(float)
    img = 1000.0 + 3000.0 * particle_gain * (((xx - 50 - dx) ** 2 + (yy - 32 - dy) ** 2) < 12 ** 2)
    img += 8000.0 * np.exp(-((xx - 15 - dx) ** 2 + (yy - 15 - dy) ** 2) / (2 * 2.0 ** 2))
    return ndimage.gaussian_filter(img, 1.0).astype(np.float32)


def test_differential_is_relative_change_inside_the_mask_after_drift_correction():
    live = LiveDifferential(mask_threshold=2500.0, fiducial_xy_px=(15, 15))
    first = live.process(spot_scene(), 0.0)
    assert np.nanmax(np.abs(first.pixels)) == 0.0 and first.fit_ok
    mask = live.mask
    assert mask[32, 50] and not mask[5, 70]
    # the sample drifts by (1.4, -0.8) px and the particle brightens by 10 %
    later = live.process(spot_scene(1.4, -0.8, particle_gain=1.1), 10.0)
    assert later.drift_x_px == pytest.approx(1.4, abs=0.05) and later.drift_y_px == pytest.approx(-0.8, abs=0.05)
    assert np.all(np.isnan(later.pixels[~mask]))
    core = later.pixels[26:38, 44:56]
    assert np.nanmedian(core) == pytest.approx((1000 + 3300) / (1000 + 3000) - 1.0, abs=0.01)   # +7.5 %


def test_without_drift_correction_the_frame_is_used_as_is():
    live = LiveDifferential(mask_threshold=2500.0, drift_correction=False)
    live.process(spot_scene(), 0.0)
    later = live.process(spot_scene(1.0, 0.0), 1.0)
    assert later.drift_x_px == 0.0 and not later.fit_ok
    assert np.nanmax(np.abs(later.pixels)) > 0.2       # the uncorrected edge of the particle shows up


def test_reset_makes_the_next_frame_the_reference():
    live = LiveDifferential(mask_threshold=2500.0)
    live.process(spot_scene(), 0.0)
    live.reset()
    again = live.process(spot_scene(particle_gain=1.2), 5.0)
    assert again.index == 0 and np.nanmax(np.abs(again.pixels)) == 0.0


def test_fiducial_is_found_without_a_hint_even_when_a_particle_is_brighter():
    def scene(dx: float, dy: float) -> np.ndarray:
        yy, xx = np.mgrid[0:64, 0:80].astype(float)
        img = 1000.0 + 6000.0 * (((xx - 50 - dx) ** 2 + (yy - 32 - dy) ** 2) < 12 ** 2)   # bright particle
        img += 2000.0 * np.exp(-((xx - 15 - dx) ** 2 + (yy - 15 - dy) ** 2) / (2 * 2.0 ** 2))  # dimmer spot
        return ndimage.gaussian_filter(img, 1.0).astype(np.float32)

    live = LiveDifferential(mask_threshold=2500.0)          # no fiducial_xy_px
    assert live.process(scene(0.0, 0.0), 0.0).fit_ok
    later = live.process(scene(-1.2, 0.9), 10.0)
    assert later.drift_x_px == pytest.approx(-1.2, abs=0.05) and later.drift_y_px == pytest.approx(0.9, abs=0.05)
