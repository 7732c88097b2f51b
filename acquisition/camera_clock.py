"""Camera time stamps on the rig clock: exposure mid-times from the camera's tick counter.

A camera stamps each frame with its own counter (``camera_time_ns``: FLIR's chunk ``Timestamp``, the
simulated camera's exposure start). The host only knows when it *read* the frame (``host_time_s`` on
the rig clock): the exposure start plus the exposure, the read-out and transfer, plus a scheduling delay
that is never negative and can reach seconds when the host is busy. So the host time of a frame lies
on or above the line ``rig = offset + rate * camera`` shifted by the exposure and the minimum latency.

:class:`CameraClock` estimates that line from (camera time, host time) pairs by the lower envelope
(the linear-programming clock estimate of Moon, Skelly & Towsley, IEEE INFOCOM 1999): the line below
every pair that minimises the summed delay. It is the edge of the pairs' lower convex hull that spans
their mean camera time. Late reads (host jitter) lie above the envelope and do not move it; one
pair read with the minimum latency is enough to pin it. The estimate is kept incrementally
(camera times increase), in O(hull) memory. :class:`ExposureStamper` turns it into exposure mid-times.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass

from operascope.devices.base import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClockFit:
    """rig_s = host_at_zero_s + rate * (camera_ns - camera_zero_ns) * 1e-9 (the lower envelope)."""

    camera_zero_ns: int
    host_at_zero_s: float
    rate: float
    pairs: int


class CameraClock:
    """Lower-envelope map of camera tick times (ns) to the rig clock (s), robust to late host reads.

    Pairs must come in increasing camera time; a camera time that goes backwards (camera reset or
    power cycle) starts a new estimate, logged. ``max_rate_error`` bounds the rate (a camera
    counter is a crystal oscillator: parts per million); a hull edge outside it (only possible with
    few pairs spread over a short time) falls back to the nominal rate through the lowest pair.
    """

    def __init__(self, max_rate_error: float = 1e-3) -> None:
        self.max_rate_error = float(max_rate_error)
        self.resets = 0
        self._zero_ns: int | None = None
        self._reset()

    def _reset(self) -> None:
        self._zero_ns = None
        self._last_ns: int | None = None
        self._hull_x: list[float] = []    # camera s since zero (increasing)
        self._hull_d: list[float] = []    # host s minus camera s since zero: the "delay"
        self._n = 0
        self._sum_x = 0.0

    @property
    def pairs(self) -> int:
        return self._n

    def add(self, camera_time_ns: int, host_time_s: float) -> None:
        """One (camera time, host read time) pair."""
        camera_time_ns = int(camera_time_ns)
        if self._last_ns is not None and camera_time_ns < self._last_ns:
            log.warning("camera time went back from %d to %d ns (camera reset?): new clock estimate",
                        self._last_ns, camera_time_ns)
            self.resets += 1
            self._reset()
        if self._zero_ns is None:
            self._zero_ns = camera_time_ns
        self._last_ns = camera_time_ns
        x = (camera_time_ns - self._zero_ns) * 1e-9
        d = float(host_time_s) - x
        self._n += 1
        self._sum_x += x
        hx, hd = self._hull_x, self._hull_d
        if hx and x == hx[-1]:            # same camera time: keep the earlier read
            if d >= hd[-1]:
                return
            hx.pop()
            hd.pop()
        while len(hx) >= 2 and _cross(hx[-2], hd[-2], hx[-1], hd[-1], x, d) <= 0.0:
            hx.pop()
            hd.pop()
        hx.append(x)
        hd.append(d)

    def fit(self) -> ClockFit:
        """The current envelope; raises RuntimeError before the first pair."""
        if self._zero_ns is None or not self._hull_x:
            raise RuntimeError("no (camera time, host time) pair yet")
        hx, hd = self._hull_x, self._hull_d
        if len(hx) == 1:
            return ClockFit(self._zero_ns, hd[0], 1.0, self._n)
        mean_x = self._sum_x / self._n
        i = min(max(bisect.bisect_right(hx, mean_x) - 1, 0), len(hx) - 2)
        slope = (hd[i + 1] - hd[i]) / (hx[i + 1] - hx[i])
        if abs(slope) > self.max_rate_error:
            return ClockFit(self._zero_ns, min(hd), 1.0, self._n)
        return ClockFit(self._zero_ns, hd[i] - slope * hx[i], 1.0 + slope, self._n)

    def to_rig_s(self, camera_time_ns: int) -> float:
        """Rig time (s) of the earliest possible host read of an event stamped ``camera_time_ns``."""
        f = self.fit()
        return f.host_at_zero_s + f.rate * (int(camera_time_ns) - f.camera_zero_ns) * 1e-9


def _cross(x0: float, y0: float, x1: float, y1: float, x2: float, y2: float) -> float:
    """z of (p1 - p0) x (p2 - p0): > 0 for a left (counter-clockwise) turn."""
    return (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)


class ExposureStamper:
    """Exposure mid-times (rig clock, s) of frames whose camera stamp marks the exposure start.

    The earliest read of a frame comes ``exposure_ms`` plus ``min_latency_s`` (read-out and transfer;
    0 in the simulator, whose read returns when the exposure ends) after its exposure start, so
    mid = envelope(camera time) - exposure / 2 - min_latency. Call :meth:`observe` for every frame, in
    order; :meth:`mid_time_s` maps with the estimate as it is now (later calls use more pairs). A camera
    whose stamp does not run (the same value twice) falls back to host read times, with one warning.
    """

    def __init__(self, exposure_ms: float, min_latency_s: float = 0.0, clock: CameraClock | None = None) -> None:
        if not exposure_ms > 0:
            raise ValueError(f"exposure must be > 0 ms, got {exposure_ms!r}")
        if not min_latency_s >= 0:
            raise ValueError(f"minimum read latency must be >= 0 s, got {min_latency_s!r}")
        self.exposure_s = float(exposure_ms) / 1000.0
        self.min_latency_s = float(min_latency_s)
        self.clock = clock or CameraClock()
        self.unstamped = False            # the camera repeats its stamp (no time stamps): host times
        self._last_ns: int | None = None

    def observe(self, frame: Frame) -> None:
        if self._last_ns is not None and frame.camera_time_ns == self._last_ns:
            if not self.unstamped:
                log.warning("camera gives no running time stamps (%d twice): bin times are host read times",
                            frame.camera_time_ns)
            self.unstamped = True
        self._last_ns = frame.camera_time_ns
        self.clock.add(frame.camera_time_ns, frame.host_time_s)

    def mid_time_s(self, camera_time_ns: int) -> float:
        return self.clock.to_rig_s(camera_time_ns) - 0.5 * self.exposure_s - self.min_latency_s

    def mid_times_s(self, camera_times_ns: tuple[int, ...], host_times_s: tuple[float, ...]) -> tuple[float, ...]:
        """Exposure mid-times of a bin's frames; their host read times if the camera stamps do not run."""
        if self.unstamped or self.clock.pairs == 0:
            return tuple(host_times_s)
        return tuple(self.mid_time_s(t) for t in camera_times_ns)

    def final_mid_time_s(self, mean_camera_time_ns: float) -> float:
        """Mid-time of a bin from its frames' mean camera time, with the estimate as it is now (the map is
        linear, so this is the mean of its frames' mid-times); NaN when the camera gives no stamps."""
        if self.unstamped or self.clock.pairs == 0 or self.clock.resets:   # a reset: earlier stamps unmappable
            return float("nan")
        f = self.clock.fit()
        envelope = f.host_at_zero_s + f.rate * (mean_camera_time_ns - f.camera_zero_ns) * 1e-9
        return envelope - 0.5 * self.exposure_s - self.min_latency_s
