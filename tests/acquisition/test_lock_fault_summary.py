"""summary.json's lock-fault fields: number of faults, unlocked time, first fault time and message."""

from __future__ import annotations

import json

import numpy as np

from operascope.acquisition.focus_hooks import LOCK_SUMMARY_PREFIX
from operascope.acquisition.lock_faults import LockFaultSummary
from operascope.acquisition.microscope import Microscope
from operascope.analysis.lock_fault_fields import SUMMARY_PREFIX, lock_fault_fields
from operascope.analysis.report import analyze_run


def test_a_faulted_run_reports_the_fault_fields_in_summary_json(tmp_path):
    """Stress drift (40 nm/s) against an 800 nm window: the lock faults about 20 s in, the run goes on."""
    with Microscope.from_config(None, simulation={"speed": 10.0, "seed": 2, "drift_z_nm_s": 40.0,
                                                  "particle_model": "uniform"},
                                acquisition={"roi": (0, 150, 96, 96), "bin_size": 5},
                                focus_lock={"window_nm": 800.0, "calibration_range_nm": 600.0}) as scope:
        run = scope.record(tmp_path / "run.h5", duration_s=40.0, focus_lock=True)
    assert len(run.focus_faults) == 1
    summary = analyze_run(tmp_path / "run.h5", tmp_path / "out")
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    fields = on_disk["focus_lock_faults"]
    assert fields == summary["focus_lock_faults"]
    assert fields["n_faults"] == 1
    assert 5.0 < fields["first_fault_s"] < 35.0
    assert "travel window" in fields["first_fault_message"]
    assert fields["unlocked_s"] == np.round(run.focus_unlocked_s, 3) and 5.0 < fields["unlocked_s"] < 40.0


def test_a_clean_run_reports_zero_faults(tmp_path):
    with Microscope.from_config(None, simulation={"speed": 10.0, "seed": 1, "particle_model": "uniform"},
                                acquisition={"roi": (0, 150, 96, 96), "bin_size": 5},
                                focus_lock={"calibration_range_nm": 600.0}) as scope:
        scope.record(tmp_path / "run.h5", duration_s=15.0, focus_lock=True)
    fields = analyze_run(tmp_path / "run.h5", tmp_path / "out")["focus_lock_faults"]
    assert fields["n_faults"] == 0 and fields["unlocked_s"] == 0.0 and fields["first_fault_s"] is None


def test_fields_from_events_summary_and_fallback():
    assert SUMMARY_PREFIX == LOCK_SUMMARY_PREFIX
    summary = LockFaultSummary(faults=[(12.5, "z beyond the travel window")], unlocked_s=30.0)
    events = {"source": np.array(["engine", "focus_lock", "focus_lock"]),
              "message": np.array(["rig opened", "focus lock: locked -> fault (x)",
                                   LOCK_SUMMARY_PREFIX + json.dumps(summary.to_dict())])}
    fields = lock_fault_fields(events)
    assert fields["n_faults"] == 1 and fields["first_fault_s"] == 12.5 and fields["unlocked_s"] == 30.0
    assert fields["first_fault_message"] == "z beyond the travel window"
    # no summary event (a crashed run): count the loud fault lines; the unlocked time is unknown
    loud = {"source": np.array(["focus_lock"] * 2), "message": np.array([
        "FOCUS LOCK FAULT at run time 7.5 s: focus lock: window — recording continues with z held (on_fault = continue)",
        "FOCUS LOCK FAULT at run time 90.0 s: again — recording continues"])}
    fields = lock_fault_fields(loud)
    assert fields["n_faults"] == 2 and fields["first_fault_s"] == 7.5 and fields["unlocked_s"] is None
    assert fields["first_fault_message"] == "focus lock: window"
    assert lock_fault_fields(None) is None
    assert lock_fault_fields({"source": np.array(["engine"]), "message": np.array(["rig opened"])}) is None
