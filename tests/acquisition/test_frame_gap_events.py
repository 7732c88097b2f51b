"""Every frame-id gap (frames the engine never received) is one event naming the missing ids, and it
reaches /entry/events of the run file."""

from __future__ import annotations

import re
import threading
import time

import h5py
import numpy as np

from operascope.acquisition.capture import CaptureThread, frame_gap_message
from operascope.acquisition.microscope import Microscope
from operascope.analysis import runfile_layout as L
from operascope.devices.base import DeviceTimeout, Frame


class SkippingCamera:
    """Hands out frames with the given ids, then blocks (as a camera with nothing new)."""

    def __init__(self, ids: list[int]) -> None:
        self._ids = list(ids)
        self.done = threading.Event()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def read(self, timeout_s: float = 1.0) -> Frame:
        if not self._ids:
            self.done.set()
            time.sleep(0.01)
            raise DeviceTimeout("no frame")
        frame_id = self._ids.pop(0)
        return Frame(np.zeros((2, 2), np.uint16), frame_id, frame_id * 1000, time.monotonic())


def test_frame_gap_message_names_the_missing_ids():
    assert frame_gap_message(5, 5) == "frame-id gap: 1 frame missing (id 5; counted as dropped)"
    assert frame_gap_message(7, 9) == "frame-id gap: 3 frames missing (ids 7..9; counted as dropped)"


def test_each_gap_is_one_event_with_its_ids():
    events: list[tuple[str, str]] = []
    camera = SkippingCamera([0, 1, 2, 4, 5, 9, 10, 11, 30])
    capture = CaptureThread(camera, [lambda frame: None], on_event=lambda level, msg: events.append((level, msg)))
    capture.start()
    assert camera.done.wait(5.0)
    capture.stop()
    gaps = [msg for level, msg in events if msg.startswith("frame-id gap")]
    assert gaps == [frame_gap_message(3, 3), frame_gap_message(6, 8), frame_gap_message(12, 29)]
    assert all(level == "warning" for level, msg in events if msg.startswith("frame-id gap"))
    assert capture.counts().frames_dropped == 1 + 3 + 18


def test_gap_events_in_the_run_file_add_up_to_the_dropped_frames(tmp_path):
    path = tmp_path / "gaps.h5"
    with Microscope.from_config(None, speed=10, frame_rate_hz=10.0, read_timeout_s=0.5, roi=(0, 0, 64, 64),
                                particle_model="uniform") as scope:
        scope.start_recording(path, bin_size=2)
        deadline = time.monotonic() + 30
        while scope.status().bins_written < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        scope.world.inject_fault("camera", "incomplete_frame", count=3)
        while scope.status().incomplete_frames < 3 or scope.status().bins_written < 6:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        summary = scope.stop_recording("test done")
    with h5py.File(path, "r") as f:
        messages = [m.decode() for m in f[L.EVENTS]["message"][()]]
    missing = [int(re.search(r"gap: (\d+) frame", m).group(1)) for m in messages if m.startswith("frame-id gap")]
    assert len(missing) >= 1 and sum(missing) == summary.frames_dropped >= 3
