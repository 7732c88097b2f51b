"""Thread-safe electrochemistry history with capacity integration and mid-time look-up."""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

from devices.base import EchemPoint


@dataclass(frozen=True)
class EchemSample:
    """One potentiostat point plus the integrated capacity (mAh per g active material)."""

    time_s: float
    voltage_v: float
    current_a: float
    capacity_mAh_g: float
    step: int
    cycle: int


class EchemHistory:
    """Appends points, integrates charge (positive current adds capacity) and interpolates.

    Capacity (mAh/g) = integral of I dt / (3.6 x mass_g), trapezoidal between consecutive points.
    """

    def __init__(self, active_mass_mg: float) -> None:
        if not active_mass_mg > 0:
            raise ValueError(f"active mass must be > 0 mg, got {active_mass_mg}")
        self._mass_g = active_mass_mg * 1e-3
        self._lock = threading.Lock()
        self._times: list[float] = []
        self._samples: list[EchemSample] = []

    def add(self, point: EchemPoint) -> EchemSample:
        """Append one point (must not go back in time) and return it with its capacity."""
        with self._lock:
            if self._samples:
                last = self._samples[-1]
                dt = max(0.0, point.time_s - last.time_s)
                capacity = last.capacity_mAh_g + 0.5 * (last.current_a + point.current_a) * dt / (3.6 * self._mass_g)
            else:
                capacity = 0.0
            sample = EchemSample(point.time_s, point.voltage_v, point.current_a, capacity, point.step, point.cycle)
            self._times.append(point.time_s)
            self._samples.append(sample)
            return sample

    def __len__(self) -> int:
        with self._lock:
            return len(self._samples)

    def latest(self) -> EchemSample | None:
        with self._lock:
            return self._samples[-1] if self._samples else None

    def samples(self) -> list[EchemSample]:
        with self._lock:
            return list(self._samples)

    def at(self, time_s: float) -> tuple[float, float, float]:
        """(voltage V, current A, capacity mAh/g) at ``time_s``: linear between points, the
        nearest end point outside them, NaN when there is no point at all."""
        with self._lock:
            if not self._samples:
                nan = float("nan")
                return nan, nan, nan
            k = bisect.bisect_left(self._times, time_s)
            if k <= 0:
                s = self._samples[0]
                return s.voltage_v, s.current_a, s.capacity_mAh_g
            if k >= len(self._samples):
                s = self._samples[-1]
                return s.voltage_v, s.current_a, s.capacity_mAh_g
            a, b = self._samples[k - 1], self._samples[k]
            span = b.time_s - a.time_s
            w = 0.0 if span <= 0 else (time_s - a.time_s) / span
            # The current is piecewise constant per step: take the later point's current inside a step.
            current = b.current_a if a.step == b.step else (a.current_a if w < 0.5 else b.current_a)
            return (a.voltage_v + w * (b.voltage_v - a.voltage_v), current,
                    a.capacity_mAh_g + w * (b.capacity_mAh_g - a.capacity_mAh_g))
