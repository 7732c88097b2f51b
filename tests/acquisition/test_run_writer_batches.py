"""The writer appends runs of log records of one table in one go: same rows, same order, as one by one."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from operascope.acquisition.echem_history import EchemSample
from operascope.acquisition.events import Event
from operascope.acquisition.run_writer import RunSetup, RunWriter
from operascope.analysis import runfile_layout as L


def setup(path) -> RunSetup:
    return RunSetup(path=str(path), frame_shape=(8, 10), t0_s=100.0, config_toml="[acquisition]\nbin_size = 2\n",
                    camera={"model": "m", "serial": "s", "exposure_time": 2.5, "pixel_size": 34.7},
                    sample={"name": "x", "active_mass_mg": 1.0})


def test_interleaved_log_records_land_complete_and_in_order(tmp_path):
    path = tmp_path / "logs.h5"
    writer = RunWriter(setup(path))
    writer.start()
    n = 500
    for k in range(n):    # queued faster than the writer drains: runs of echem and events interleave
        writer.write_echem(EchemSample(100.0 + k, 3.0 + k * 1e-3, 1e-4 * k, 0.01 * k, k // 100, k // 250))
        if k % 7 == 0:
            writer.write_event(Event(100.0 + k, "info", "test", f"event {k} é"))
    writer.close("done", frames_in=0, frames_dropped=0)
    with h5py.File(path, "r") as f:
        echem = f[L.ELECTROCHEMISTRY]
        names = {c.attr: c.name for c in L.TABLE["echem"].columns}
        np.testing.assert_allclose(echem[names["time"]][()], np.arange(n, dtype=float))
        np.testing.assert_allclose(echem[names["voltage_v"]][()], 3.0 + np.arange(n) * 1e-3)
        np.testing.assert_allclose(echem[names["capacity_mAh_g"]][()], 0.01 * np.arange(n))
        assert echem[names["step"]][()].tolist() == [k // 100 for k in range(n)]
        events = f[L.EVENTS]
        assert [m.decode() for m in events["message"][()]] == [f"event {k} é" for k in range(0, n, 7)]
        assert events["time"][()] == pytest.approx(list(range(0, n, 7)))
