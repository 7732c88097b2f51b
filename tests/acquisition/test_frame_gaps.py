"""Every frame-id gap of a recording is an event; gaps close in time share one line."""

from __future__ import annotations

import numpy as np

from operascope.acquisition.binner import Binner
from operascope.acquisition.frame_gaps import MAX_LISTED, FrameGapLog
from operascope.devices.base import Frame


def make_frame(frame_id: int) -> Frame:
    return Frame(np.zeros((4, 5), dtype=np.uint16), frame_id, frame_id * 100, frame_id * 0.1)


def _log(now):
    lines = []
    return FrameGapLog(lambda level, source, message: lines.append((level, source, message)), 1.0,
                       lambda: now[0]), lines


def test_each_gap_is_named_and_a_burst_is_one_line():
    now = [0.0]
    log, lines = _log(now)
    log.add(10, 3)                       # the first gap: at once
    log.add(20, 1)
    log.add(25, 2)                       # within the second: held
    assert lines == [("warning", "camera", "frame ids missing (frame-id gap): 10-12 (3 frames)")]
    now[0] = 1.5
    log.add(40, 1)
    assert lines[-1][2] == "frame ids missing (frame-id gap): 20, 25-26, 40 (4 frames)"
    log.add(50, 1)
    log.flush()                          # the end of the recording: nothing held back
    assert lines[-1][2] == "frame ids missing (frame-id gap): 50 (1 frame)"
    assert (log.gaps, log.frames) == (5, 8)


def test_a_flood_of_gaps_is_cut_short_but_counted():
    now = [0.0]
    log, lines = _log(now)
    log.add(0, 1)
    for k in range(MAX_LISTED + 5):
        log.add(10 + 3 * k, 1)
    log.flush()
    assert lines[-1][2].endswith(f"and 5 more gaps ({MAX_LISTED + 5} frames)")


def test_the_binner_reports_the_gap_each_frame_closed():
    binner = Binner(4)
    gaps = []
    for frame_id in (0, 1, 4, 5, 9):
        binner.add(make_frame(frame_id))
        gaps.append(binner.last_gap)
    assert gaps == [None, None, (2, 2), None, (6, 3)]
    assert binner.frames_dropped == 5
