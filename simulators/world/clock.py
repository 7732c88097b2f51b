"""Virtual time for the simulated rig, and noise that is a pure function of virtual time.

:class:`VirtualClock` implements :class:`operascope.devices.base.Clock`: virtual seconds advance at
``speed`` times the wall clock, so a one-hour charge can be simulated in a minute at speed 60.
Changing ``speed`` re-bases the clock, so virtual time never jumps.

:class:`TimeSeriesNoise` gives a smooth, seeded random signal ``value(t_s)``. Its value at a
given virtual time depends only on (seed, stream, t), never on how often or in which order it
is queried, so the same seed gives the same drift and jitter in every run.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np

#: Values per cached block of :class:`TimeSeriesNoise`.
_BLOCK_SIZE = 1024
#: Blocks kept per noise stream (older ones are regenerated on demand).
_MAX_CACHED_BLOCKS = 8


class VirtualClock:
    """A monotonic clock running ``speed`` virtual seconds per wall second, starting at 0 s.

    ``now_s()`` = virtual seconds since construction; ``sleep_s(d)`` sleeps ``d / speed`` wall
    seconds. Thread-safe.
    """

    def __init__(self, speed: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._speed = self._checked_speed(speed)
        self._wall_origin_s = time.monotonic()
        self._virtual_origin_s = 0.0

    @staticmethod
    def _checked_speed(speed: float) -> float:
        value = float(speed)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"clock speed must be a finite number > 0 (virtual s per wall s), got {speed!r}")
        return value

    def now_s(self) -> float:
        """Virtual seconds since the clock was created."""
        with self._lock:
            return self._virtual_origin_s + self._speed * (time.monotonic() - self._wall_origin_s)

    def sleep_s(self, duration_s: float) -> None:
        """Sleep ``duration_s`` virtual seconds (``duration_s / speed`` wall seconds)."""
        if duration_s > 0:
            time.sleep(duration_s / self._speed)

    def sleep_until_s(self, virtual_time_s: float) -> None:
        """Sleep until the clock reads at least ``virtual_time_s`` (tolerates speed changes)."""
        while True:
            remaining = virtual_time_s - self.now_s()
            if remaining <= 0:
                return
            time.sleep(remaining / self._speed)

    @property
    def speed(self) -> float:
        """Virtual seconds per wall second."""
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        new_speed = self._checked_speed(value)
        with self._lock:
            wall_now = time.monotonic()
            self._virtual_origin_s += self._speed * (wall_now - self._wall_origin_s)
            self._wall_origin_s = wall_now
            self._speed = new_speed


class TimeSeriesNoise:
    """Seeded Gaussian noise of standard deviation ``sigma``, sampled every ``step_s`` virtual
    seconds and linearly interpolated in between (so it is continuous in time).

    ``value(t_s)`` is a pure function of (seed, stream, t_s). Not thread-safe on its own
    (the World calls it under its lock).
    """

    def __init__(self, seed: int, stream: int, sigma: float, step_s: float) -> None:
        if step_s <= 0:
            raise ValueError(f"noise step_s must be > 0 s, got {step_s!r}")
        if int(seed) < 0:
            raise ValueError(f"noise seed must be >= 0, got {seed!r}")
        self._seed = int(seed)
        self._stream = int(stream)
        self._sigma = float(sigma)
        self._step_s = float(step_s)
        self._blocks: dict[int, np.ndarray] = {}

    def _sample(self, index: int) -> float:
        block, offset = divmod(index, _BLOCK_SIZE)
        values = self._blocks.get(block)
        if values is None:
            if len(self._blocks) >= _MAX_CACHED_BLOCKS:
                self._blocks.pop(next(iter(self._blocks)))
            rng = np.random.default_rng([self._seed, self._stream, block, 0x51])
            values = rng.standard_normal(_BLOCK_SIZE)
            self._blocks[block] = values
        return float(values[offset])

    def value(self, t_s: float) -> float:
        """Noise at virtual time ``t_s`` (same units as ``sigma``)."""
        if self._sigma == 0.0:
            return 0.0
        position = max(t_s, 0.0) / self._step_s
        index = int(position)
        frac = position - index
        a = self._sample(index)
        b = self._sample(index + 1)
        return self._sigma * (a + (b - a) * frac)


def event_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """A generator for one discrete event (a frame, a profile), a pure function of its inputs."""
    return np.random.default_rng([int(seed), int(stream), int(index)])
