"""The engine on the simulated rig: injected drops, GITT timing, focus lock, ground truth, README example."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from operascope.acquisition.microscope import Microscope
from operascope.analysis import runfile_layout as L
from operascope.analysis.runfile import open_run

REPO = Path(__file__).resolve().parents[2]


def test_injected_camera_drops_are_counted_exactly(tmp_path):
    path = tmp_path / "drops.h5"
    with Microscope.from_config(None, speed=10, seed=3, frame_rate_hz=5.0) as scope:
        scope.start_recording(path, bin_size=4)
        time.sleep(0.5)
        scope.world.inject_fault("camera", "drop_frames", count=3)
        time.sleep(0.5)
        scope.world.inject_fault("camera", "drop_frames", count=5)
        time.sleep(0.5)
        summary = scope.stop_recording("test")
    with h5py.File(path, "r") as f:
        first, last = f[L.BINNED]["first_frame_id"][()], f[L.BINNED]["last_frame_id"][()]
        dropped_in_bin = f[L.BINNED]["dropped_in_bin"][()]
    assert summary.frames_dropped == 8 == dropped_in_bin.sum()
    assert last[-1] - first[0] + 1 == summary.frames_in + 8
    with open_run(path) as run:   # every gap is an event naming the missing ids
        gap_lines = [m if isinstance(m, str) else m.decode() for m in run.events["message"]]
        gap_lines = [m for m in gap_lines if "frame-id gap" in m]
    listed = sum(int(m.rsplit("(", 1)[1].split()[0]) for m in gap_lines)
    assert listed == 8, gap_lines


def test_gitt_alternates_pulse_and_rest_with_the_configured_durations(tmp_path):
    path = tmp_path / "gitt.h5"
    with Microscope.from_config(None, speed=200, seed=1, frame_rate_hz=0.5, bin_size=2, gitt_current_ma_g=600.0,
                                gitt_pulse_s=60.0, gitt_rest_s=120.0, gitt_initial_rest_s=120.0, v_max=3.70,
                                record_interval_s=2.0) as scope:
        summary = scope.record(path, protocol="gitt", duration_s=3000)
    with open_run(path) as run:
        echem = run.require_echem()
        table = echem.techniques
    kinds = table.kind
    assert summary.stop_reason == "protocol ended (cut-off)"
    assert len(kinds) >= 5 and kinds[:5] == ("rest", "pulse", "rest", "pulse", "rest")  # initial rest: E_0
    assert all(k == ("pulse" if i % 2 == 1 else "rest") for i, k in enumerate(kinds))
    assert list(table.step) == list(range(len(kinds)))
    durations = np.diff(table.start_time_s)
    for k, (kind, duration) in enumerate(zip(kinds[:-1], durations)):
        configured = 60.0 if kind == "pulse" else 120.0  # the initial rest is 120 s too
        # the step ran its configured time (points every 2 s) ...
        span = np.ptp(echem.time_s[echem.step == table.step[k]])
        assert configured - 2.5 <= span <= configured + 0.5
        # ... and the next one started where it ended, however late the runner polled (the channel runs
        # the steps back to back; tests/acquisition/test_protocol_step_timing.py)
        assert duration == pytest.approx(configured, abs=1e-6)
    pulse = np.isin(echem.step, table.step[1::2])
    assert np.all(echem.current_a[pulse] > 0) and np.allclose(echem.current_a[~pulse], 0.0)
    assert echem.voltage_v.max() >= 3.70
    # the same file through `operascope gitt`
    from operascope.acquisition.cli import main

    assert main(["gitt", str(path), "--out", str(tmp_path / "gitt_out")]) == 0
    rows = (tmp_path / "gitt_out" / "gitt.csv").read_text().strip().splitlines()
    assert rows[0].startswith("pulse,") and len(rows) - 1 >= 2


def test_focus_lock_run_logs_samples_calibration_and_truth(tmp_path):
    path = tmp_path / "locked.h5"
    # the stress drift (3 nm/s, the "stress" preset) so the cover glass moves by tens of nm in 40 s
    with Microscope.from_config(None, speed=20, seed=1, frame_rate_hz=4.0, bin_size=4, drift_z_nm_s=3.0) as scope:
        summary = scope.record(path, duration_s=40, focus_lock=True)
    assert summary.bins >= 8
    with h5py.File(path, "r") as f:
        log = f[L.FOCUS_LOCK]["log"]
        states = [L.FOCUS_STATES[k] for k in log["state"][()]]
        assert log["time"].shape[0] >= 10 and "locked" in states
        assert np.isfinite(f[L.FOCUS_LOCK]["calibration"]["slope_px_per_nm"][0])
        sim = f[L.SIMULATION]
        assert sim["time"].shape[0] >= 8 and sim["particle_theta"].shape[1] == 3
        assert sim["particles"]["diameter_um"].shape == (3,)
        assert f[L.STAGE]["z"]["value"].shape[0] >= 8 and f[L.LED]["log"]["value"].shape[0] >= 8   # NXpositioner per axis, NXlog value
        # the lock holds the defocus it locked at while the cover glass drifts by tens of nm
        locked = sim["time"][()] > sim["time"][0] + 5.0
        assert np.ptp(sim["drift_z_nm"][locked]) > 50 and np.ptp(sim["defocus_nm"][locked]) < 25


def test_the_readme_example_runs_as_written(tmp_path):
    script = REPO / "tests" / "fixtures" / "readme_example.py"
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "duration reached" in lines[-2] and "(288, 320)" in lines[-1]
    with open_run(tmp_path / "example_run.h5") as run:
        assert run.n_frames == int(lines[-2].split()[0]) >= 10


def test_camera_loss_incomplete_frames_and_timeouts_are_survived_and_accounted(tmp_path):
    path = tmp_path / "faults.h5"
    with Microscope.from_config(None, speed=10, seed=3, frame_rate_hz=5.0) as scope:
        scope.start_recording(path, bin_size=4)
        time.sleep(0.4)
        scope.world.inject_fault("camera", "device_lost", duration_s=3.0)
        time.sleep(1.0)
        scope.world.inject_fault("camera", "incomplete_frame", count=2)
        time.sleep(0.6)
        status = scope.status()
        summary = scope.stop_recording()
    assert status.incomplete_frames == 2 and status.error is None
    with h5py.File(path, "r") as f:
        first, last = f[L.BINNED]["first_frame_id"][()], f[L.BINNED]["last_frame_id"][()]
        messages = [m.decode() for m in f[L.EVENTS]["message"][()]]
    # frames missing while unplugged and the two incomplete ones are all counted as dropped
    assert summary.frames_dropped >= 2 + 3.0 * 5.0 * 0.8
    assert last[-1] - first[0] + 1 == summary.frames_in + summary.frames_dropped
    assert any("camera lost" in m for m in messages) and any("reconnected" in m for m in messages)
    assert sum("incomplete frame" in m for m in messages) == 2


def test_a_focus_calibration_made_during_a_recording_is_written(tmp_path):
    path = tmp_path / "calibrated.h5"
    with Microscope.from_config(None, speed=20, seed=1, frame_rate_hz=4.0, bin_size=4, calibration_range_nm=600.0,
                                calibration_step_nm=100.0) as scope:
        scope.start_recording(path)
        scope.laser.set_power(scope.config.focus_lock.laser_power_w)
        scope.laser.enable(True)
        calibration = scope.focus_lock.calibrate()
        scope.stop_recording()
    with h5py.File(path, "r") as f:
        cal = f[L.FOCUS_LOCK]["calibration"]
        assert cal["time"].shape == (1,) and cal["time"][0] > 0
        assert cal["slope_px_per_nm"][0] == pytest.approx(calibration.slope_px_per_nm)


def test_live_reference_restarts_in_focus_once_the_lock_engages():
    """A live (not recording) reference taken during the calibration scan is defocused: locking restarts it."""
    import threading

    restarted = threading.Event()
    with Microscope.from_config(None, speed=20, seed=2, frame_rate_hz=4.0, bin_size=2) as scope:
        scope.subscribe_events(lambda e: restarted.set() if "reference restarted" in e.message else None)
        scope.start_live()
        scope.laser.set_power(scope.config.focus_lock.laser_power_w)
        scope.laser.enable(True)
        scope.focus_lock.lock()                       # calibrates first (a +-1.5 um z scan), then locks
        assert restarted.wait(60.0)
        deadline = time.monotonic() + 30.0
        while (scope.latest_differential() is None or scope.latest_differential().index < 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scope.focus_lock.state == "locked" and scope.latest_differential().index >= 1
        scope.stop_live()


def test_a_run_at_a_high_speed_records_exactly_its_duration(tmp_path):
    """At 400x one 0.05 s wall poll is 20 s of rig time: the stop comes late, the file must not."""
    path = tmp_path / "short.h5"
    with Microscope.from_config(None, speed=400, seed=2, frame_rate_hz=1.0, particle_model="uniform") as scope:
        summary = scope.record(path, protocol="charge", duration_s=60.0, bin_size=2)
    assert summary.stop_reason == "duration reached"
    assert summary.duration_s == pytest.approx(60.0)
    with open_run(path) as run:
        assert run.binned.time_s.size > 0 and run.binned.time_s.max() <= 60.0
        echem = run.echem   # under load the charge may start late (in rig time); none of it past the end
        assert echem is None or echem.time_s.size == 0 or echem.time_s.max() <= 60.0 + 1e-6
