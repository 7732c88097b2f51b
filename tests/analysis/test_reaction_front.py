"""Reaction-front COM against an independent simulation: FEM particles rendered by the simulator's optics
(blurred rim), binned noisy frames, the model's own unreacted region as truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from operascope.analysis import reaction_front as rf
from operascope.analysis.differential import differential
from operascope.analysis.masking import make_mask, otsu_threshold
from operascope.simulators.world.fem_particle import FemParticle
from operascope.simulators.world.optics import ParticleView, RoiGeometry, SceneView, expected_electrons

PIXEL_NM = 34.7
THETA0 = 0.95
KAPPA = 0.25
BACKGROUND_E = 20_000.0
BINNED_FRAMES = 20


def _charge(gamma: float, eta: float, diameter_um: float = 3.0, angle_deg: float = 30.0, seed: int = 0):
    """Rows (soc, image COM nm, model unreacted fraction, model COM nm) of a 1C charge, 1 min apart."""
    rng = np.random.default_rng(seed)
    particle = FemParticle(diameter_um, gamma, eta, angle_deg, THETA0)
    half = int(math.ceil(diameter_um * 500 / PIXEL_NM)) + 2
    offsets = np.arange(-half, half + 1) * (PIXEL_NM / 1000)
    dx, dy = np.meshgrid(offsets, offsets)
    n = 2 * half + 31
    geom = RoiGeometry(0, 0, n, n, PIXEL_NM, 0.0)
    centre_nm = (n // 2) * PIXEL_NM
    inside = dx**2 + dy**2 <= (diameter_um / 2) ** 2
    unreacted_theta = THETA0 - 0.05 / KAPPA

    def frame() -> np.ndarray:
        grid = np.asarray(particle.theta_at(dx, dy), dtype=np.float32)
        view = ParticleView(centre_nm, centre_nm, diameter_um * 500, 0.15, KAPPA, THETA0, particle.mean_theta(), grid)
        clean = expected_electrons(SceneView(BACKGROUND_E, PIXEL_NM, 111.0, -1e9, -1e9, 0.0, (view,)), geom).astype(float)
        return clean + rng.standard_normal(clean.shape) * np.sqrt(clean / BINNED_FRAMES)  # shot noise of a 20-frame bin

    reference = frame()
    mask = make_mask(reference, otsu_threshold(reference))
    rim = rf.rim_erosion_px(PIXEL_NM)
    rows = []
    while True:
        particle.advance(60.0, 0.2)  # 1C = 0.2 A/g
        soc = (THETA0 - particle.mean_theta()) * 275.0 / 200.0
        theta = np.asarray(particle.theta_at(dx, dy))
        unreacted = inside & (theta > unreacted_theta)
        model_com = math.hypot(dx[unreacted].mean() - dx[inside].mean(), dy[unreacted].mean() - dy[inside].mean()) * 1e3 if unreacted.any() else math.nan
        image = frame()
        com = rf.front_com(differential(image, reference, mask), mask, rim, 0.05, 0.05, reference=reference)
        rows.append((soc, com.distance_px * PIXEL_NM, float(unreacted[inside].mean()), model_com))
        if soc > 0.5:
            return np.array(rows)


def _vanish_soc(soc: np.ndarray, values: np.ndarray) -> float:
    gone = np.flatnonzero(~np.isfinite(values) | (values == 0))
    return float(soc[gone[0]])


def test_fresh_particle_com_stays_small_while_unreacted():
    rows = _charge(0.0, 1.0)
    unreacted = rows[:, 2] >= 0.2
    worst = float(np.nanmax(rows[unreacted, 1]))
    print(f"fresh: max COM distance while >= 20 % unreacted {worst:.1f} nm over {unreacted.sum()} bins")
    assert unreacted.sum() >= 5 and worst < 60.0
    # the rim no longer keeps it alive: gone with the model's unreacted region
    image_gone = float(rows[np.flatnonzero(~np.isfinite(rows[:, 1]))[0], 0])
    model_gone = _vanish_soc(rows[:, 0], rows[:, 2])
    print(f"fresh: unreacted region gone at SOC {image_gone:.3f} (image) vs {model_gone:.3f} (model)")
    assert abs(image_gone - model_gone) <= 0.03


@pytest.mark.parametrize("gamma, eta, angle_deg", [(0.3, 0.2, 30.0), (0.5, 0.1, 200.0)])
def test_aged_particle_unreacted_region_vanishes_with_the_models(gamma, eta, angle_deg):
    rows = _charge(gamma, eta, 2.6, angle_deg)
    image_gone = float(rows[np.flatnonzero(~np.isfinite(rows[:, 1]))[0], 0])
    model_gone = _vanish_soc(rows[:, 0], rows[:, 2])
    mid = (rows[:, 2] > 0.3) & (rows[:, 3] > 200)
    error = np.abs(rows[mid, 1] - rows[mid, 3])
    print(f"aged γ={gamma} η={eta}: gone at SOC {image_gone:.3f} (image) vs {model_gone:.3f} (model); "
          f"mid-front |COM image - model| max {error.max():.0f} nm over {mid.sum()} bins")
    assert abs(image_gone - model_gone) <= 0.03
    assert mid.sum() >= 2 and error.max() < 60.0


def test_rim_helpers():
    assert rf.rim_erosion_px(34.7) == 7  # 2 x 111 nm / 34.7 nm = 6.4 px
    disk = np.hypot(*np.mgrid[-20:21, -20:21]) <= 15
    core = rf.core_mask(disk, 5)
    assert core.sum() == pytest.approx(np.pi * 10**2, rel=0.1) and not core[disk == 0].any()
    with pytest.raises(ValueError, match="pixel_size_nm"):
        rf.rim_erosion_px(0.0)
