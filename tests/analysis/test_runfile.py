"""Run-file reader: optional groups, and clear RunFileError for bad files (never a traceback)."""

import h5py
import numpy as np
import pytest

from operascope.analysis import runfile_layout as layout
from operascope.analysis.errors import RunFileError
from operascope.analysis.gitt.report import gitt_from_file
from operascope.analysis.report import analyze_run
from operascope.analysis.runfile import open_run
from operascope.analysis.synthetic_run import make_synthetic_run


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "run.h5"
    make_synthetic_run(path, n_frames=4, shape=(64, 96), fiducial_xy_px=(80.0, 50.0))
    return path


def test_reader_exposes_frames_logs_and_truth(good_run):
    with open_run(good_run) as run:
        assert run.n_frames == 4 and run.frame_shape == (64, 96)
        assert run.frame(0).dtype == np.float32
        region = run.frame_region(1, slice(10, 20), slice(5, 25))
        np.testing.assert_array_equal(region, run.frame(1)[10:20, 5:25])
        assert run.pixel_size_nm == pytest.approx(34.7)
        assert run.active_mass_mg == pytest.approx(1.0)
        assert run.binned.capacity_mAh_g is not None and run.binned.time_s.size == 4
        assert run.echem is not None and run.echem.step is not None
        assert run.focus_lock is not None and run.focus_lock.state[0] == "locked"
        assert run.truth is not None and run.truth.drift_x_nm.size == 4
        with pytest.raises(IndexError):
            run.frame(4)


def test_optional_groups_absent_are_none(tmp_path):
    path = tmp_path / "minimal.h5"
    with h5py.File(path, "w") as f:
        f.create_group(layout.ENTRY)
        f.create_dataset(f"{layout.BINNED}/frames", data=np.ones((2, 8, 8), np.float32))
    with open_run(path) as run:
        assert run.n_frames == 2
        assert run.echem is None and run.focus_lock is None and run.truth is None
        assert run.pixel_size_nm is None and run.active_mass_mg is None
        with pytest.raises(RunFileError, match="electrochemistry"):
            run.require_echem()


def _bad_files(tmp_path, good_run):
    truncated = tmp_path / "truncated.h5"
    data = good_run.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["something/else"] = np.arange(3)
    text = tmp_path / "notes.h5"
    text.write_text("this is not HDF5\n" * 10)
    no_frames = tmp_path / "no_frames.h5"
    with h5py.File(no_frames, "w") as f:
        f.create_group(layout.ENTRY)
    return {
        "truncated": (truncated, "truncated|corrupt"),
        "empty": (empty, "empty"),
        "foreign": (foreign, "not an operascope run file.*/entry"),
        "text": (text, "not an HDF5 file"),
        "missing": (tmp_path / "nope.h5", "does not exist"),
        "no_frames": (no_frames, "no binned frames"),
    }


@pytest.mark.parametrize("kind", ["truncated", "empty", "foreign", "text", "missing", "no_frames"])
def test_bad_files_raise_run_file_error_naming_the_file(tmp_path, good_run, kind):
    path, pattern = _bad_files(tmp_path, good_run)[kind]
    with pytest.raises(RunFileError, match=pattern) as info:
        analyze_run(path, tmp_path / "out")
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)
    if kind != "no_frames":
        with pytest.raises(RunFileError):
            gitt_from_file(path, tmp_path / "out")


def test_configured_fiducial_position_is_used(tmp_path):
    path = tmp_path / "run.h5"
    make_synthetic_run(path, n_frames=3, shape=(64, 96), fiducial_xy_px=(80.0, 50.0))
    with h5py.File(path, "a") as f:
        f.create_dataset(layout.CONFIG, data="[acquisition]\nfiducial_xy_px = [79.0, 51.0]\n")
    with open_run(path) as run:
        assert "fiducial_xy_px" in run.config_toml
    summary = analyze_run(path, tmp_path / "out")
    assert summary["drift"]["fiducial_start_xy_px"] == [79.0, 51.0]
    assert summary["drift"]["n_fits_ok"] == 3
