"""acquisition.recording: one session at a time, OCV while recording with no protocol, summaries."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from operascope.acquisition.microscope import Microscope
from operascope.analysis import runfile_layout as L
from tests.fakes.rig import fake_rig_factory, small_config


def test_a_recording_without_a_protocol_has_a_voltage_in_every_bin(tmp_path):
    path = tmp_path / "ocv.h5"
    with Microscope.from_config(None, speed=20, roi=(0, 0, 32, 32)) as scope:
        summary = scope.record(path, duration_s=20.0, bin_size=1)
        assert summary.protocol_end is None and not scope.protocols.is_running
    with h5py.File(path, "r") as f:
        voltage = f[L.BINNED]["voltage"][()]
    assert summary.bins == voltage.size >= 2 and np.isfinite(voltage).all()


def test_one_session_at_a_time_and_the_user_protocol_replaces_the_ocv(tmp_path):
    scope = Microscope(small_config(bin_size=2), rig_factory=fake_rig_factory(speed=20))
    with scope:
        scope.start_recording(tmp_path / "a.h5")
        assert scope.protocols.is_running and scope.protocol.spec.kind == "ocv"
        with pytest.raises(RuntimeError, match="already recording"):
            scope.start_recording(tmp_path / "b.h5")
        scope.start_protocol("charge")
        assert scope.protocol.spec.kind == "charge" and scope.protocols.is_running
        summary = scope.stop_recording()
        assert summary is not None and scope.protocols.is_running   # the user's protocol goes on
        scope.stop_protocol()
        assert scope.stop_recording() is None


def test_every_recording_leaves_a_log_file_beside_the_run(tmp_path):
    scope = Microscope(small_config(bin_size=2), rig_factory=fake_rig_factory(speed=20))
    with scope:
        scope.start_recording(tmp_path / "gui_like.h5")
        scope.stop_recording("stopped from a client")
    text = (tmp_path / "gui_like.log").read_text(encoding="utf-8")
    assert "recording to" in text and "recording stopped: stopped from a client" in text
