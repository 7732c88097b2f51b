"""The full reader (issue 14 item 5): every group, refresh() while written, xarray/pandas views, short runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from operascope.acquisition.binner import BinnedFrame
from operascope.acquisition.cli import main
from operascope.acquisition.run_writer import RunSetup, RunWriter
from operascope.analysis import runfile_layout as L
from operascope.analysis.runfile import open_run

REPO = Path(__file__).resolve().parents[2]
PIXEL_NM = 34.7
ROI = [4, 2, 10, 8]          # x0, y0, width, height


@pytest.fixture(scope="module")
def acquired(tmp_path_factory):
    """A real simulated acquisition with raw frames and a protocol (every group present)."""
    path = tmp_path_factory.mktemp("acq") / "run.h5"
    assert main(["acquire", "--out", str(path), "--duration", "12", "--speed", "10", "--fps", "2", "--bin", "2",
                 "--save-raw", "--protocol", "charge", "--c-rate", "1"]) == 0
    return path


def test_every_group_is_exposed(acquired):
    with open_run(acquired) as run:
        assert set(run.tables) >= {"binned", "differential", "raw", "led", "laser", "stage_x", "stage_y", "stage_z",
                                   "echem", "techniques", "events", "truth", "focus", "calibration"}
        assert run.stop_reason == "duration reached" and run.end_time not in (None, "", L.END_TIME_UNKNOWN)
        assert run.start_time < run.end_time
        n = run.n_frames
        assert run.stack("differential").shape[0] == n and run.stack("raw").shape[0] >= 2 * n - 1
        assert run.stack("raw").dtype == np.uint16 and run.stack("raw")[0].mean() > 10   # bitshuffle decoded
        assert run.differential_mask is not None and run.differential_mask.dtype == bool
        events = run.events
        assert any("recording stopped" in m for m in events["message"]) and isinstance(events["level"][0], str)
        assert run.table("techniques")["kind"][0] == "charge"
        assert run.table("truth")["particle_theta"].ndim == 2
        for axis in ("stage_x", "stage_y", "stage_z"):
            assert run.table(axis)["value"].size >= 5
        with pytest.raises(ValueError, match="use one of"):
            run.table("nonsense")


def test_dataframes_are_indexed_by_time_with_units(acquired):
    with open_run(acquired) as run:
        echem = run.to_dataframe("echem")
        assert echem.index.name == "time_s" and echem.index.is_monotonic_increasing
        assert echem.attrs["units"]["voltage"] == "V" and (echem["voltage"] > 3).all()
        np.testing.assert_allclose(echem["voltage"].to_numpy(), run.echem.voltage_v)
        led = run.to_dataframe("led")
        assert led.attrs["units"]["value"] == "A" and len(led) >= 5
        truth = run.to_dataframe("truth")
        assert {"particle_theta_0", "soc"} <= set(truth.columns)


def test_to_xarray_coordinates_in_seconds_and_micrometres(acquired):
    with open_run(acquired) as run:
        ds = run.to_xarray("binned")
        assert ds["frames"].dims == ("time", "y", "x") and ds.sizes["time"] == run.n_frames
        np.testing.assert_allclose(ds["time"].values, run.binned.time_s)
        assert ds["time"].attrs["units"] == "s" and ds["x"].attrs["units"] == "um"
        step_um = PIXEL_NM / 1000.0 if run.pixel_size_nm is None else run.pixel_size_nm / 1000.0
        np.testing.assert_allclose(np.diff(ds["x"].values), step_um)
        np.testing.assert_allclose(np.diff(ds["y"].values), step_um)
        np.testing.assert_array_equal(ds["frames"].values[1], run.frame(1))
        np.testing.assert_allclose(ds["voltage"].values, run.binned.voltage_v)
        raw = run.to_xarray("raw", frames=slice(0, 3))
        assert raw.sizes["time"] == 3 and raw["frames"].attrs["compression"] == "bitshuffle-lz4"
        with pytest.raises(ValueError, match="use one of"):
            run.to_xarray("nonsense")


def test_roi_offsets_the_axes(tmp_path):
    path = tmp_path / "roi.h5"
    writer = RunWriter(RunSetup(path=str(path), frame_shape=(8, 10), t0_s=100.0, config_toml="",
                                camera={"pixel_size": PIXEL_NM, "roi": ROI, "frame_rate": 10.0}, sample={}))
    writer.start()
    writer.write_binned(BinnedFrame(0, np.ones((8, 10), np.float32), 2, 0, 1, 100.0, 100.5, False, 0), 3.9, 0, 0)
    writer.close("done")
    with open_run(path) as run:
        ds = run.to_xarray()
    assert ds["x"].values[0] == pytest.approx(ROI[0] * PIXEL_NM / 1000)
    assert ds["y"].values[0] == pytest.approx(ROI[1] * PIXEL_NM / 1000)
    assert ds["time"].values.tolist() == pytest.approx([0.25])


def test_refresh_sees_bins_written_after_opening(tmp_path):
    """The writer is another process (as in the lab: a notebook watching a recording)."""
    path = tmp_path / "growing.h5"
    proc = subprocess.Popen([sys.executable, "-m", "operascope.acquisition.cli", "acquire", "--out", str(path),
                             "--duration", "100000", "--speed", "10", "--fps", "2", "--bin", "2"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        _wait(lambda: _bins(path) >= 2, 60.0)            # (closed again before open_run: one handle per process)
        with open_run(path) as run:
            n0 = run.n_frames
            assert n0 >= 2 and run.end_time == L.END_TIME_UNKNOWN and run.stop_reason == ""
            time.sleep(2.0)                               # ~10 bins a wall second at --speed 10
            assert run.n_frames == n0                     # a reader sees nothing new until refresh()
            run.refresh()
            assert run.n_frames >= n0 + 3 and run.binned.time_s.size == run.n_frames
            assert np.all(np.diff(run.binned.time_s) > 0)
            assert run.frame(run.n_frames - 1).mean() > 10
            assert run.to_xarray().sizes["time"] == run.n_frames
            assert run.to_dataframe("events").shape[0] >= 1
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _bins(path) -> int:
    try:
        with h5py.File(path, "r", swmr=True, locking=False) as f:
            return int(f[L.BINNED]["frames"].shape[0])
    except (OSError, KeyError, ValueError):
        return 0


def _wait(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "writer did not flush in time"
        time.sleep(0.02)


def test_analyze_of_a_two_second_run_reports_missing_statistics(tmp_path, capsys):
    path = tmp_path / "short.h5"
    assert main(["acquire", "--out", str(path), "--duration", "2"]) == 0
    capsys.readouterr()
    assert main(["analyze", str(path), "--out", str(tmp_path / "report")]) == 0
    said = capsys.readouterr().out
    assert "fiducial scatter missing" in said
    assert (tmp_path / "report" / "summary.json").is_file()
