"""Frames are gated by when they were exposed, not when they were read: the autofocus' live frame source
and the multi-position router take only frames whose exposure started after the camera's latched time."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.acquisition.autofocus import AutofocusError, LiveFrameSource
from operascope.acquisition.camera_clock import ExposureStamper
from operascope.acquisition.live_differential import LiveDifferential
from operascope.acquisition.position_router import PositionRouter, PositionTarget
from operascope.devices.base import Frame

PERIOD_NS = 100_000_000


def _frame(frame_id: int, value: float, read_late_s: float = 0.0) -> Frame:
    start_ns = frame_id * PERIOD_NS
    return Frame(np.full((4, 4), value, dtype=np.uint16), frame_id, start_ns, start_ns * 1e-9 + 0.01 + read_late_s)


class BacklogCamera:
    """A newest-frame slot fed from a backlog: frames 0..9 (exposed before the latch) are read after it."""

    def __init__(self) -> None:
        self.frames = [_frame(k, 100 if k < 10 else 200, read_late_s=1.0) for k in range(20)]
        self.next = 0
        self.slot: Frame | None = _frame(0, 100)

    def latch_ns(self) -> int:
        return 10 * PERIOD_NS - 1     # the z move ended just before frame 10 started

    def peek(self) -> Frame | None:
        if self.next < len(self.frames):
            self.slot = self.frames[self.next]
            self.next += 1
        return self.slot


def test_live_source_with_a_latch_never_takes_a_frame_exposed_before_the_call():
    camera = BacklogCamera()
    image = LiveFrameSource(camera.peek, latch=camera.latch_ns).grab(3)
    assert np.all(image == 200)


def test_live_source_without_a_latch_takes_the_backlog_which_is_why_the_latch_exists():
    camera = BacklogCamera()
    image = LiveFrameSource(camera.peek).grab(3)      # ids 2, 3, 4: exposed before the move ended
    assert np.all(image == 100)


def test_live_source_gives_a_clear_error_when_no_new_frame_comes():
    source = LiveFrameSource(lambda: _frame(3, 1), timeout_wall_s=0.05, latch=lambda: 10 * PERIOD_NS)
    with pytest.raises(AutofocusError, match="only 0 of 2 new camera frames"):
        source.grab(2)


def _router(stamper: ExposureStamper | None = None) -> PositionRouter:
    target = PositionTarget(0, "A", LiveDifferential(0.1, False, None, 15, 1))
    router = PositionRouter([target], bin_size=2, dwell_bins=1, exposure_s=0.01, frame_period_s=0.1)
    router.stamper = stamper
    return router


def test_router_bins_only_frames_exposed_after_the_latched_camera_time_however_late_they_are_read():
    router = _router(ExposureStamper(exposure_ms=10.0))
    for k in range(3):                                # prompt reads: the clock map is exact
        router.add_frame(_frame(k, 1))
    # focus came back at rig 0.95 s (camera 0.95e9 ns); frames 5..9 were exposed before and are read late
    done = router.open_visit(0, 0, t_open_s=0.95, since_camera_ns=950_000_000)
    out = []
    for k in range(5, 14):
        out += router.add_frame(_frame(k, 7 if k >= 10 else 1, read_late_s=2.0 if k < 10 else 0.0))
    assert done.is_set() and len(out) == 1
    binned, routed = out[0]
    assert (binned.first_frame_id, binned.last_frame_id) == (10, 11) and np.all(binned.pixels == 7)
    # its time is the exposure mid-time from the camera stamps, not the host read time
    assert binned.mid_time_s == pytest.approx((1.005 + 1.105) / 2, abs=1e-9)          # host reads: 1.06 s
    assert routed.target.name == "A" and router.frames_discarded == 3 + 5 + 2   # before, backlog, after the visit


def test_router_without_a_latch_falls_back_to_the_estimate_with_a_frame_of_margin():
    router = _router()
    router.add_frame(_frame(0, 1))
    done = router.open_visit(0, 0, t_open_s=0.25)
    out = []
    for k in range(1, 8):
        out += router.add_frame(_frame(k, k))
    assert done.is_set() and (out[0][0].first_frame_id, out[0][0].last_frame_id) == (4, 5)
    assert out[0][0].mid_time_s == pytest.approx((0.41 + 0.51) / 2, abs=1e-9)   # no stamper: host read times


def test_a_live_reference_restart_waits_for_a_bin_exposed_after_the_latch():
    differential = LiveDifferential(0.1, drift_correction=False)
    assert differential.accepts((5, 6))                       # no restart asked: any bin
    differential.process(np.full((8, 8), 100.0, dtype=np.float32), 0.0)
    differential.reset(reference_not_before_ns=1_000)         # e.g. the lock just locked
    assert not differential.accepts((900, 1_100))             # one frame exposed while it closed in
    assert differential.reference is None
    assert differential.accepts((1_000, 1_200))
    assert differential.process(np.full((8, 8), 120.0, dtype=np.float32), 1.0).index == 0
    assert differential.accepts((10, 20))                     # a reference exists: every bin is differenced
    differential.reset()
    assert differential.accepts((10, 20))                     # a plain reset takes the next bin
