"""Tests of the shared fake devices themselves (tests/fakes/rig.py)."""

from __future__ import annotations

import time

import numpy as np

from tests.fakes.rig import *  # noqa: F401,F403
from tests.fakes.rig import FakeCamera, FakeCell, FastClock


def test_fake_camera_ids_skip_by_the_dropped_count():
    cam = FakeCamera(FastClock(1000.0))
    cam.open()
    cam.configure(2.0, 10.0)
    cam.start()
    ids = [cam.read().frame_id for _ in range(3)]
    cam.drop(4)
    ids.append(cam.read().frame_id)
    assert ids == [0, 1, 2, 7]


def test_fake_cell_charges_to_the_limit():
    clock = FastClock(20_000.0)
    cell = FakeCell(clock)
    cell.start(ConstantCurrent(2e-4, 4.0, 10_000.0, 10.0))
    while cell.is_running():
        time.sleep(0.005)
    points = cell.read_new()
    assert cell.end_reason() == "limit"
    assert points[-1].voltage_v >= 4.0 > points[-2].voltage_v
    cell.start(OCV(50.0, 10.0))
    while cell.is_running():
        time.sleep(0.005)
    assert cell.end_reason() == "duration" and len(cell.read_new()) == 5
