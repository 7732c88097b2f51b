"""Science panel (issue 20 item 6 leftovers): the rim-aware reaction-front COM of ``operascope analyze``,
and particles labelled aged/fresh from the simulated sample's configuration."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import math

import numpy as np
import pytest

from operascope.analysis.differential import differential
from operascope.analysis.masking import make_mask
from operascope.analysis.reaction_front import com_distance_px, front_com, rim_erosion_px
from operascope.analysis.synthetic_run import SyntheticParticle, render_frame
from operascope.config.loader import load_config
from operascope.gui.particle_science import crop_margin_px, measure_particles, particle_regions
from operascope.gui.sample_labels import match_sample_particles
from operascope.gui.science_panel import SciencePanel

PIXEL_NM = 34.7
SHAPE = (160, 200)
# a faint particle (15 % above the background) whose unreacted core moves 9 px off-centre; the instrument's PSF
FAINT = SyntheticParticle(80.0, 80.0, 25.0, (9.0, 0.0), brightness=0.15)
RENDER = dict(background=1000.0, contrast=0.6, psf_sigma_px=111.0 / PIXEL_NM)


def _bin(progress: float):
    reference, _ = render_frame(SHAPE, [FAINT], 0.0, **RENDER)
    mask = make_mask(reference)
    frame, offsets = render_frame(SHAPE, [FAINT], progress, **RENDER)
    return differential(frame, reference, mask), mask, reference, offsets[0][0]


def test_the_rim_aware_com_follows_the_front_where_the_blurred_rim_biases_the_plain_com(qtbot):
    panel = SciencePanel(PIXEL_NM)
    qtbot.addWidget(panel)
    truths, plain = [], []
    for k, progress in enumerate([0.5, 0.7, 0.85]):
        diff, mask, reference, truth_px = _bin(progress)
        assert panel.add_bin(k, diff, mask, 50.0 * k, reference)
        truths.append(truth_px * PIXEL_NM)
        plain.append(com_distance_px(diff, mask, 0.05, 0.05) * PIXEL_NM)
    # the blurred rim stays below the threshold and pulls the plain COM towards the centre ...
    assert plain[1] < truths[1] - 2.5 * PIXEL_NM
    # ... the rim-aware COM (coverage-corrected with the reference, as analyze) follows the true front
    np.testing.assert_allclose(panel.com_nm[0][:2], truths[:2], atol=0.3 * PIXEL_NM)
    # 85 %: the core is ~2 % of the particle, under the 5 % cut-off: no front any more (the plain COM
    # still reports the rim's remnant)
    assert math.isnan(panel.com_nm[0][2]) and math.isfinite(plain[2])


def test_the_panel_computes_exactly_what_analyze_computes_per_particle(qtbot):
    diff, mask, reference, _ = _bin(0.5)
    regions = particle_regions(mask, margin_px=crop_margin_px(PIXEL_NM))
    assert len(regions) == 1
    region = regions[0]
    # the crop holds background on every side (the coverage correction takes its median there)
    assert not region.mask[0].any() and not region.mask[-1].any()
    assert not region.mask[:, 0].any() and not region.mask[:, -1].any()
    expected = front_com(diff[region.rows, region.cols], region.mask, rim_erosion_px(PIXEL_NM), 0.05, 0.05,
                         reference=reference[region.rows, region.cols]).distance_px * PIXEL_NM
    measured = measure_particles(diff, regions, PIXEL_NM, reference)[0]
    assert measured.com_distance_nm == pytest.approx(expected, rel=1e-12)
    assert measured.mean_differential == pytest.approx(float(np.nanmean(diff[mask])), rel=1e-6)
    # without the reference: the rim is eroded instead (front_com's other mode)
    eroded = front_com(diff[region.rows, region.cols], region.mask, rim_erosion_px(PIXEL_NM), 0.05, 0.05)
    assert measure_particles(diff, regions, PIXEL_NM)[0].com_distance_nm == pytest.approx(
        eroded.distance_px * PIXEL_NM, rel=1e-12)
    with pytest.raises(ValueError, match="margin_px"):
        particle_regions(mask, margin_px=-1)


def _px(x_um: float, stage_nm: float = 0.0) -> float:
    return (x_um * 1000.0 - stage_nm) / PIXEL_NM


def test_particles_are_matched_to_the_simulated_sample_by_position():
    config = load_config(None)       # config/simulated.toml: (3.5, 3.5) fresh, (8.0, 3.6) and (6.0, 7.4) aged
    stage = {"x": 0.0, "y": 0.0, "z": 0.0}
    found = [(_px(3.5), _px(3.5)), (_px(8.0) + 3.0, _px(3.6) - 2.0), (_px(6.0), _px(7.4)), (5.0, 5.0)]
    matches = match_sample_particles(config, found, stage)
    assert [m.ageing if m else None for m in matches] == ["fresh", "aged", "aged", None]
    assert (matches[1].gamma, matches[1].eta) == (0.3, 0.2) and matches[1].index == 1
    assert matches[1].describe() == "aged (γ 0.30, η 0.20)" and matches[0].describe() == "fresh"
    # the stage moved 2 µm in +x: the sample (and its particles) appear 2 µm further left
    moved = match_sample_particles(config, [(_px(3.5, 2000.0), _px(3.5))], {"x": 2000.0, "y": 0.0, "z": 0.0})
    assert moved[0] is not None and moved[0].ageing == "fresh"
    assert match_sample_particles(config, [(_px(3.5), _px(3.5))], {"x": 2000.0, "y": 0.0})[0] is None
    # no stage read yet, or a real rig: nothing is known
    assert match_sample_particles(config, found, None) == [None] * 4
    real = load_config(None, overrides={"devices": {"camera": {"driver": "flir"}}})
    assert match_sample_particles(real, found, stage) == [None] * 4


def test_the_panel_labels_aged_and_fresh_particles_and_dashes_the_aged(qtbot):
    yy, xx = np.mgrid[0:150, 0:300]
    fresh_xy, aged_xy = (_px(3.5), _px(3.5)), (_px(8.0), _px(3.6))
    mask = ((xx - fresh_xy[0]) ** 2 + (yy - fresh_xy[1]) ** 2 < 30 ** 2) | \
           ((xx - aged_xy[0]) ** 2 + (yy - aged_xy[1]) ** 2 < 25 ** 2)
    config = load_config(None)
    panel = SciencePanel(PIXEL_NM, sample_matcher=lambda c: match_sample_particles(config, c, {"x": 0.0, "y": 0.0}))
    qtbot.addWidget(panel)
    assert panel.add_bin(0, np.zeros(mask.shape, np.float32), mask, 0.0)
    assert panel.labels() == ["P1 fresh", "P2 aged (γ 0.30, η 0.20)"]
    text = panel.particles_label.text()
    assert "fresh" in text and "aged (γ 0.30, η 0.20)" in text
    from PyQt5 import QtCore

    assert panel._com_curves[0].opts["pen"].style() == QtCore.Qt.SolidLine
    assert panel._com_curves[1].opts["pen"].style() == QtCore.Qt.DashLine
    # a matcher that fails leaves the curves unlabelled, never breaks the panel
    broken = SciencePanel(PIXEL_NM, sample_matcher=lambda c: 1 / 0)
    qtbot.addWidget(broken)
    assert broken.add_bin(0, np.zeros(mask.shape, np.float32), mask, 0.0)
    assert broken.labels() == ["P1", "P2"]
