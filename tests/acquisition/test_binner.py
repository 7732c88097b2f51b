"""Binner and fan-out queues: counts, means, partial bins, gap counting, drops."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from operascope.acquisition.binner import Binner
from operascope.acquisition.queues import MustNotDropQueue, NewestOnlySlot
from operascope.devices.base import Frame


def frame(frame_id: int, value: float, shape=(4, 5)) -> Frame:
    return Frame(np.full(shape, value, dtype=np.uint16), frame_id, frame_id * 100, frame_id * 0.1)


def test_bins_average_n_frames_and_mark_the_partial_last_bin():
    binner = Binner(3)
    out = [b for k in range(8) if (b := binner.add(frame(k, 10 * k))) is not None]
    partial = binner.flush()
    assert [b.n_frames for b in out] == [3, 3] and partial.n_frames == 2 and partial.partial
    assert not any(b.partial for b in out)
    assert out[0].pixels.dtype == np.float32
    np.testing.assert_allclose(out[0].pixels, 10.0)          # mean of 0, 10, 20
    np.testing.assert_allclose(out[1].pixels, 40.0)          # mean of 30, 40, 50
    np.testing.assert_allclose(partial.pixels, 65.0)         # mean of 60, 70
    assert (out[1].first_frame_id, out[1].last_frame_id) == (3, 5)
    assert out[1].mid_time_s == pytest.approx(0.4)
    assert binner.frames_in == sum(b.n_frames for b in out) + partial.n_frames == 8
    assert binner.flush() is None


def test_gaps_in_frame_ids_are_counted_as_dropped_per_bin():
    binner = Binner(2)
    ids = [0, 1, 2, 5, 6, 10]
    bins = [b for i in ids if (b := binner.add(frame(i, 1))) is not None]
    assert binner.frames_dropped == 2 + 3
    assert [b.dropped_in_bin for b in bins] == [0, 2, 3]


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "20"])
def test_bad_bin_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="bin size"):
        Binner(bad)


def test_bin_size_one_passes_frames_through():
    binner = Binner(1)
    b = binner.add(frame(7, 123))
    assert b.n_frames == 1 and b.first_frame_id == b.last_frame_id == 7
    np.testing.assert_allclose(b.pixels, 123)


def test_must_not_drop_queue_blocks_raises_alarm_and_keeps_every_item():
    alarms = []
    q = MustNotDropQueue("binner", 2, alarms.append)
    received = []

    def slow_consumer():
        for _ in range(6):
            time.sleep(0.02)
            received.append(q.get(1.0))

    t = threading.Thread(target=slow_consumer)
    t.start()
    for k in range(6):
        assert q.put(k)
    t.join(5)
    counts = q.counts()
    assert received == list(range(6))
    assert (counts.items_in, counts.items_out, counts.dropped) == (6, 6, 0)
    assert len(alarms) >= 1 and "falling behind" in alarms[0]


def test_must_not_drop_queue_counts_a_drop_only_when_stopped_while_full():
    q = MustNotDropQueue("raw", 1)
    stop = threading.Event()
    q.put("a")
    stop.set()
    assert q.put("b", stop=stop) is False
    assert q.counts().dropped == 1 and q.counts().depth == 1


def test_newest_only_slot_keeps_the_newest_and_counts_what_it_drops():
    slot = NewestOnlySlot("live view")
    for k in range(5):
        slot.put(k)
    assert slot.take() == 4
    assert slot.take() is None
    slot.put(9)
    assert slot.peek() == 9
    counts = slot.counts()
    assert (counts.items_in, counts.items_out, counts.dropped) == (6, 1, 4)


def test_float32_sums_stay_exact_for_bins_of_full_scale_uint16_frames():
    rng = np.random.default_rng(0)
    frames = [rng.integers(60000, 65536, size=(3, 4), dtype=np.uint16) for _ in range(256)]
    binner = Binner(256)
    out = [b for k, f in enumerate(frames) if (b := binner.add(Frame(f, k, 0, 0.0))) is not None]
    exact = np.stack(frames).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(out[0].pixels, exact, rtol=1e-7)   # only the final float32 rounding
