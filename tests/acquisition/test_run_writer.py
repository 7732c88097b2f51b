"""RunWriter on its own: layout, slow-disk behaviour, closing (SWMR reading: test_acq_record)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from operascope.acquisition.binner import BinnedFrame
from operascope.acquisition.events import Event
from operascope.acquisition.run_writer import RunSetup, RunWriter
from operascope.analysis import runfile_layout as L


def setup(path, **kw) -> RunSetup:
    return RunSetup(path=str(path), frame_shape=(8, 10), t0_s=100.0, config_toml="[acquisition]\nbin_size = 2\n",
                    camera={"model": "m", "serial": "s", "exposure_time": 2.5, "pixel_size": 34.7},
                    sample={"name": "x", "active_mass_mg": 1.0}, **kw)


def binned(k: int) -> BinnedFrame:
    return BinnedFrame(k, np.full((8, 10), k, np.float32), 2, 2 * k, 2 * k + 1, 100.0 + k, 100.5 + k, False, 0)


def test_every_group_exists_before_swmr_and_close_records_end_and_reason(tmp_path):
    path = tmp_path / "w.h5"
    writer = RunWriter(setup(path, save_raw=True, particle_geometry=[{"x_um": 1.0, "diameter_um": 3.0}]))
    writer.start()
    writer.write_binned(binned(0), 3.9, 1e-4, 5.0)
    writer.write_event(Event(101.0, "warning", "test", "é unicode survives"))
    writer.close("duration reached", frames_in=2, frames_dropped=0)
    with h5py.File(path, "r") as f:
        for group in (L.BINNED, L.DIFFERENTIAL, L.RAW, L.CAMERA, L.LED, L.FOCUS_LASER, L.STAGE, L.FOCUS_LOCK,
                      L.ELECTROCHEMISTRY, L.SAMPLE, L.EVENTS, L.SIMULATION):
            assert group in f, group
        assert f[L.BINNED]["frames"].shape == (1, 8, 10) and f[L.RAW]["frames"].shape == (0, 8, 10)
        assert f[L.ENTRY]["stop_reason"][()] == b"duration reached"
        assert f[L.ENTRY]["end_time"][()].decode().startswith("20")
        assert f[L.BINNED]["time"][0] == pytest.approx(0.25)        # mid-time (100.25) minus t0
        assert f[L.BINNED]["voltage"][0] == pytest.approx(3.9)
        assert f[L.EVENTS]["message"][0].decode() == "é unicode survives"
        assert f[L.EVENTS]["time"][0] == pytest.approx(1.0)
        assert f[L.CAMERA]["count_time"].attrs["units"] == "ms"   # NXdetector name of the exposure time
        assert f[L.SIMULATION]["particles"]["diameter_um"][()].tolist() == [3.0]


def test_a_slow_disk_blocks_frame_producers_but_never_the_log_records(tmp_path):
    writer = RunWriter(setup(tmp_path / "slow.h5", queue_capacity=1))
    writer.start()
    original = writer._w_binned

    def slow_binned(*args):
        time.sleep(0.3)
        original(*args)

    writer._w_binned = slow_binned
    producer = threading.Thread(target=lambda: [writer.write_binned(binned(k), 3.9, 0.0, 0.0) for k in range(4)])
    producer.start()
    time.sleep(0.1)
    t0 = time.perf_counter()
    for k in range(200):
        writer.write_focus_sample(SimpleNamespace(time_s=100.0 + k, error_nm=1.0, z_nm=2.0, state="locked"))
    log_seconds = time.perf_counter() - t0
    assert producer.is_alive()                    # frames wait for the disk (must not drop) ...
    assert log_seconds < 0.05                     # ... the focus loop does not
    producer.join(5)
    writer.close("stopped")
    with h5py.File(tmp_path / "slow.h5", "r") as f:
        assert f[L.BINNED]["frames"].shape[0] == 4
        assert f[L.FOCUS_LOCK]["log"]["time"].shape[0] == 200
        assert L.FOCUS_STATES[f[L.FOCUS_LOCK]["log"]["state"][0]] == "locked"


def test_an_unwritable_path_fails_at_start_with_the_os_error(tmp_path):
    writer = RunWriter(setup(tmp_path / "no" / "such" / "dir.h5"))
    with pytest.raises(OSError):
        writer.start()
