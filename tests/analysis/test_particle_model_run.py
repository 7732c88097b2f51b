"""Particle-model runs: front symmetry and asymmetry, C-rate trend, stop conditions, run_model outputs, bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from operascope.analysis.particle_model.fem import RockSaltBoundary
from operascope.analysis.particle_model.cli import run_model, sweep_cases
from operascope.analysis.particle_model.run import NOMINAL_THETA_SPAN, RunSettings, simulate_delithiation

FAST = RunSettings(nrefs=3, steps_per_run=80, target_mean_theta=0.95 - 0.35 * NOMINAL_THETA_SPAN, com_pixel_nm=40.0)


def com_at_soc(result, soc: float) -> tuple[float, np.ndarray]:
    index = int(np.searchsorted(result.soc, soc))
    return float(result.com_distance_nm[index]), np.asarray(result.com_offset_um[index])


def test_fresh_particle_front_is_symmetric():
    result = simulate_delithiation(2.0, RockSaltBoundary(0.0, 1.0), 2.0, settings=FAST)
    assert result.stop_reason == "target_mean_theta"
    assert result.mean_theta[-1] == pytest.approx(FAST.target_mean_theta, abs=1e-12)
    distances = result.com_distance_nm[np.isfinite(result.com_distance_nm)]
    assert distances.size > 10
    assert np.max(distances) < 5.0  # nm, ~ 0 (pixel 40 nm)
    # but there is a real gradient: surface below the mean
    assert result.mean_theta[-1] - result.surface_theta[-1] > 0.01


def test_aged_particle_front_displaced_towards_blocked_side_growing_with_c_rate():
    boundary = RockSaltBoundary(gamma=0.5, eta=0.0, rsl_angle_deg=90.0)  # rock salt on +y (image down)
    distances = {}
    for c_rate in (0.25, 2.0):
        result = simulate_delithiation(c_rate, boundary, 2.0, settings=FAST)
        distance, offset = com_at_soc(result, 0.2)
        distances[c_rate] = distance
        if distance > 0:
            # unreacted region is on the blocked side: +y, not x
            assert offset[1] > 0 and abs(offset[0]) < 0.05 * offset[1]
    assert distances[2.0] > 100.0  # nm, clearly displaced for a 2 µm particle
    assert distances[2.0] > 2.0 * distances[0.25] + 50.0
    # partial blocking (eta > 0) displaces less than full blocking at the same rate
    partial = simulate_delithiation(2.0, RockSaltBoundary(0.5, 0.5, 90.0), 2.0, settings=FAST)
    assert com_at_soc(partial, 0.2)[0] < distances[2.0]


def test_cutoff_voltage_stops_early():
    settings = RunSettings(nrefs=3, steps_per_run=60, target_mean_theta=0.25, cutoff_voltage_v=3.9, com_pixel_nm=60.0)
    result = simulate_delithiation(1.0, RockSaltBoundary(), 2.0, settings=settings)
    assert result.stop_reason == "cutoff_voltage"
    assert 0.5 < result.surface_theta[-1] < 0.6  # Chen2020: 3.9 V at θ ≈ 0.55
    assert result.mean_theta[-1] > result.surface_theta[-1]


def test_adaptive_steps_start_small_and_grow():
    result = simulate_delithiation(1.0, RockSaltBoundary(), 2.0, settings=FAST)
    steps = np.diff(result.times_s)
    assert steps[0] < 0.1 and np.max(steps) == pytest.approx(3600.0 / FAST.steps_per_run)
    assert np.all(np.diff(result.soc) > 0)


def test_run_model_writes_consistent_files(tmp_path):
    calls = []
    out = run_model(2.0, 0.0, 0.5, 2.0, tmp_path / "one", settings=FAST, progress=lambda d, t, w: calls.append((d, t)))
    assert calls[-1] == (100, 100)
    case = out["cases"][0]
    assert case["c_rate"] == 2.0 and case["gamma"] == 0.5 and case["eta"] == 0.0
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert summary["cases"][0]["soc"][-1] == pytest.approx(0.35)
    assert len(summary["cases"][0]["soc"]) == len(summary["cases"][0]["com_distance_nm"])
    assert summary["unreacted_theta"] == pytest.approx(0.95 - 0.05 / 0.25)
    with h5py.File(tmp_path / "one" / "model.h5") as h5:
        group = h5["cases/n2_eta0_gamma0.5"]
        points = h5["mesh/points_um"][()]
        snapshots = group["snapshots_theta"][()]
        assert snapshots.shape[1] == points.shape[0] and snapshots.shape[0] >= 4
        assert np.all(snapshots[0] == 0.95) and snapshots[-1].min() < 0.7
        assert group["soc"][-1] == pytest.approx(0.35)
        assert group["com_distance_nm"][()] == pytest.approx(np.array(summary["cases"][0]["com_distance_nm"], dtype=float), nan_ok=True)
        assert group.attrs["stop_reason"] == "target_mean_theta"
    for png in out["files"]["png"]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_model_sweep(tmp_path):
    grid = ((0.5, 2.0), (0.0,), (0.0, 0.5))
    out = run_model(out_dir=tmp_path, sweep=True, settings=FAST, diameter_um=2.0, sweep_grid=grid)
    labels = [c["label"] for c in out["cases"]]
    assert labels == ["n0.5_eta1_gamma0", "n0.5_eta0_gamma0.5", "n2_eta1_gamma0", "n2_eta0_gamma0.5"]
    assert (tmp_path / "sweep_com_vs_soc.png").read_bytes()[:4] == b"\x89PNG"
    by_label = {c["label"]: c for c in out["cases"]}

    def distance_at_soc_02(label: str) -> float:
        case = by_label[label]
        return float(np.interp(0.2, case["soc"], np.nan_to_num(np.asarray(case["com_distance_nm"], dtype=float))))

    assert distance_at_soc_02("n2_eta0_gamma0.5") > 2 * distance_at_soc_02("n0.5_eta0_gamma0.5") + 50
    assert distance_at_soc_02("n2_eta1_gamma0") < 5.0
    assert len(sweep_cases()) == 21


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(gamma=1.0), "gamma"),
        (dict(eta=1.5), "eta"),
        (dict(eta=-0.2), "eta"),
        (dict(diameter_um=0.0), "diameter_um"),
        (dict(c_rate=-1.0), "c_rate"),
        (dict(diameter_um=1e300), "diameter_um must be <= 50"),
        (dict(c_rate=1e6), "c_rate <= 100"),
        (dict(c_rate=0.0), "c_rate"),
    ],
)
def test_run_model_bad_parameters(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_model(out_dir=tmp_path / "bad", **kwargs)
    assert not (tmp_path / "bad").exists()
