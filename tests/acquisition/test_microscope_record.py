"""Recording through the Microscope API with fake devices: counts, drops, file layout, SWMR, stops."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import h5py
import numpy as np
import pytest

from operascope.acquisition.microscope import Microscope
from operascope.analysis import runfile_layout as L
from operascope.analysis.runfile import open_run
from tests.fakes.rig import fake_rig_factory, small_config


def scope(speed=20.0, sensor=(60, 80), **acq):
    factory = fake_rig_factory(speed=speed, sensor=sensor)
    return Microscope(small_config(**acq), rig_factory=factory), factory


def binned(path):
    with h5py.File(path, "r") as f:
        g = f[L.BINNED]
        return {k: g[k][()] for k in ("n_frames_in_bin", "first_frame_id", "last_frame_id", "partial",
                                      "dropped_in_bin", "time", "voltage", "current", "capacity_mAh_g")} | {
            "frames": g["frames"][()], "camera_dropped": f[L.CAMERA]["frames_dropped"][()],
            "camera_in": f[L.CAMERA]["frames_in"][()]}


def test_every_frame_is_binned_or_counted_and_the_file_holds_every_bin(tmp_path):
    path = tmp_path / "run.h5"
    microscope, _ = scope(bin_size=5)
    with microscope:
        summary = microscope.record(path, duration_s=12.0)
    b = binned(path)
    n = len(b["n_frames_in_bin"])
    assert summary.bins == n == b["frames"].shape[0] and n >= 20
    # frames in = bins x N (+ partial bin)
    full = b["n_frames_in_bin"][~b["partial"].astype(bool)]
    assert np.all(full == 5) and b["partial"][:-1].sum() == 0
    assert summary.frames_in == b["n_frames_in_bin"].sum() == b["camera_in"]
    assert summary.frames_in == 5 * (n - summary.partial_bins) + (b["n_frames_in_bin"][-1] if summary.partial_bins else 0)
    # no frame id missing without being counted
    span = int(b["last_frame_id"][-1] - b["first_frame_id"][0] + 1)
    assert span == summary.frames_in + summary.frames_dropped
    assert np.all(b["first_frame_id"][1:] == b["last_frame_id"][:-1] + 1 + b["dropped_in_bin"][1:])
    assert summary.stop_reason == "duration reached"
    assert np.all(np.diff(b["time"]) > 0) and b["frames"].dtype == np.float32


def test_injected_drops_are_counted_exactly(tmp_path):
    path = tmp_path / "drops.h5"
    microscope, factory = scope(bin_size=4)
    with microscope:
        microscope.start_live()
        microscope.start_recording(path, bin_size=4)
        camera = factory.built.camera
        for count in (3, 7):
            time.sleep(0.3)
            camera.drop(count)
        time.sleep(0.3)
        summary = microscope.stop_recording("test")
    b = binned(path)
    assert summary.frames_dropped == 10 == b["camera_dropped"] == b["dropped_in_bin"].sum()
    span = int(b["last_frame_id"][-1] - b["first_frame_id"][0] + 1)
    assert span == summary.frames_in + 10


def test_run_file_layout_is_nexus_and_readable_by_the_analysis_reader(tmp_path):
    path = tmp_path / "layout.h5"
    microscope, _ = scope(bin_size=5, save_raw=True)
    with microscope:
        summary = microscope.record(path, duration_s=6.0)
    with h5py.File(path, "r") as f:
        assert f[L.ENTRY].attrs["NX_class"] == "NXentry"
        assert f[L.BINNED].attrs["NX_class"] == "NXdata" and f[L.BINNED].attrs["signal"] == "frames"
        assert f[L.CAMERA].attrs["NX_class"] == "NXdetector"
        assert f[L.SAMPLE]["active_mass_mg"][()] == pytest.approx(1.0)
        toml_text = f[L.CONFIG][()].decode()
        assert "[acquisition]" in toml_text and "bin_size = 5" in toml_text
        raw = f[L.RAW]["frames"]
        assert raw.shape[0] == summary.raw_frames == summary.frames_in and raw.dtype == np.uint16
        assert np.all(np.diff(f[L.RAW]["frame_id"][()]) >= 1)
        mask = f[L.DIFFERENTIAL]["mask"][()].astype(bool)
        diff = f[L.DIFFERENTIAL]["frames"][()]
        stop_reason = f[L.ENTRY]["stop_reason"][()].decode()
        messages = [m.decode() for m in f[L.EVENTS]["message"][()]]
    # the fake particle is a disc of radius 0.2 x 60 px = 12 px -> ~452 px; mask frozen from the reference
    assert 350 < mask.sum() < 600
    assert np.all(np.isnan(diff[:, ~mask])) and np.nanmax(np.abs(diff[:, mask])) < 0.05
    assert stop_reason == "duration reached"
    assert any("recording stopped" in m for m in messages) and any("rig opened" in m for m in messages)
    with open_run(path) as run:
        assert run.n_frames == summary.bins and run.pixel_size_nm == pytest.approx(34.7)


def test_binned_frames_carry_voltage_current_capacity_at_their_mid_time(tmp_path):
    path = tmp_path / "charge.h5"
    microscope, factory = scope(speed=100.0, sensor=(40, 48), bin_size=4, frame_rate_hz=2.0)
    config_ec = microscope.config.electrochemistry
    config_ec.c_rate = 10.0
    with microscope:
        summary = microscope.record(path, protocol="charge")
    assert summary.stop_reason == "protocol ended (cut-off)"
    with h5py.File(path, "r") as f:
        ec = f[L.ELECTROCHEMISTRY]
        t, v, q = ec["time"][()], ec["voltage"][()], ec["capacity_mAh_g"][()]
        kinds = [k.decode() for k in ec["techniques"]["kind"][()]]
        b = {k: f[L.BINNED][k][()] for k in ("time", "voltage", "current", "capacity_mAh_g")}
    assert kinds == ["charge"]
    assert v[-1] >= 4.3 and v[-2] < 4.3                     # stopped at the cut-off
    inside = (b["time"] > t[0]) & (b["time"] < t[-1])
    assert inside.sum() >= 5
    np.testing.assert_allclose(b["voltage"][inside], np.interp(b["time"][inside], t, v), atol=0.02)
    np.testing.assert_allclose(b["capacity_mAh_g"][inside], np.interp(b["time"][inside], t, q), atol=2.0)
    assert np.allclose(b["current"][inside], 10 * 200e-6)


def test_a_second_process_reads_the_growing_file_in_swmr_mode(tmp_path):
    path = tmp_path / "swmr.h5"
    reader = textwrap.dedent(f"""
        import time, h5py
        sizes = []
        with h5py.File({str(path)!r}, "r", swmr=True, libver="latest") as f:
            ds = f["/entry/binned/frames"]
            end = time.monotonic() + 2.5
            while time.monotonic() < end:
                ds.refresh()
                sizes.append(ds.shape[0])
                time.sleep(0.1)
            last = ds[ds.shape[0] - 1] if ds.shape[0] else None
        print(" ".join(map(str, sizes)), "ok" if last is not None and last.mean() > 0 else "empty")
    """)
    microscope, _ = scope(bin_size=5)
    with microscope:
        microscope.start_recording(path, bin_size=5)
        time.sleep(0.2)
        proc = subprocess.run([sys.executable, "-c", reader], capture_output=True, text=True, timeout=60)
        microscope.stop_recording()
    assert proc.returncode == 0, proc.stderr
    *sizes, verdict = proc.stdout.split()
    sizes = [int(s) for s in sizes]
    assert verdict == "ok"
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0] and len(set(sizes)) >= 3


def test_request_stop_from_another_thread_ends_the_run_with_a_valid_file(tmp_path):
    path = tmp_path / "stopped.h5"
    microscope, _ = scope(bin_size=3)
    with microscope:
        threading.Timer(0.8, microscope.request_stop, args=("operator",)).start()
        summary = microscope.record(path, duration_s=10_000.0)
    assert summary.stop_reason == "operator" and summary.bins >= 3
    with open_run(path) as run:
        assert run.n_frames == summary.bins
        assert run.binned.n_frames_in_bin.sum() == summary.frames_in


def test_status_reports_counts_queues_and_state(tmp_path):
    microscope, _ = scope(bin_size=5)
    seen = []
    with microscope:
        assert microscope.status().state == "idle"
        microscope.start_live()
        time.sleep(0.5)
        live = microscope.status()
        assert live.state == "live" and live.frames_in > 0
        assert microscope.latest_frame() is not None
        assert microscope.latest_differential() is not None
        microscope.subscribe_events(seen.append)
        microscope.stop_live()
    names = {c.name for c in live.consumers}
    assert {"binner", "live view", "live differential"} <= names
    assert any("live view" in e.message or "recording" in e.message or "stopped" in e.message for e in seen) or seen == []


def test_bad_record_arguments_are_refused_before_anything_starts(tmp_path):
    microscope, factory = scope()
    with microscope:
        for kwargs, message in (({"duration_s": -1.0}, "duration"), ({"duration_s": 5, "bin_size": 0}, "bin size"),
                                ({}, "duration_s, a protocol")):
            with pytest.raises(ValueError, match=message):
                microscope.record(tmp_path / "x.h5", **kwargs)
        assert not microscope.is_live and not (tmp_path / "x.h5").exists()
        assert factory.built.potentiostat.started == []


def test_a_protocol_started_before_the_recording_is_in_the_file_from_its_start(tmp_path):
    path = tmp_path / "late.h5"
    microscope, _ = scope(speed=50.0, bin_size=5)
    with microscope:
        microscope.start_protocol("charge")
        time.sleep(0.4)
        before = len(microscope.echem)
        microscope.start_recording(path, bin_size=5)
        time.sleep(0.4)
        microscope.stop_protocol()
        microscope.stop_recording()
        total = len(microscope.echem)
    with h5py.File(path, "r") as f:
        t = f[L.ELECTROCHEMISTRY]["time"][()]
        kinds = [k.decode() for k in f[L.ELECTROCHEMISTRY]["techniques"]["kind"][()]]
        start = f[L.ELECTROCHEMISTRY]["techniques"]["start_time"][()]
    assert before >= 5 and t.size == total > before        # every point once, none lost at the switch
    assert np.all(np.diff(t) > 0) and (t < 0).sum() >= before - 1
    assert kinds == ["charge"] and start[0] < 0


def test_a_writer_failure_ends_the_run_with_an_error_and_a_file_that_still_opens(tmp_path, monkeypatch):
    from operascope.acquisition.run_writer import RunWriter

    original = RunWriter._w_binned
    calls = {"n": 0}

    def failing(self, *args):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("No space left on device")
        original(self, *args)

    monkeypatch.setattr(RunWriter, "_w_binned", failing)
    path = tmp_path / "full_disk.h5"
    microscope, _ = scope(bin_size=3)
    with microscope:
        summary = microscope.record(path, duration_s=10_000.0)
    assert summary.stop_reason.startswith("error: run writer failed: OSError: No space left on device")
    assert summary.errors and "No space left" in summary.errors[0]
    with open_run(path) as run:
        assert run.n_frames == 3                      # the bins written before the failure
    with h5py.File(path, "r") as f:
        assert f[L.ENTRY]["stop_reason"][()].decode().startswith("error")


def test_a_stop_requested_before_record_starts_nothing(tmp_path):
    microscope, factory = scope()
    with microscope:
        microscope.request_stop("stopped by SIGINT")
        with pytest.raises(InterruptedError, match="stopped by SIGINT before the recording started"):
            microscope.record(tmp_path / "never.h5", duration_s=5.0, protocol="charge")
        assert not (tmp_path / "never.h5").exists() and factory.built.potentiostat.started == []
        summary = microscope.record(tmp_path / "next.h5", duration_s=2.0)   # the request was used up
    assert summary.stop_reason == "duration reached"
