"""Multi-position runs on the simulated rig (issue 19): visits, gating, failed moves, focus retries, the file."""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest

from operascope.acquisition.microscope import Microscope
from operascope.acquisition.position_schedule import ScheduleTimeouts
from operascope.acquisition.positions import PositionList, StagePosition
from operascope.analysis import runfile_layout as L
from operascope.analysis.errors import RunFileError
from operascope.analysis.runfile import open_run

# positions a few µm apart: the default simulated particles stay in view (until `sample` lands its sample)
PLIST = PositionList((StagePosition("A", 0.0, 0.0), StagePosition("B", 2.0, 1.0, 0.05),
                      StagePosition("C", -2.0, 0.5)))
FAST = dict(speed=20, seed=1, frame_rate_hz=4.0, bin_size=2, particle_model="uniform")


def _visits(f):
    v = f[L.VISITS]
    out = {k: v[k][()] for k in v}
    out["status"] = np.array([s.decode() for s in out["status"]])
    return out


def test_positions_are_cycled_and_no_bin_holds_a_frame_taken_while_moving(tmp_path):
    path = tmp_path / "multi.h5"
    with Microscope.from_config(None, **FAST) as scope:
        summary = scope.record(path, duration_s=30, positions=PLIST, dwell_bins=2, save_raw=True)
        statuses = scope.status().positions
    assert [s.name for s in statuses] == ["A", "B", "C"] and all(s.bins >= 2 for s in statuses)
    with h5py.File(path, "r") as f:
        t0 = f[L.ENTRY][L.START_TIME].attrs["rig_clock_s"]
        exposure_s = f[L.CAMERA]["count_time"][()] / 1000.0
        raw = f[L.RAW]
        start_by_id = dict(zip(raw["frame_id"][()].tolist(), (raw["camera_time_ns"][()] * 1e-9 - t0).tolist()))
        visits = _visits(f)
        assert f[L.POSITIONS].attrs["dwell_bins"] == 2 and np.isfinite(f[L.POSITIONS].attrs["cycle_period_s"])
        assert [n.decode() for n in f[L.POSITIONS]["name"][()]] == ["A", "B", "C"]
        assert list(visits["position_index"][:6]) == [0, 1, 2, 0, 1, 2]
        assert set(visits["status"]) == {"recorded"}
        assert np.all(visits["time"] <= visits["settled_time"]) and np.all(visits["settled_time"] <= visits["focus_time"])
        moves = list(zip(visits["time"], visits["settled_time"]))
        total_bins = 0
        for index, name in enumerate("ABC"):
            binned = f[L.position_group(name)]["binned"]
            assert f[L.position_group(name)].attrs["NX_class"] == "NXsubentry"
            visit_of_bin = binned["visit_index"][()]
            total_bins += visit_of_bin.size
            assert np.all(visits["position_index"][visit_of_bin] == index)
            for k, visit in enumerate(visit_of_bin):
                starts = [start_by_id[i] for i in range(binned["first_frame_id"][k], binned["last_frame_id"][k] + 1)]
                # every frame of the bin was exposed after the focus was back and before the visit ended ...
                assert min(starts) >= visits["focus_time"][visit]
                assert max(starts) + exposure_s <= visits["end_time"][visit] + 1e-6
                # ... so never during any move
                for move_start, settled in moves:
                    assert all(s + exposure_s <= move_start or s >= settled for s in starts)
            # a visit's row counts the bins it recorded
            for visit in np.unique(visit_of_bin):
                assert visits["n_bins"][visit] == np.sum(visit_of_bin == visit)
            assert f[L.position_group(name)]["differential"]["frames"].shape[0] == visit_of_bin.size
        assert total_bins == summary.bins and f[L.BINNED]["frames"].shape[0] == 0
    assert summary.frames_binned < summary.frames_in


def test_reader_gives_each_position_as_a_single_position_run(tmp_path):
    path = tmp_path / "read.h5"
    with Microscope.from_config(None, **FAST) as scope:
        scope.record(path, duration_s=15, positions=PLIST, dwell_bins=1)
    with open_run(path) as run:
        assert run.positions() == ["A", "B", "C"]
        for name in run.positions():
            view = run.for_position(name)
            assert view.n_frames >= 2 and view.frame(0).shape == (288, 320)
            assert view.stack("differential").shape[0] == view.n_frames
            assert view.differential_mask is not None and view.differential_mask.any()
            assert np.all(np.diff(view.binned.time_s) > 0) and np.all(np.isfinite(view.binned.voltage_v))
            assert "visit_index" in view.table("binned")
            assert view.echem is not None and view.echem.time_s.size == run.echem.time_s.size
        assert run.table("visits")["status"][0] == "recorded"
        with pytest.raises(RunFileError, match="no position 'Z'; positions: A, B, C"):
            run.for_position("Z")


def test_a_failed_move_skips_that_position_with_an_event_and_the_others_go_on(tmp_path):
    path = tmp_path / "fail.h5"
    with Microscope.from_config(None, **FAST) as scope:
        events = []
        scope.subscribe_events(lambda e: events.append(e.message))
        scope.start_live()
        scope.start_recording(path, positions=PLIST, dwell_bins=1)
        schedule = scope.position_schedule
        while len(schedule.visits) < 2:
            scope.clock.sleep_s(0.2)
        scope.world.inject_fault("stage", "end_of_travel", count=1)
        while len(schedule.visits) < 7:
            scope.clock.sleep_s(0.2)
        scope.world.inject_fault("stage", "link_loss", duration_s=2.0)
        lost_at = len(schedule.visits)
        while len({v.position_index for v in schedule.visits[lost_at:] if v.status == "recorded"}) < 3:
            scope.clock.sleep_s(0.2)
        scope.stop_recording()
        scope.stop_live()
    with h5py.File(path, "r") as f:
        visits = _visits(f)
    failed = np.flatnonzero(visits["status"] == "move failed")
    assert failed.size >= 2
    assert any("move failed (EndOfTravel" in m for m in events)
    assert any("move failed (DeviceLost" in m for m in events)
    assert any("stage link re-established" in m for m in events)
    # after the failures every position records again
    after = visits["position_index"][(np.arange(len(visits["status"])) > failed.max()) & (visits["status"] == "recorded")]
    assert set(after.tolist()) == {0, 1, 2}


def test_a_position_whose_focus_does_not_come_back_is_marked_and_retried(tmp_path):
    path = tmp_path / "focus.h5"
    with Microscope.from_config(None, **FAST) as scope:
        scope.position_timeouts = ScheduleTimeouts(focus_s=1.5)
        scope.start_live()
        scope.focus.engage()
        scope.start_recording(path, positions=PLIST, dwell_bins=1)
        schedule = scope.position_schedule
        while len(schedule.visits) < 3:
            scope.clock.sleep_s(0.2)
        scope.world.inject_fault("focus_sensor", "timeout", duration_s=4.0)

        def a_cycle_recorded_after_the_last_loss() -> bool:
            statuses = [str(v.status) for v in list(schedule.visits)]
            if "focus not reacquired" not in statuses:
                return False
            last_lost = len(statuses) - 1 - statuses[::-1].index("focus not reacquired")
            return statuses[last_lost + 1:].count("recorded") >= len(PLIST.positions)

        deadline = time.monotonic() + 120.0
        while (len(schedule.visits) < 12 or not a_cycle_recorded_after_the_last_loss()) and time.monotonic() < deadline:
            scope.clock.sleep_s(0.2)
        scope.stop_recording()
        scope.focus.unlock()
        scope.stop_live()
    with h5py.File(path, "r") as f:
        visits = _visits(f)
    lost = np.flatnonzero(visits["status"] == "focus not reacquired")
    assert lost.size >= 1
    retried = visits["position_index"][lost[0]]
    later = (np.arange(visits["status"].size) > lost.max()) & (visits["status"] == "recorded")
    assert retried in visits["position_index"][later]
