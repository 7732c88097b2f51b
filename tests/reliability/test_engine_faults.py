"""Reliability of the acquisition engine under injected faults (simulated rig and protocol emulators).

Camera lost (back in time / gone for good), read timeouts and incomplete frames, a real write error
(file size limit in a subprocess: the kernel refuses the write with EFBIG, as a full disk refuses it
with ENOSPC), the electrochemistry watchdog when the instrument's own limit fails, potentiostat link
loss and timeouts.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from operascope.acquisition.microscope import Microscope
from operascope.analysis import runfile_layout as L
from operascope.analysis.runfile import open_run

REPO = Path(__file__).resolve().parents[2]
SMALL = dict(roi=(0, 0, 64, 64), particle_model="uniform")


def _events(path: Path) -> list[tuple[str, str, str]]:
    with h5py.File(path, "r") as f:
        g = f[L.EVENTS]
        return [(lv.decode(), src.decode(), msg.decode())
                for lv, src, msg in zip(g["level"][()], g["source"][()], g["message"][()])]


def _binned(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        g = f[L.BINNED]
        return {k: g[k][()] for k in ("frames", "n_frames_in_bin", "first_frame_id", "last_frame_id", "partial",
                                      "dropped_in_bin")} | {"stop_reason": f[L.ENTRY]["stop_reason"][()].decode()}


def _when(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# --------------------------------------------------------------------------- 1. camera lost
def test_a_camera_that_does_not_come_back_stops_the_run_cleanly_after_the_configured_time(tmp_path):
    path = tmp_path / "lost.h5"
    seen: dict[str, float] = {}
    with Microscope.from_config(None, speed=10, seed=2, frame_rate_hz=10.0, camera_lost_timeout_s=1.0,
                                **SMALL) as scope:
        def unplug_after_five_bins() -> None:
            _when(lambda: scope.status().bins_written >= 5)
            seen["bins"] = scope.status().bins_written
            seen["frames"] = scope.status().frames_recorded
            scope.world.inject_fault("camera", "device_lost", duration_s=1e6)   # gone for 11 days
            seen["t"] = time.monotonic()

        unplugger = threading.Thread(target=unplug_after_five_bins)
        unplugger.start()
        summary = scope.record(path, duration_s=100_000, bin_size=2)
        stopped_after_s = time.monotonic() - seen["t"]
        unplugger.join()
    assert summary.stop_reason.startswith("error: camera lost and not back after 1 s")
    assert 0.9 <= stopped_after_s <= 10.0              # gave up after camera_lost_timeout_s, not at once, not never
    b = _binned(path)
    n = len(b["n_frames_in_bin"])
    # every bin completed before the loss is there, plus the partial bin of frames received before it
    assert n >= seen["bins"] and b["n_frames_in_bin"].sum() == summary.frames_in >= seen["frames"]
    assert (b["n_frames_in_bin"][:-1] == 2).all() and (b["frames"].reshape(n, -1).mean(axis=1) > 10).all()
    assert b["stop_reason"].startswith("error: camera lost")
    messages = [m for _, src, m in _events(path) if src == "camera"]
    assert any(m.startswith("camera lost") for m in messages) and not any("reconnected" in m for m in messages)
    with open_run(path) as run:
        assert run.n_frames == n


def test_a_camera_unplugged_for_seconds_is_reconnected_on_the_emulated_flir_driver(tmp_path):
    """The real FLIR driver against the fake Spinnaker SDK: unplug, replug, the run goes on."""
    path = tmp_path / "replugged.h5"
    config = REPO / "config" / "emulated.toml"
    with Microscope.from_config(config, speed=10, frame_rate_hz=10.0, roi=(0, 0, 64, 64),
                                camera_lost_timeout_s=30.0) as scope:
        reconnected = threading.Event()
        scope.subscribe_events(lambda e: reconnected.set() if e.message == "camera reconnected" else None)
        scope.start_recording(path, bin_size=2)
        _when(lambda: scope.status().bins_written >= 3)
        scope.world.inject_fault("camera", "device_lost", duration_s=15.0)   # 1.5 wall s at 10x
        assert reconnected.wait(30.0) and scope.status().error is None
        frames_at_reconnect = scope.status().frames_recorded
        _when(lambda: scope.status().frames_recorded >= frames_at_reconnect + 6)
        summary = scope.stop_recording("test done")
    assert summary.errors == () and summary.stop_reason == "test done"
    b = _binned(path)
    # the unplugged interval is one gap in frame ids (inside a bin or between two), counted as dropped and logged
    gap = np.maximum(b["first_frame_id"][1:] - b["last_frame_id"][:-1] - 1, b["dropped_in_bin"][1:])
    assert gap.max() >= 0.8 * 15.0 * 10.0 and summary.frames_dropped == b["dropped_in_bin"].sum() >= gap.max()
    assert b["last_frame_id"][-1] - b["first_frame_id"][0] + 1 == summary.frames_in + summary.frames_dropped
    messages = [m for _, src, m in _events(path) if src == "camera"]
    assert any(m.startswith("camera lost") for m in messages) and "camera reconnected" in messages
    gap_events = [int(re.search(r"; (\d+) frames missed", m).group(1)) for m in messages if m.startswith("camera gap")]
    assert gap_events == [gap.max()]                       # the gap is logged once, with its size


# --------------------------------------------------------------------------- 2. timeouts, incomplete frames
@pytest.mark.parametrize("rig", ["simulated", "emulated"])
def test_timeouts_and_incomplete_frames_are_counted_logged_and_never_written(tmp_path, rig):
    path = tmp_path / f"glitches_{rig}.h5"
    config = None if rig == "simulated" else REPO / "config" / "emulated.toml"
    extra = SMALL if rig == "simulated" else dict(roi=(0, 0, 64, 64))
    with Microscope.from_config(config, speed=10, frame_rate_hz=10.0, read_timeout_s=0.5, **extra) as scope:
        scope.start_recording(path, bin_size=2, save_raw=True)
        _when(lambda: scope.status().bins_written >= 2)
        scope.world.inject_fault("camera", "incomplete_frame", count=4)
        if rig == "simulated":
            scope.world.inject_fault("camera", "timeout", count=3)       # three reads time out
        else:   # the fake SDK delivers no frame for 1.6 s of rig time: the driver's grabs time out (0.5 s each)
            scope.world.inject_fault("camera", "timeout", duration_s=1.6)
        _when(lambda: scope.status().incomplete_frames >= 4)
        frames_then = scope.status().frames_recorded
        _when(lambda: scope.status().frames_recorded >= frames_then + 10)     # the run goes on
        status = scope.status()
        summary = scope.stop_recording("test done")
    assert status.error is None and summary.errors == () and status.incomplete_frames == 4
    messages = [m for _, src, m in _events(path) if src == "camera"]
    timeouts = sum(m.startswith("camera read timed out") for m in messages)
    assert timeouts == 3 if rig == "simulated" else 2 <= timeouts <= 4
    incomplete = [m for m in messages if m.startswith("incomplete frame discarded")]
    assert len(incomplete) == 4
    bad_ids = {int(re.search(r"frame (\d+)", m).group(1)) for m in incomplete}
    with h5py.File(path, "r") as f:
        raw_ids = f[L.RAW]["frame_id"][()]
        raw_frames = f[L.RAW]["frames"][()]
    b = _binned(path)
    # an incomplete frame is never stored, raw or binned; its id is a counted gap like every lost frame
    assert len(bad_ids) == 4 and not bad_ids & set(raw_ids.tolist())
    assert raw_ids.size == summary.frames_in == b["n_frames_in_bin"].sum() and (np.diff(raw_ids) > 0).all()
    assert raw_ids[-1] - raw_ids[0] + 1 == summary.frames_in + summary.frames_dropped
    assert b["dropped_in_bin"].sum() == summary.frames_dropped >= 4
    assert all(raw_ids[0] < i < raw_ids[-1] for i in bad_ids)
    assert (raw_frames.reshape(raw_ids.size, -1).mean(axis=1) > 100).all()   # every stored frame is a real image


# --------------------------------------------------------------------------- 4. disk full / write error
def _small_rig_toml(tmp_path: Path) -> Path:
    text = (REPO / "config" / "simulated.toml").read_text()
    text = re.sub(r"(?m)^roi = .*$", "roi = [0, 0, 64, 64]", text)
    text = re.sub(r'(?m)^particle_model = .*$', 'particle_model = "uniform"', text)
    path = tmp_path / "small_rig.toml"
    path.write_text(text)
    return path


def test_a_write_error_stops_the_run_with_a_clear_message_and_the_written_bins_stay_readable(tmp_path):
    """A real write failure: the acquire process may not write past 1.5 MB (RLIMIT_FSIZE, SIGXFSZ
    ignored), so the kernel refuses the write with EFBIG, as a full disk would with ENOSPC."""
    out = tmp_path / "full.h5"
    limit_bytes = 1_500_000

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    proc = subprocess.run([sys.executable, "-m", "operascope.acquisition.cli", "acquire", "--config", str(_small_rig_toml(tmp_path)),
                           "--out", str(out), "--duration", "100000", "--speed", "10", "--fps", "10", "--bin", "2",
                           "--protocol", "ocv"],
                          cwd=REPO, capture_output=True, text=True, timeout=120, preexec_fn=limit_file_size,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1, proc.stderr[-2000:]              # a clean failure, not a crash (was SIGSEGV)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("operascope: error: ")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr and "Exception" not in proc.stderr, proc.stderr
    kept = int(re.search(r"keeps the (\d+) binned frames", errors[0]).group(1))
    assert f"File too large (errno 27) while writing {out}" in errors[0] and "recording stopped" in errors[0]
    assert os.path.getsize(out) <= limit_bytes
    assert f": {kept} binned frames" in proc.stdout            # the summary line counts what the file holds
    # what was written is readable and whole: no bin whose pixels never reached the disk
    with h5py.File(out, "r", swmr=True, libver="latest", locking=False) as f:
        frames = f[L.BINNED]["frames"][()]
        n_in_bin = f[L.BINNED]["n_frames_in_bin"][()]
        stop_reason = f[L.ENTRY]["stop_reason"][()].decode()
    assert frames.shape[0] == kept >= 10 and n_in_bin.shape == (kept,) and (n_in_bin == 2).all()
    assert (frames.reshape(kept, -1).mean(axis=1) > 100).all()
    assert stop_reason.startswith("error: run writer failed")
    with open_run(out) as run:
        assert run.n_frames == kept


# --------------------------------------------------------------------------- 7. electrochemistry safety
def test_the_simulated_channel_runs_past_its_limit_while_limit_ignored_is_in_force():
    """The fault the watchdog test relies on: the instrument's own cut-off really fails."""
    from operascope.config.loader import load_config
    from operascope.devices.base import ConstantCurrent
    from operascope.simulators.devices.potentiostat import SimulatedPotentiostat
    from operascope.simulators.world.world import World

    outcomes = {}
    for ignored in (False, True):
        world = World(load_config(None, {"simulation": {"speed": 10_000.0, "particle_model": "uniform"}}))
        with SimulatedPotentiostat(world) as pot:
            if ignored:
                world.inject_fault("potentiostat", "limit_ignored", duration_s=1e6)
            pot.start(ConstantCurrent(current_a=1e-3, v_limit_v=3.8, duration_s=600.0, record_every_s=5.0))
            world.clock.sleep_s(700.0)
            outcomes[ignored] = (max(p.voltage_v for p in pot.read_new()), pot.end_reason())
    assert outcomes[False][0] < 3.81 and outcomes[False][1] == "limit"
    assert outcomes[True][0] > 4.1 and outcomes[True][1] == "duration"      # ran on past 3.8 V


@pytest.mark.parametrize("rig", ["simulated", "emulated"])
def test_the_watchdog_stops_the_current_when_the_instruments_own_limit_fails(tmp_path, rig):
    """On the emulated rig the real Biologic driver talks to the fake EC-Lab library around the same cell."""
    path = tmp_path / "runaway.h5"
    v_max, margin = 3.80, 0.05
    config = None if rig == "simulated" else REPO / "config" / "emulated.toml"
    extra = SMALL if rig == "simulated" else dict(roi=(0, 0, 64, 64))
    with Microscope.from_config(config, speed=200, frame_rate_hz=1.0, c_rate=5.0, v_max=v_max,
                                safety_margin_v=margin, **extra) as scope:
        scope.world.inject_fault("potentiostat", "limit_ignored", duration_s=1e7)
        summary = scope.record(path, protocol="charge", duration_s=3000, bin_size=2)
        truth = scope.world.truth()
    assert summary.protocol_end == "safety" and summary.stop_reason == "protocol ended (safety)"
    assert truth["cell_current_a"] == 0.0                        # the channel is off
    with open_run(path) as run:
        echem = run.require_echem()
    # the voltage passed the cut-off (nothing else stopped it) and no further than the margin
    assert v_max + margin < echem.voltage_v.max() <= v_max + margin + 0.02
    after_trip = echem.time_s > echem.time_s[np.argmax(echem.voltage_v)]
    assert np.all(echem.current_a[after_trip] == 0.0)
    messages = [m for _, src, m in _events(path) if src == "protocol"]
    assert any(m.startswith("safety: cell voltage") and "cell stopped" in m for m in messages)
    with h5py.File(path, "r") as f:
        assert f[L.ENTRY]["stop_reason"][()].decode() == "protocol ended (safety)"


@pytest.mark.parametrize("rig, lost_for_s", [("simulated", 0.0), ("simulated", 20.0), ("emulated", 20.0)])
def test_potentiostat_link_loss_leaves_the_cell_at_rest_and_the_run_says_why(tmp_path, rig, lost_for_s):
    path = tmp_path / "unplugged.h5"
    config = None if rig == "simulated" else REPO / "config" / "emulated.toml"
    extra = SMALL if rig == "simulated" else dict(roi=(0, 0, 64, 64))
    with Microscope.from_config(config, speed=100, frame_rate_hz=1.0, c_rate=1.0, **extra) as scope:
        def unplug() -> None:
            _when(lambda: len(scope.echem) >= 20)
            scope.world.inject_fault("potentiostat", "link_loss", duration_s=lost_for_s)

        unplugger = threading.Thread(target=unplug)
        unplugger.start()
        summary = scope.record(path, protocol="charge", duration_s=30_000, bin_size=2)
        unplugger.join()
        truth = scope.world.truth()
        running, reason = scope.world.potentiostat_status()
    assert summary.protocol_end == "error" and summary.stop_reason == "protocol ended (error)"
    assert truth["cell_current_a"] == 0.0 and not running and reason in ("error", "stopped")
    messages = [m for _, src, m in _events(path) if src == "protocol"]
    assert any(m.startswith("protocol stopped by a potentiostat error") and "lost" in m for m in messages)
    assert any(m.startswith("potentiostat link lost") for m in messages)
    assert "potentiostat link back: channel switched off, the cell is at rest" in messages
    with h5py.File(path, "r") as f:
        assert f[L.ENTRY]["stop_reason"][()].decode() == "protocol ended (error)"


def test_a_few_potentiostat_timeouts_are_survived_and_too_many_end_the_protocol(tmp_path):
    with Microscope.from_config(None, speed=100, seed=1, frame_rate_hz=0.5, c_rate=1.0, **SMALL) as scope:
        scope.start_recording(tmp_path / "timeouts.h5", bin_size=2)
        runner = scope.start_protocol("charge")
        _when(lambda: len(scope.echem) >= 5)
        scope.world.inject_fault("potentiostat", "timeout", count=3)        # survived
        _when(lambda: runner.timeouts == 3)
        points = len(scope.echem)
        _when(lambda: len(scope.echem) >= points + 5)                       # still charging
        assert runner.is_running and runner.end_reason == "running"
        scope.world.inject_fault("potentiostat", "timeout", count=4)        # one more than allowed in a row
        assert runner.done.wait(10.0)
        summary = scope.stop_recording()
        truth = scope.world.truth()
    assert runner.end_reason == "error" and runner.timeouts == 3 + 4 and truth["cell_current_a"] == 0.0
    messages = [m for _, src, m in _events(tmp_path / "timeouts.h5") if src == "protocol"]
    assert sum(m.startswith("potentiostat timed out") for m in messages) == 3 + 3
    assert summary.errors == ()
