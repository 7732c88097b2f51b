"""Simulated camera: configuration limits, pacing on the virtual clock, drops, determinism."""

from __future__ import annotations

import time

import numpy as np
import pytest

from operascope.devices.base import DeviceError, OutOfRange, Roi
from operascope.simulators.devices.camera import max_frame_rate_hz
from tests.fakes.sim_world import make_world, open_devices

ROI = Roi(0, 0, 320, 288)


def test_configure_refuses_impossible_settings():
    world = make_world()
    camera = open_devices(world)["camera"]
    with pytest.raises(OutOfRange, match="frame period"):
        camera.configure(exposure_ms=150.0, frame_rate_hz=10.0, roi=ROI)
    with pytest.raises(OutOfRange, match="frame rate"):
        camera.configure(exposure_ms=1.0, frame_rate_hz=100.0, roi=None, pixel_format="Mono16")  # full frame 16-bit: 82 fps
    with pytest.raises(OutOfRange, match="roi"):
        camera.configure(exposure_ms=1.0, frame_rate_hz=10.0, roi=Roi(1800, 0, 320, 288))
    with pytest.raises(OutOfRange, match="pixel format"):
        camera.configure(exposure_ms=1.0, frame_rate_hz=10.0, roi=ROI, pixel_format="RGB8")
    with pytest.raises(OutOfRange, match="gain"):
        camera.configure(exposure_ms=1.0, frame_rate_hz=10.0, roi=ROI, gain_db=60.0)
    # full frame 8-bit allows ~163 fps; a 300-row ROI four times as much
    assert camera.configure(exposure_ms=1.0, frame_rate_hz=160.0, pixel_format="Mono8").frame_rate_hz == 160.0
    assert max_frame_rate_hz(300, "Mono16") == pytest.approx(4 * 82.0)
    camera.configure(exposure_ms=2.5, frame_rate_hz=10.0, roi=ROI)
    camera.start()
    with pytest.raises(DeviceError, match="streaming"):
        camera.configure(exposure_ms=2.0, frame_rate_hz=10.0, roi=ROI)


def test_frames_are_paced_on_the_virtual_clock():
    world = make_world(speed=5.0)
    camera = open_devices(world)["camera"]
    camera.configure(exposure_ms=2.5, frame_rate_hz=10.0, roi=ROI)
    camera.start()
    frames = [camera.read(timeout_s=1.0) for _ in range(12)]
    ids = [f.frame_id for f in frames]
    assert ids == list(range(12))
    stamps_s = np.array([f.camera_time_ns for f in frames]) * 1e-9
    assert np.allclose(np.diff(stamps_s), 0.1, atol=1e-6)
    host = np.array([f.host_time_s for f in frames])
    # each frame is returned after its exposure ended, and not much later
    assert np.all(host >= stamps_s + 0.0025 - 1e-9)
    assert np.median(host - stamps_s) < 0.05  # typically returned within half a period (load permitting)
    assert frames[0].pixels.shape == (288, 320)


def test_slow_reader_sees_drops_not_a_slower_clock():
    world = make_world(speed=2.0, camera_buffer_frames=5)   # 20 frames per wall s: the reader is far faster
    camera = open_devices(world)["camera"]
    camera.configure(exposure_ms=2.5, frame_rate_hz=10.0, roi=ROI)
    camera.start()
    first = camera.read()
    time.sleep(2.5)  # 5 virtual s = 50 frames, but only 5 are buffered
    burst = [camera.read() for _ in range(6)]
    ids = [first.frame_id] + [f.frame_id for f in burst]
    gap = ids[1] - ids[0]
    assert gap > 40  # frames were overwritten while the reader slept
    # the buffered ones follow in order; while the oldest of a full buffer is read the newest exposure may
    # overwrite the next oldest, so at most one more id goes missing in the burst
    assert all(b > a for a, b in zip(ids[1:], ids[2:])) and ids[-1] - ids[1] <= 6
    # the clock kept running: the first buffered frame is at most 5 frames old
    assert burst[0].host_time_s - burst[0].camera_time_ns * 1e-9 <= 0.5 + 0.2


def test_the_time_stamp_latch_splits_a_buffered_backlog_at_the_latch():
    world = make_world(speed=2.0, camera_buffer_frames=20)
    camera = open_devices(world)["camera"]
    camera.configure(exposure_ms=2.5, frame_rate_hz=10.0, roi=ROI)
    camera.start()
    camera.read()
    time.sleep(0.5)                           # ~10 virtual frames wait, unread
    latched_ns = camera.timestamp_now_ns()
    frames = [camera.read() for _ in range(16)]
    stamps = [f.camera_time_ns for f in frames]
    assert stamps == sorted(stamps)
    before = [f for f in frames if f.camera_time_ns < latched_ns]
    assert len(before) >= 5 and all(f.host_time_s * 1e9 >= latched_ns for f in before)   # read after the latch
    first_after = next(f for f in frames if f.camera_time_ns >= latched_ns)
    assert first_after.camera_time_ns - latched_ns <= 100_000_000   # within one frame period


def test_mono8_is_scaled_to_eight_bits():
    world = make_world(speed=100.0)
    camera = open_devices(world)["camera"]
    camera.configure(exposure_ms=2.5, frame_rate_hz=10.0, roi=ROI, pixel_format="Mono8")
    camera.start()
    pixels = camera.read().pixels
    assert pixels.max() <= 255 and pixels.mean() > 100


def _three_frames(seed: int) -> list[np.ndarray]:
    world = make_world(speed=1.0, seed=seed)
    camera = open_devices(world)["camera"]
    camera.configure(exposure_ms=2.5, frame_rate_hz=20.0, roi=Roi(0, 0, 64, 64))
    camera.start()
    frames = [camera.read() for _ in range(3)]
    camera.close()
    return [f.pixels for f in frames if f.frame_id >= 0]


def test_same_seed_same_frames_different_seed_different_noise():
    a = _three_frames(seed=7)
    b = _three_frames(seed=7)
    c = _three_frames(seed=8)
    for fa, fb, fc in zip(a, b, c):
        assert np.array_equal(fa, fb)
        difference = fa.astype(float) - fc.astype(float)
        assert np.count_nonzero(difference) > 0.9 * difference.size
        assert abs(difference.mean()) < 5  # same scene, different noise
    # frames of one run differ from each other (fresh noise every frame)
    assert not np.array_equal(a[0], a[1])
