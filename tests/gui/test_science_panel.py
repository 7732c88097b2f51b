"""Live science panel (issue 20 item 6): per-particle COM distance vs SOC and mean ΔI/I vs capacity."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

from operascope.analysis.differential import differential
from operascope.analysis.masking import make_mask
from operascope.analysis.materials import SPECIFIC_CAPACITY_MAH_G
from operascope.analysis.synthetic_run import SyntheticParticle, render_frame
from operascope.config.loader import load_config
from operascope.gui.app import build_window, make_settings
from operascope.gui.science_panel import SciencePanel
from operascope.gui.snapshot import GuiSnapshot

PIXEL_NM = 50.0
SHAPE = (96, 128)
PARTICLES = [SyntheticParticle(40.0, 45.0, 18.0, (8.0, 0.0)), SyntheticParticle(95.0, 50.0, 14.0, (0.0, 0.0))]


def _bins(progress: list[float], with_reference: bool = False):
    """(ΔI/I, mask[, reference]) of noise-free synthetic bins; the first particle's core moves 8 px in x, the
    second's stays."""
    kwargs = dict(background=1000.0, contrast=0.3, psf_sigma_px=1.0)
    reference, _ = render_frame(SHAPE, PARTICLES, 0.0, **kwargs)
    mask = make_mask(reference)
    for p in progress:
        frame, _ = render_frame(SHAPE, PARTICLES, p, **kwargs)
        yield (differential(frame, reference, mask), mask) + ((reference,) if with_reference else ())


def test_curves_follow_the_known_front(qtbot):
    panel = SciencePanel(PIXEL_NM)
    qtbot.addWidget(panel)
    progress = [0.0, 0.25, 0.5, 0.7]
    capacity = [0.0, 40.0, 80.0, 112.0]
    # with the reference frame (as the engine gives it): the rim's partial coverage is corrected, as in analyze
    for k, ((diff, mask, reference), cap) in enumerate(zip(_bins(progress, with_reference=True), capacity)):
        assert panel.add_bin(k, diff, mask, cap, reference)
    assert not panel.add_bin(3, diff, mask, 112.0)          # the same bin twice is not added twice
    assert len(panel.regions) == 2 and panel.n_points == 4
    np.testing.assert_allclose(panel.soc, np.array(capacity) / SPECIFIC_CAPACITY_MAH_G)
    # particle 1: the unreacted core centre is 8 px * progress off the particle centre
    expected_nm = [8.0 * p * PIXEL_NM for p in progress]
    np.testing.assert_allclose(panel.com_nm[0], expected_nm, atol=0.6 * PIXEL_NM)
    # particle 2: the core shrinks concentrically: the COM stays put
    assert max(panel.com_nm[1]) < 0.6 * PIXEL_NM
    # mean ΔI/I grows with the reacted area: I goes from 2 to 2.3 background where reacted, so
    # 0.3 / 2 * (1 - (1 - p)^2) over the particle, in %
    for j in range(2):
        assert panel.mean_percent[j][0] == pytest.approx(0.0, abs=1e-6)
        assert np.all(np.diff(panel.mean_percent[j]) > 0)
    assert panel.mean_percent[0][2] == pytest.approx(15.0 * (1 - 0.5 ** 2), rel=0.1)
    x, y = panel._com_curves[0].getData()
    assert len(x) == 4
    assert "P1" in panel.particles_label.text() and "P2" in panel.particles_label.text()


def test_a_new_mask_starts_new_curves(qtbot):
    panel = SciencePanel(PIXEL_NM)
    qtbot.addWidget(panel)
    diff, mask = next(_bins([0.3]))
    panel.add_bin(0, diff, mask, 10.0)
    smaller = mask.copy()
    smaller[:, 70:] = False
    panel.add_bin(1, diff, smaller, 11.0)
    assert len(panel.regions) == 1 and panel.n_points == 1
    assert not panel.add_bin(2, diff, None, 12.0)
    with pytest.raises(ValueError, match="pixel_size_nm"):
        SciencePanel(0.0)


def _unavailable_rig():
    raise RuntimeError("no rig in this test")


def test_the_window_feeds_the_panel_every_new_bin(qtbot, tmp_path, monkeypatch):
    window = build_window(load_config(None), make_settings(tmp_path / "gui.ini"), open_microscope=_unavailable_rig)
    qtbot.addWidget(window)
    window.timer.stop()
    bins = list(_bins([0.0, 0.3, 0.6]))
    state = {"k": 0}
    monkeypatch.setattr(window.bridge, "snapshot", lambda: GuiSnapshot(
        opened=True, differential=bins[state["k"]][0], mask=bins[state["k"]][1], differential_index=state["k"]))
    monkeypatch.setattr(window.bridge, "echem_series", lambda: (
        np.arange(3.0), np.full(3, 3.8), np.full(3, 1e-4), np.array([0.0, 30.0, 60.0])[: state["k"] + 1]))
    for k in range(3):
        state["k"] = k
        window.refresh()
        window.refresh()                 # the same bin again: no new point
    panel = window.science_panel
    assert panel.n_points == 3
    assert panel.capacity_mAh_g == [0.0, 30.0, 60.0]
    assert panel.com_nm[0][2] > panel.com_nm[0][1] > 0
    assert window.docks["science"].widget() is panel


def test_touching_particles_are_split_and_a_single_one_is_not():
    from operascope.gui.particle_science import particle_regions

    yy, xx = np.mgrid[0:100, 0:160]
    left = (xx - 40) ** 2 + (yy - 50) ** 2 < 400
    right = (xx - 78) ** 2 + (yy - 50) ** 2 < 400
    bridge = (abs(yy - 50) < 3) & (xx > 40) & (xx < 80)
    regions = particle_regions(left | right | bridge)
    assert len(regions) == 2
    centres = sorted(round(r.centroid_xy_px[0]) for r in regions)
    assert abs(centres[0] - 40) <= 2 and abs(centres[1] - 78) <= 2
    assert sum(int(r.mask.sum()) for r in regions) == int((left | right | bridge).sum())
    single = particle_regions(left)
    assert len(single) == 1 and int(single[0].mask.sum()) == int(left.sum())
    assert particle_regions(np.zeros((10, 10), bool)) == []


def test_a_mask_region_covering_much_of_the_image_is_not_a_particle():
    from operascope.gui.particle_science import particle_regions

    mask = np.zeros((100, 100), bool)
    mask[:, :40] = True                     # 40 % of the image: background let into the mask
    yy, xx = np.mgrid[0:100, 0:100]
    mask |= (xx - 75) ** 2 + (yy - 50) ** 2 < 100
    regions = particle_regions(mask)
    assert len(regions) == 1 and abs(regions[0].centroid_xy_px[0] - 75) < 1
