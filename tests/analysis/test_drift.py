"""Drift: sub-pixel shifts, drift tracking, and a whole synthetic run's drift against its truth."""

import csv
import json

import h5py
import numpy as np
import pytest

from operascope.analysis import runfile_layout as layout
from operascope.analysis.drift import correct_frames, measure_drift, shift_image
from operascope.analysis.fiducial import fit_spot, spot_model
from operascope.analysis.report import analyze_run
from operascope.analysis.synthetic_run import SyntheticParticle, make_synthetic_run


def _spot_image(x, y, shape=(64, 64), photons=1e5, background=20.0, rng=None):
    mu, _ = spot_model(np.array([[x, y, 3.2, photons, background]]), shape)
    return mu[0] if rng is None else rng.poisson(mu[0]).astype(float)


def test_shift_image_moves_content_by_subpixel_amount():
    image = _spot_image(30.0, 28.0)
    moved = shift_image(image, 1.37, -2.61)
    fit = fit_spot(moved, (31.0, 25.0))
    assert fit.x_px == pytest.approx(31.37, abs=0.02)
    assert fit.y_px == pytest.approx(25.39, abs=0.02)
    assert moved.dtype == np.float32
    with pytest.raises(ValueError):
        shift_image(image, np.nan, 0.0)


def test_measure_drift_recovers_known_subpixel_drift():
    rng = np.random.default_rng(1)
    n = 25
    true_dx = np.cumsum(rng.normal(0, 0.4, n))
    true_dy = np.linspace(0, 3.3, n)
    frames = np.stack([_spot_image(32 + a, 30 + b, rng=rng) for a, b in zip(true_dx, true_dy)])
    trace = measure_drift(frames, guess_xy=(32.0, 30.0))
    assert trace.ok.all()
    bound = float(np.median(trace.crlb_px))
    assert np.max(np.abs(trace.dx_px - (true_dx - true_dx[0]))) < 6 * bound
    assert np.max(np.abs(trace.dy_px - (true_dy - true_dy[0]))) < 6 * bound
    corrected = correct_frames(frames, trace.dx_px, trace.dy_px)
    last = fit_spot(corrected[-1], (32.0, 30.0))
    assert last.x_px == pytest.approx(32 + true_dx[0], abs=0.05)


def test_measure_drift_rejects_frames_without_spot():
    rng = np.random.default_rng(2)
    frames = [_spot_image(30, 30, rng=rng), rng.poisson(20.0, (64, 64)).astype(float), _spot_image(30.5, 30, rng=rng)]
    trace = measure_drift(frames, guess_xy=(30.0, 30.0))
    assert list(trace.ok) == [True, False, True]
    assert np.isnan(trace.dx_px[1])
    filled_dx, _ = trace.filled()
    assert filled_dx[1] == pytest.approx(0.5 * trace.dx_px[2], abs=1e-9)


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "run.h5"
    truth = make_synthetic_run(
        path, n_frames=14, shape=(96, 140),
        particles=[SyntheticParticle(40.0, 45.0, 18.0, (6.0, -3.0)), SyntheticParticle(88.0, 32.0, 12.0)],
        drift_rate_nm_per_frame=(7.0, -5.0), drift_jitter_nm=3.0, seed=3,
    )
    out = path.parent / "out"
    seen = []
    summary = analyze_run(path, out, progress=lambda done, total, label: seen.append((done, total, label)))
    return path, truth, out, summary, seen


def test_run_drift_recovered_against_simulation_truth(synthetic_run):
    path, truth, out, summary, _ = synthetic_run
    with h5py.File(path, "r") as f:  # truth as stored in the file
        tx = f[f"{layout.SIMULATION}/drift_x_nm"][()]
        ty = f[f"{layout.SIMULATION}/drift_y_nm"][()]
    np.testing.assert_allclose(tx, truth.drift_x_nm)
    rows = list(csv.DictReader(open(out / "drift.csv")))
    assert list(rows[0].keys())[:3] == ["time_s", "dx_nm", "dy_nm"]
    dx = np.array([float(r["dx_nm"]) for r in rows])
    dy = np.array([float(r["dy_nm"]) for r in rows])
    assert np.ptp(tx) > 80  # a real drift, many times the tolerance
    error = np.hypot(dx - (tx - tx[0]), dy - (ty - ty[0]))
    assert np.sqrt(np.mean(error**2)) < 3.0
    assert error.max() < 6.0
    stats = summary["drift"]["versus_simulation_truth"]
    assert stats["rms_error_nm"] == pytest.approx(np.sqrt(np.mean(error**2)), rel=0.05)
    assert summary["drift"]["crlb_nm"] > 0
    # Precision (error std against truth) is at the Cramér–Rao bound (14 frames: loose factor).
    assert max(stats["error_std_to_crlb"]) < 1.6, stats
    assert summary["drift"]["scatter_to_crlb"][0] > 0


def test_run_report_files_and_particles(synthetic_run):
    path, truth, out, summary, seen = synthetic_run
    for name in ("summary.json", "drift.csv", "com.csv", "drift.png", "differential_montage.png", "com_vs_soc.png",
                 "voltage_capacity.png", "focus_lock.png"):
        assert (out / name).exists(), name
    assert (out / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "summary.json").read_text())
    assert saved["n_frames"] == 14
    assert saved["focus_lock"]["locked_fraction"] == 1.0 and saved["focus_lock"]["binned_frames_not_locked"] == []
    assert saved["mask"]["n_particles"] == 2  # the fiducial is not counted as a particle
    assert any("fiducial" in w for w in saved["warnings"])
    rows = list(csv.DictReader(open(out / "com.csv")))
    assert list(rows[0].keys())[:5] == ["particle", "time_s", "capacity_mAh_g", "soc", "com_distance_nm"]
    assert len(rows) == 2 * 14
    assert {(d, t, label) for d, t, label in seen if label == "fiducial fits"} >= {(14, 14, "fiducial fits")}
    assert seen[-1][0] == seen[-1][1]
    # Asymmetric particle: COM distance grows while the core is still well resolved (mid-charge).
    big = min(saved["particles"], key=lambda p: abs(p["centroid_xy_px"][0] - 40))
    by_frame = [float(r["com_distance_nm"]) for r in rows if int(r["particle"]) == big["label"]]
    expected = np.hypot(truth.core_offsets_px[:, 0, 0], truth.core_offsets_px[:, 0, 1]) * 34.7
    mid = slice(2, 8)
    np.testing.assert_allclose(by_frame[mid], expected[mid], atol=25.0)
    small = max(saved["particles"], key=lambda p: abs(p["centroid_xy_px"][0] - 40))
    sym = [float(r["com_distance_nm"]) for r in rows if int(r["particle"]) == small["label"]]
    assert np.nanmax(sym[:8]) < 25.0
