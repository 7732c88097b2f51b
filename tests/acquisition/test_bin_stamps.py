"""Bin times on the rig clock, host time column, the simulation truth averaged over each bin's exposures."""

from __future__ import annotations

from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from operascope.acquisition.bin_truth import SimulatedBinTruth
from operascope.acquisition.binner import BinnedFrame
from operascope.acquisition.run_writer import RunSetup, RunWriter
from operascope.analysis import runfile_layout as L
from operascope.analysis.report import _truth_comparison
from operascope.analysis.runfile import open_run


def drift_at(t_s: float) -> tuple[float, float, float]:
    return 2.0 * t_s, -t_s**2, 0.5


def _bin(k: int, starts_s: list[float], exposure_s: float = 0.0025) -> BinnedFrame:
    mids = tuple(s + 0.5 * exposure_s for s in starts_s)
    host = [s + exposure_s + 0.4 for s in starts_s]          # read late
    return BinnedFrame(k, np.full((8, 10), k, np.float32), len(starts_s), 2 * k, 2 * k + 1, host[0], host[-1],
                       False, 0, float(np.mean(host)), mids, tuple(int(round(s * 1e9)) for s in starts_s))


def test_bin_time_host_time_and_bin_averaged_truth_are_written_and_read_back(tmp_path):
    path = tmp_path / "t.h5"
    setup = RunSetup(path=str(path), frame_shape=(8, 10), t0_s=100.0, config_toml="",
                     camera={"model": "m", "serial": "s", "exposure_time": 2.5, "pixel_size": 34.7},
                     particle_geometry=[{"x_um": 1.0, "diameter_um": 3.0}],
                     bin_truth=SimulatedBinTruth(drift_at, exposure_ms=2.5))
    writer = RunWriter(setup)
    writer.start()
    starts = [[100.0, 100.25], [100.5, 101.0]]                 # the second bin lost a frame in between
    for k, s in enumerate(starts):
        writer.write_binned(_bin(k, s), 3.9, 0.0, 0.0)
    writer.close("duration reached", frames_in=4, frames_dropped=1)
    with h5py.File(path, "r") as f:
        mids = [np.mean(s) + 0.00125 for s in starts]
        np.testing.assert_allclose(f[L.BINNED]["time"][:], np.array(mids) - 100.0, atol=1e-9)
        np.testing.assert_allclose(f[L.BINNED]["host_time"][:], np.array(mids) - 100.0 + 0.40125, atol=1e-9)
        truth = f[L.SIMULATION_BINNED]
        np.testing.assert_allclose(truth["time"][:], np.array(mids) - 100.0, atol=1e-9)
        expected_y = [np.mean([-(t + 0.00125) ** 2 for t in s]) for s in starts]   # mean of samples, not at the mean
        np.testing.assert_allclose(truth["drift_y_nm"][:], expected_y, rtol=1e-12)
        assert expected_y[1] != pytest.approx(-(mids[1]) ** 2, rel=1e-9)
        assert truth["n_frames"][:].tolist() == [2, 2]
    with open_run(path) as run:
        assert run.truth_binned is not None and run.truth_binned.drift_x_nm.size == 2
        np.testing.assert_allclose(run.binned.host_time_s - run.binned.time_s, 0.40125, atol=1e-9)


def test_report_compares_drift_with_the_bin_averaged_truth():
    truth_binned = SimpleNamespace(drift_x_nm=np.array([0.0, 10.0, 20.0]), drift_y_nm=np.array([0.0, -5.0, -9.0]))
    instantaneous = SimpleNamespace(time_s=np.array([0.0, 1.0, 2.0]), drift_x_nm=np.array([0.0, 99.0, 99.0]),
                                    drift_y_nm=np.zeros(3))
    run = SimpleNamespace(truth_binned=truth_binned, truth=instantaneous)
    stats, (tx, ty) = _truth_comparison(run, np.array([0.5, 1.5, 2.5]), np.array([0.0, 10.0, 20.0]),
                                        np.array([0.0, -5.0, -9.0]), 0)
    assert stats["truth"].startswith("bin-averaged") and stats["rms_error_nm"] == pytest.approx(0.0)
    old = SimpleNamespace(truth_binned=None, truth=instantaneous)
    stats_old, _ = _truth_comparison(old, np.array([0.0, 1.0, 2.0]), np.array([0.0, 10.0, 20.0]), np.zeros(3), 0)
    assert stats_old["truth"].startswith("instantaneous") and stats_old["rms_error_nm"] > 50


def test_bin_times_are_redone_at_the_end_with_the_final_clock_estimate(tmp_path):
    path = tmp_path / "r.h5"
    setup = RunSetup(path=str(path), frame_shape=(8, 10), t0_s=100.0, config_toml="",
                     camera={"model": "m", "serial": "s", "exposure_time": 2.5, "pixel_size": 34.7},
                     restamp=lambda mean_ns: 100.0 + mean_ns * 1e-9 + 0.125)
    writer = RunWriter(setup)
    writer.start()
    writer.write_binned(_bin(0, [0.0, 1.0]), 3.9, 0.0, 0.0)     # live time: mid-times 100.00125.. (from _bin)
    writer.close("duration reached", frames_in=2, frames_dropped=0)
    with h5py.File(path, "r") as f:
        assert f[L.BINNED]["time"][0] == pytest.approx(0.5 + 0.125)


def test_final_mid_time_equals_the_mean_of_frame_mid_times():
    from operascope.acquisition.camera_clock import ExposureStamper
    from operascope.devices.base import Frame

    stamper = ExposureStamper(exposure_ms=10.0)
    for k in range(50):
        stamper.observe(Frame(np.zeros((1, 1), np.uint16), k, k * 250_000_000, 5.0 + 0.25 * k + 0.01 + 0.3 * (k % 3)))
    cams = [k * 250_000_000 for k in range(10, 20)]
    assert stamper.final_mid_time_s(float(np.mean(cams))) == pytest.approx(np.mean([stamper.mid_time_s(c) for c in cams]))
    assert stamper.final_mid_time_s(float(np.mean(cams))) == pytest.approx(5.0 + 0.25 * 14.5 + 0.005, abs=1e-9)
