"""Mask, particle segmentation, differential images and the reaction-front COM distance."""

import numpy as np
import pytest

from operascope.analysis.differential import differential, differential_stack
from operascope.analysis.masking import apply_mask, label_particles, make_mask
from operascope.analysis.reaction_front import com_distance_px, com_distance_series_nm, com_offset_px, unreacted_region


def _discs(shape=(80, 100), discs=((25, 30, 12, 1000.0), (70, 50, 8, 800.0)), background=100.0):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    image = np.full(shape, background)
    for x, y, r, level in discs:
        image[(xx - x) ** 2 + (yy - y) ** 2 <= r**2] = level
    return image


def test_otsu_mask_and_one_label_per_particle():
    rng = np.random.default_rng(0)
    image = _discs() + rng.normal(0, 10, (80, 100))
    mask = make_mask(image)
    assert mask.dtype == bool
    particles = label_particles(mask, min_area_px=20)
    assert len(particles) == 2
    by_x = sorted(particles, key=lambda p: p.centroid_xy_px[0])
    assert by_x[0].centroid_xy_px == pytest.approx((25, 30), abs=0.3)
    assert by_x[1].centroid_xy_px == pytest.approx((70, 50), abs=0.3)
    assert by_x[0].area_px == pytest.approx(np.pi * 12**2, rel=0.08)
    assert by_x[1].area_px == pytest.approx(np.pi * 8**2, rel=0.12)
    rs, cs = by_x[1].slices(margin_px=2, shape=mask.shape)
    assert rs.start == 50 - 8 - 2 and cs.stop == 70 + 8 + 1 + 2


def test_explicit_threshold_and_min_area():
    image = _discs()
    assert len(label_particles(make_mask(image, threshold=900.0), min_area_px=20)) == 1
    assert label_particles(make_mask(image), min_area_px=300)[0].area_px > 300
    masked = apply_mask(image, make_mask(image))
    assert masked[0, 0] == 0 and masked[30, 25] == 1000.0
    with pytest.raises(ValueError, match="flat"):
        make_mask(np.ones((10, 10)))
    with pytest.raises(ValueError, match="min_area_px"):
        label_particles(make_mask(image), min_area_px=0)


def test_differential_values_and_nan_outside_mask():
    reference = _discs()
    mask = make_mask(reference)
    frame = reference * 1.1
    frame[30, 25] = 1500.0
    d = differential(frame, reference, mask)
    assert d.dtype == np.float32
    assert d[30, 25] == pytest.approx(0.5)
    assert d[30, 20] == pytest.approx(0.1, rel=1e-5)
    assert np.isnan(d[0, 0])
    assert np.isnan(differential(frame, np.zeros_like(frame))).all()
    assert differential_stack(np.stack([frame, reference]), reference, mask)[1][mask].max() == 0
    with pytest.raises(ValueError):
        differential(frame[:10], reference, mask)


def _disc_mask(shape, x, y, r):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (xx - x) ** 2 + (yy - y) ** 2 <= r**2


def test_com_is_zero_for_symmetric_front():
    shape = (81, 81)
    particle = _disc_mask(shape, 40, 40, 30)
    for core_r in (25, 15, 5):
        diff = np.where(_disc_mask(shape, 40, 40, core_r), 0.01, 0.2)
        diff = np.where(particle, diff, np.nan)
        assert com_distance_px(diff, particle) < 1e-9


@pytest.mark.parametrize("offset", [(6.0, 0.0), (-4.0, 7.0), (10.0, -3.0)])
def test_com_follows_known_displacement_for_asymmetric_front(offset):
    shape = (81, 81)
    particle = _disc_mask(shape, 40, 40, 30)
    core = _disc_mask(shape, 40 + offset[0], 40 + offset[1], 12)
    diff = np.where(particle, np.where(core, 0.0, 0.3), np.nan)
    dx, dy = com_offset_px(diff, particle)
    assert (dx, dy) == pytest.approx(offset, abs=0.05)
    assert com_distance_series_nm(diff[None], particle, 34.7)[0] == pytest.approx(np.hypot(*offset) * 34.7, rel=0.01)


def test_unreacted_threshold_is_configurable_and_empty_region_is_nan():
    shape = (41, 41)
    particle = _disc_mask(shape, 20, 20, 15)
    diff = np.where(particle, 0.08, np.nan)
    assert unreacted_region(diff, particle, 0.05).sum() == 0
    assert np.isnan(com_distance_px(diff, particle, 0.05))
    assert com_distance_px(diff, particle, 0.1) == pytest.approx(0.0, abs=1e-9)


def test_com_is_nan_once_the_unreacted_region_is_a_small_remnant():
    shape = (81, 81)
    particle = _disc_mask(shape, 40, 40, 30)           # ~2830 px
    remnant = _disc_mask(shape, 62, 40, 4)             # ~50 px off-centre: 1.8 % of the particle
    diff = np.where(particle, np.where(remnant, 0.0, 0.3), np.nan)
    assert com_distance_px(diff, particle) == pytest.approx(22.0, abs=0.5)     # no floor: the remnant counts
    assert np.isnan(com_distance_px(diff, particle, min_unreacted_fraction=0.05))
    assert com_distance_px(diff, particle, min_unreacted_fraction=0.01) == pytest.approx(22.0, abs=0.5)
    with pytest.raises(ValueError, match="min_unreacted_fraction"):
        com_distance_px(diff, particle, min_unreacted_fraction=1.5)
