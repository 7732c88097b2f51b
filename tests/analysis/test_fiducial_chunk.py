"""The chunk kernel of fiducial tracking, fits that leave their box, and a run that loses its fiducial."""

from __future__ import annotations

import csv
import json

import h5py
import numpy as np
import pytest

from operascope.analysis import runfile_layout as layout
from operascope.analysis.drift import measure_drift
from operascope.analysis.fiducial import fit_boxes, fit_spot, spot_model
from operascope.analysis.fiducial_chunk import fit_fiducial_chunk
from operascope.analysis.report import analyze_run
from operascope.analysis.synthetic_run import make_synthetic_run


def spot_regions(n, sigma_px, photons, background=50.0, size=45, seed=0, drift_px=0.0):
    """(regions, truth (n, 2) region px): a spot near the middle of each region, Poisson noise."""
    rng = np.random.default_rng(seed)
    centre = (size - 1) / 2
    xy = centre + rng.uniform(-0.5, 0.5, (n, 2)) + np.linspace(0, drift_px, n)[:, None]
    params = np.column_stack([xy, np.full(n, sigma_px), np.full(n, photons), np.full(n, background)])
    mu, _ = spot_model(params, (size, size))
    return rng.poisson(mu).astype(np.float32), xy


def test_low_signal_fits_that_leave_the_box_are_never_converged():
    regions, _ = spot_regions(3000, 3.2, 1000.0, background=20.0, size=21, seed=1)
    fit = fit_boxes(regions)
    off = (fit.x_px < 0) | (fit.x_px > 20) | (fit.y_px < 0) | (fit.y_px > 20)
    at_edge = (fit.x_px <= 0.0) | (fit.x_px >= 20.0) | (fit.y_px <= 0.0) | (fit.y_px >= 20.0)
    assert at_edge.sum() > 10  # at this signal some fits do run off to the edge
    assert not (fit.converged & (off | at_edge)).any()
    assert not fit.inside_box[off].any()


def test_chunk_kernel_matches_single_fits_and_is_pure():
    regions, truth = spot_regions(40, 2.2, 2e4, seed=2)
    before = regions.copy()
    origin = (100, 200)
    chunk = fit_fiducial_chunk(regions, origin, (22.0 + 200, 22.0 + 100))
    again = fit_fiducial_chunk(regions, origin, (22.0 + 200, 22.0 + 100))
    np.testing.assert_array_equal(regions, before)
    np.testing.assert_array_equal(chunk.x_px, again.x_px)
    assert chunk.ok.all() and chunk.n_refits == 0 and chunk.n_fit_calls <= 2
    for k in range(0, 40, 7):
        single = fit_spot(regions[k], (22.0, 22.0))
        assert chunk.x_px[k] - origin[1] == pytest.approx(single.x_px, abs=1e-3)
        assert chunk.y_px[k] - origin[0] == pytest.approx(single.y_px, abs=1e-3)
    assert np.sqrt(np.mean((chunk.x_px - origin[1] - truth[:, 0]) ** 2)) < 3 * np.nanmedian(chunk.crlb_px)


def test_defocused_spot_is_fitted_in_the_wide_box_directly_when_the_prior_says_so():
    regions, truth = spot_regions(30, 5.5, 6e4, seed=3)
    without = fit_fiducial_chunk(regions, (0, 0), (22.0, 22.0))
    assert without.n_refits == 30 and (without.box_px == 31).all()
    with_prior = fit_fiducial_chunk(regions, (0, 0), (22.0, 22.0), prior_sigma_px=5.5)
    assert with_prior.n_refits == 0 and (with_prior.box_px == 31).all() and with_prior.ok.all()
    assert with_prior.n_fit_calls < without.n_fit_calls
    np.testing.assert_allclose(with_prior.x_px, without.x_px, atol=0.3 * np.nanmedian(with_prior.crlb_px))


def test_blank_frames_fail_and_are_interpolated():
    regions, _ = spot_regions(20, 2.2, 2e4, size=64, seed=4)
    blank = np.random.default_rng(5).poisson(50.0, regions[:1].shape).astype(np.float32)
    regions[8:11] = blank
    trace = measure_drift(regions, (31.5, 31.5))
    assert not trace.ok[8:11].any() and trace.ok[:8].all() and trace.ok[11:].all()
    dx, _ = trace.filled()
    assert np.isfinite(dx).all()
    assert dx[9] == pytest.approx(np.interp(9, [7, 11], [dx[7], dx[11]]))


def test_report_says_when_drift_correction_loses_the_fiducial(tmp_path, caplog):
    path = tmp_path / "run.h5"
    make_synthetic_run(path, n_frames=12, shape=(96, 140), seed=3)
    lost = [5, 6, 7]
    with h5py.File(path, "r+") as f:
        frames = f[f"{layout.BINNED}/frames"]
        fill = np.float32(np.median(frames[0][:, :20]))
        for k in lost:
            frame = frames[k]
            frame[55:105, 85:135] = fill  # the fiducial (at x 110, y 80) is gone in these bins
            frames[k] = frame
    with caplog.at_level("WARNING"):
        summary = analyze_run(path, tmp_path / "out", fiducial_xy_px=(110.0, 80.0))
    assert any("lost the fiducial in 3 of 12 bins" in w for w in summary["warnings"])
    assert any("lost the fiducial" in r.getMessage() for r in caplog.records)
    assert summary["drift"]["n_interpolated"] == 3 and summary["drift"]["interpolated_bins"] == lost
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert on_disk["drift"]["n_interpolated"] == 3
    rows = list(csv.DictReader(open(tmp_path / "out" / "drift.csv")))
    assert [k for k, r in enumerate(rows) if r["drift_interpolated"] == "1"] == lost
    com_rows = list(csv.DictReader(open(tmp_path / "out" / "com.csv")))
    assert {r["drift_interpolated"] for r in com_rows} == {"0", "1"}
