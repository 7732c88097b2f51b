"""Simulated Attocube-like XYZ stage: finite speed, settling, position jitter, soft limits.

:class:`AxisMotion` is the pure motion model the World holds as ground truth (a position as a
function of virtual time). :class:`SimulatedStage` / :class:`SimulatedAxis` are the devices.
Faults (role "stage"): ``timeout`` (calls raise DeviceTimeout), ``end_of_travel`` (move_to raises
EndOfTravel and the axis halts), ``link_loss``/``device_lost`` (DeviceLost until ``reconnect()``).
"""

from __future__ import annotations

import bisect
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from operascope.devices.base import (
    StageAxis,
    AXES,
    Clock,
    DeviceInfo,
    DeviceLost,
    DeviceTimeout,
    EndOfTravel,
    Positioner,
    Stage,
)
from operascope.simulators.world.clock import TimeSeriesNoise

if TYPE_CHECKING:
    from operascope.simulators.world.world import World

#: Virtual seconds of move history kept for positions asked at past times (late camera frames).
HISTORY_S = 60.0
#: Overshoot after a move, as a fraction of the move (capped below), decaying over the settle time.
OVERSHOOT_FRACTION = 0.05
OVERSHOOT_MAX_NM = 10.0


@dataclass(frozen=True)
class _Move:
    """One commanded move of an axis (from ``t0_s`` until the next move); times virtual s, lengths nm."""

    t0_s: float
    start_nm: float
    target_nm: float
    travel_s: float
    overshoot_nm: float
    error_from_nm: float = 0.0
    error_nm: float = 0.0


class AxisMotion:
    """Closed-loop axis motion: linear travel at ``speed_nm_s``, then a decaying overshoot for
    ``settle_s``, plus position jitter (``noise``, nm). Times are virtual seconds.

    The moves of the last :data:`HISTORY_S` virtual seconds are kept, so a position asked for a past
    time (a camera frame rendered late, when the stage has moved on) is where the axis was then.

    Return error: a closed-loop positioner comes back to the same *sensor* reading, not to the same
    place. With ``repeatability_nm`` > 0 every move ends ``N(0, repeatability_nm)`` away from where
    the sensor says it is (drawn from ``error_rng(move_number)``, so seeded): :meth:`position_nm`
    is what the controller reports, :meth:`sample_position_nm` where the axis (and the sample on
    it) really is. The error changes linearly over the travel and stays until the next move.
    """

    def __init__(self, position_nm: float, speed_nm_s: float, settle_s: float, noise: TimeSeriesNoise,
                 repeatability_nm: float = 0.0, error_rng: Callable[[int], np.random.Generator] | None = None) -> None:
        if repeatability_nm > 0 and error_rng is None:
            raise ValueError("AxisMotion: repeatability_nm > 0 needs error_rng (a seeded generator per move)")
        self._repeatability_nm = float(repeatability_nm)
        self._error_rng = error_rng
        self._n_moves = 0
        self._moves = [_Move(0.0, float(position_nm), float(position_nm), 0.0, 0.0)]
        self._starts_s = [0.0]
        self._settle_s = float(settle_s)
        self._speed_nm_s = float(speed_nm_s)
        self._noise = noise

    @property
    def target_nm(self) -> float:
        return self._moves[-1].target_nm

    def _move_at(self, t_s: float) -> _Move:
        """The move in force at ``t_s`` (the oldest kept one for earlier times)."""
        if t_s >= self._starts_s[-1]:
            return self._moves[-1]
        return self._moves[max(bisect.bisect_left(self._starts_s, t_s) - 1, 0)]

    def nominal_nm(self, t_s: float) -> float:
        """Position without jitter at ``t_s``."""
        m = self._move_at(t_s)
        elapsed = t_s - m.t0_s
        if elapsed <= 0:
            return m.start_nm
        if elapsed < m.travel_s:
            direction = 1.0 if m.target_nm >= m.start_nm else -1.0
            return m.start_nm + direction * self._speed_nm_s * elapsed
        after = elapsed - m.travel_s
        if self._settle_s > 0 and after < self._settle_s:
            return m.target_nm + m.overshoot_nm * math.exp(-5.0 * after / self._settle_s)
        return m.target_nm

    def position_nm(self, t_s: float) -> float:
        """Measured position at ``t_s`` (nominal + jitter)."""
        return self.nominal_nm(t_s) + self._noise.value(t_s)

    def return_error_nm(self, t_s: float) -> float:
        """True minus reported position (nm) at ``t_s``: the repeatability error of the move then."""
        m = self._move_at(t_s)
        elapsed = t_s - m.t0_s
        if m.travel_s > 0 and 0 < elapsed < m.travel_s:
            return m.error_from_nm + (m.error_nm - m.error_from_nm) * elapsed / m.travel_s
        return m.error_from_nm if elapsed <= 0 else m.error_nm

    def sample_position_nm(self, t_s: float) -> float:
        """Where the axis really is at ``t_s`` (reported position + return error)."""
        return self.position_nm(t_s) + self.return_error_nm(t_s)

    def is_moving(self, t_s: float) -> bool:
        m = self._moves[-1]
        return t_s < m.t0_s + m.travel_s + (self._settle_s if m.travel_s > 0 else 0.0)

    def _start(self, move: _Move) -> None:
        """Make ``move`` the current one (moves started after it are forgotten); prune old history."""
        cut = bisect.bisect_left(self._starts_s, move.t0_s)
        del self._moves[cut:], self._starts_s[cut:]
        self._moves.append(move)
        self._starts_s.append(move.t0_s)
        old = bisect.bisect_left(self._starts_s, move.t0_s - HISTORY_S) - 1
        if old > 256:
            del self._moves[:old], self._starts_s[:old]

    def move_to(self, t_s: float, target_nm: float) -> None:
        """Start a move from wherever the axis is at ``t_s``."""
        error_from = self.return_error_nm(t_s)
        error = self._moves[-1].error_nm
        if self._repeatability_nm > 0:
            self._n_moves += 1
            error = self._repeatability_nm * float(self._error_rng(self._n_moves).standard_normal())
        start = self.nominal_nm(t_s)
        distance = float(target_nm) - start
        overshoot = math.copysign(min(abs(distance) * OVERSHOOT_FRACTION, OVERSHOOT_MAX_NM), distance)
        self._start(_Move(t_s, start, float(target_nm), abs(distance) / self._speed_nm_s, overshoot, error_from, error))

    def halt(self, t_s: float) -> None:
        """Stop where the axis is now."""
        here = self.nominal_nm(t_s)
        error = self.return_error_nm(t_s)
        self._start(_Move(t_s, here, here, 0.0, 0.0, error, error))


class SimulatedAxis(StageAxis):
    """One axis of the simulated stage (opened and closed with the stage)."""

    def __init__(self, world: World, stage: SimulatedStage, axis: str) -> None:
        self._world = world
        self._stage = stage
        self.axis_name = axis
        self.name = f"stage.{axis}"

    @property
    def limits_nm(self) -> tuple[float, float]:
        return self._world.stage_limits_nm(self.axis_name)

    def _check(self) -> None:
        self._require_open()
        self._stage.check_link()

    def position_nm(self) -> float:
        self._check()
        return self._world.stage_position_nm(self.axis_name)

    def target_nm(self) -> float:
        self._check()
        return self._world.stage_target_nm(self.axis_name)

    def move_to(self, target_nm: float) -> None:
        self._check()
        self.check_target(target_nm)
        if self._world.consume_fault("stage", "end_of_travel"):
            self._world.stage_halt(self.axis_name)
            raise EndOfTravel(self.name, "end-of-travel switch reached; move the axis back inside its range")
        self._world.stage_move(self.axis_name, float(target_nm))

    def is_moving(self) -> bool:
        self._check()
        return self._world.stage_is_moving(self.axis_name)

    def halt(self) -> None:
        self._check()
        self._world.stage_halt(self.axis_name)

    def wait_settled(self, timeout_s: float = 10.0, clock: Clock | None = None, poll_s: float = 0.002) -> float:
        """As :meth:`Positioner.wait_settled`, on the world's virtual clock by default."""
        return super().wait_settled(timeout_s, clock or self._world.clock, poll_s)


class SimulatedStage(Stage):
    """Three simulated closed-loop axes x, y, z sharing one controller link."""

    def __init__(self, world: World) -> None:
        self._world = world
        self._open = False
        self._lock = threading.Lock()
        self._axes = {axis: SimulatedAxis(world, self, axis) for axis in AXES}

    def open(self) -> None:
        with self._lock:
            if self._world.is_lost("stage"):
                raise DeviceLost(self.name, "controller not reachable; check the network cable and power")
            self._open = True

    def close(self) -> None:
        with self._lock:
            self._open = False

    def info(self) -> DeviceInfo:
        return DeviceInfo(model="Simulated ECSx5050 XYZ (AMC100)", serial="SIM-STAGE-0", firmware="sim", driver="simulated")

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def axes(self) -> dict[str, Positioner]:
        return dict(self._axes)

    def check_link(self) -> None:
        """Raise DeviceLost/DeviceTimeout if a fault is in force."""
        if self._world.is_lost("stage"):
            raise DeviceLost(self.name, "link to the controller lost; call reconnect() when it is back")
        if self._world.consume_fault("stage", "timeout"):
            raise DeviceTimeout(self.name, "controller did not answer in time; check the link")

    def reconnect(self) -> None:
        """Re-establish the link after DeviceLost; raises DeviceLost while still unreachable."""
        if not self._world.try_reconnect("stage"):
            raise DeviceLost(self.name, "controller still not reachable")
        self._open = True
