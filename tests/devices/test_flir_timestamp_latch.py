"""The FLIR driver latches the camera's tick counter (GenICam TimestampLatch / TimestampLatchValue), the
clock of the images' time stamps, so the engine can tell frames exposed after a moment from frames
exposed before it that are only read later (a backlog in the buffer pool)."""

from __future__ import annotations

import importlib

import pytest

from operascope.devices.base import DeviceLost
from operascope.devices.flir import FlirCamera
from operascope.simulators.emulators import fake_pyspin as spin

from tests.fakes.flir import FAKE, ROI, SERIAL, FastClock, attach


def test_the_sdk_calls_latch_then_read_the_counter_which_refuses_writes(fake):
    clock = FastClock(speed=10.0)
    attach(clock=clock)
    system = spin.System.GetInstance()
    cams = system.GetCameras()
    cam = cams.GetBySerial(SERIAL)
    cam.Init()
    try:
        assert cam.TimestampLatchValue.GetValue() == 0          # nothing latched since power-on
        cam.TimestampLatch.Execute()
        first = cam.TimestampLatchValue.GetValue()
        assert cam.TimestampLatchValue.GetValue() == first       # the value holds until the next latch
        clock.sleep_s(0.5)
        cam.TimestampLatch.Execute()
        second = cam.TimestampLatchValue.GetValue()
        assert 0.45e9 < second - first < 5e9
        with pytest.raises(spin.SpinnakerException):
            cam.TimestampLatchValue.SetValue(0)                 # read-only on the camera
    finally:
        cam.DeInit()
        del cam
        cams.Clear()
        system.ReleaseInstance()


def test_a_latch_separates_the_backlog_from_frames_exposed_after_it(fake):
    clock = FastClock(speed=10.0)
    attach(clock=clock)
    with FlirCamera(serial=SERIAL, sdk_module=FAKE, clock=clock, buffer_handling="OldestFirst", buffer_count=20) as cam:
        cam.configure(2.0, 50.0, ROI, "Mono8")
        cam.start()
        first = cam.read(1.0)
        clock.sleep_s(0.2)                                      # ~10 exposures wait in the pool, unread
        latched_ns = cam.timestamp_now_ns()
        latched_rig_s = clock.now_s()
        frames = [cam.read(1.0) for _ in range(16)]
        cam.stop()
    assert latched_ns > first.camera_time_ns
    before = [f for f in frames if f.camera_time_ns < latched_ns]
    after = [f for f in frames if f.camera_time_ns >= latched_ns]
    assert len(before) >= 5 and after                            # the backlog was read after the latch ...
    assert all(f.host_time_s >= latched_rig_s for f in before)   # ... so its read times say nothing
    assert max(f.frame_id for f in before) < min(f.frame_id for f in after)
    # the first frame after the latch started its exposure within one frame period of it
    assert 0 <= after[0].camera_time_ns - latched_ns <= 20_000_000 + 1


def test_a_camera_without_a_latch_says_none_and_a_lost_one_is_lost(fake, monkeypatch):
    fake_camera = importlib.import_module("operascope.simulators.emulators.fake_pyspin.camera")
    full_map = fake_camera.build_genicam_nodemap

    def older_firmware(handle):
        nodemap = full_map(handle)
        del nodemap.nodes["TimestampLatch"], nodemap.nodes["TimestampLatchValue"]
        return nodemap

    attach()
    with monkeypatch.context() as patch:
        patch.setattr(fake_camera, "build_genicam_nodemap", older_firmware)
        with FlirCamera(serial=SERIAL, sdk_module=FAKE) as cam:
            assert cam.timestamp_now_ns() is None
    with FlirCamera(serial=SERIAL, sdk_module=FAKE) as cam:
        assert cam.timestamp_now_ns() > 0
        spin.unplug(SERIAL)
        with pytest.raises(DeviceLost):
            cam.timestamp_now_ns()
