"""Helpers for tests of the FLIR drivers against the fake PySpin: a pattern renderer, a fast clock, leak checks."""

from __future__ import annotations

import time

import numpy as np

from operascope.devices.base import Roi
from operascope.simulators.emulators import fake_pyspin as spin

FAKE = "operascope.simulators.emulators.fake_pyspin"
SERIAL = "17255300"
ROI = Roi(8, 4, 64, 32)


class FastClock:
    """A clock running ``speed`` times faster than the wall clock."""

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self._t0 = time.monotonic()

    def now_s(self) -> float:
        return (time.monotonic() - self._t0) * self.speed

    def sleep_s(self, duration_s: float) -> None:
        time.sleep(max(duration_s, 0.0) / self.speed)


class PatternRenderer:
    """Frame source: a full-range 12-bit pattern fixed to sensor coordinates; records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Roi, float, float]] = []

    @staticmethod
    def pattern(roi: Roi) -> np.ndarray:
        y, x = np.mgrid[roi.y : roi.y + roi.height, roi.x : roi.x + roi.width]
        return ((x * 37 + y * 101) % 4096).astype(np.uint16)

    def __call__(self, roi: Roi, exposure_ms: float, gain_db: float) -> np.ndarray:
        self.calls.append((roi, exposure_ms, gain_db))
        return self.pattern(roi)




def attach(serial: str = SERIAL, clock=None, **kw) -> PatternRenderer:
    renderer = PatternRenderer()
    spin.attach_camera(serial, renderer, clock=clock, **kw)
    return renderer


def assert_sdk_clean() -> None:
    """No camera initialised and the System can be released (nothing leaked)."""
    assert spin.system_reference_count() == 0
    assert spin.initialised_serials() == []  # the SDK would accept an initialised camera at release: check here
    system = spin.System.GetInstance()
    system.ReleaseInstance()  # raises -1004 if any camera/image reference survived
    assert spin.system_reference_count() == 0


# ----------------------------------------------------------------------------- happy path
