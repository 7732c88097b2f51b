"""Focus-lock control without I/O: states, samples, the integral step, travel limits, the state machine.

Closed-loop dynamics. With α = true slope / calibrated slope, n_k the sensor noise (σ_n per
update) and w_k the drift increment, the error obeys e_{k+1} = (1 − αg)·e_k − αg·n_k + w_k:

* **stable iff 0 < αg < 2** (a slope sign error, α < 0, runs away; αg ≥ 2 oscillates and grows);
* jitter σ_z = σ_n·sqrt(αg / (2 − αg)) (0.577·σ_n at αg = 0.5);
* time constant ≈ −T / ln(1 − αg); a constant drift v lags by v·T / (αg).

So a calibration off by a factor 0.5–1.5 only changes the effective gain (αg = 0.25–0.75 at
g = 0.5) and the lock still converges.
"""

from __future__ import annotations

import enum
import logging
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from operascope.analysis.focus_signal import ProfileMeasurement
from operascope.devices.errors import DeviceTimeout

log = logging.getLogger(__name__)


class FocusState(str, enum.Enum):
    """States of the focus lock. The values are stored in run files: never change them."""

    OFF = "off"
    CALIBRATING = "calibrating"
    LOCKING = "locking"
    LOCKED = "locked"
    LOST = "lost"
    REACQUIRING = "reacquiring"
    FAULT = "fault"

    def __str__(self) -> str:
        return self.value


#: The state values in their stored order (index = the code in the run file's focus log).
FOCUS_STATES: tuple[str, ...] = tuple(state.value for state in FocusState)




class FocusLockError(RuntimeError):
    """The focus lock cannot do what was asked; the message says why."""


@dataclass(frozen=True)
class FocusSample:
    """One loop update: rig-clock time (s), error (nm; NaN when the signal is bad), measured z
    (nm), state, line position (px) and line intensity (counts), plus the commanded z (nm)."""

    time_s: float
    error_nm: float
    z_nm: float
    state: str
    position_px: float
    intensity: float
    z_command_nm: float = float("nan")
    reason: str = ""


def bad_measurement(reason: str) -> ProfileMeasurement:
    """A measurement that fails the gate for ``reason`` (no position, no intensity)."""
    return ProfileMeasurement(float("nan"), 0.0, 0.0, float("nan"), float("nan"), 0.0, False, False, reason)


# --------------------------------------------------------------------------- pure control


@dataclass(frozen=True)
class ControlStep:
    """Result of one control update: the new absolute target (nm), the change (nm) and
    whether the travel limits cut the move (→ fault)."""

    z_command_nm: float
    delta_nm: float
    limited: bool


def travel_limits(
    origin_nm: float, window_nm: float, soft_limits_nm: tuple[float, float], margin_nm: float = 0.0
) -> tuple[float, float]:
    """Allowed z targets (low, high) in nm: origin ± window, inside soft limits shrunk by margin."""
    low = max(origin_nm - window_nm, soft_limits_nm[0] + margin_nm)
    high = min(origin_nm + window_nm, soft_limits_nm[1] - margin_nm)
    if low > high:
        raise FocusLockError(
            f"no room to move: lock origin {origin_nm:.0f} nm ± {window_nm:.0f} nm does not overlap the "
            f"stage soft limits [{soft_limits_nm[0]:.0f}, {soft_limits_nm[1]:.0f}] nm minus {margin_nm:.0f} nm"
        )
    return low, high


def control_step(
    z_command_nm: float,
    error_nm: float,
    gain: float,
    deadband_nm: float,
    max_step_nm: float,
    low_nm: float,
    high_nm: float,
) -> ControlStep:
    """One integral update on absolute z: z ← clamp(z − clip(g·e, ±max_step), [low, high]).

    Errors within ±deadband (and non-finite errors) leave z unchanged. ``limited`` is True
    when the travel limits cut the move.
    """
    if not math.isfinite(error_nm) or abs(error_nm) <= deadband_nm:
        return ControlStep(z_command_nm, 0.0, False)
    delta = -gain * error_nm
    delta = min(max(delta, -max_step_nm), max_step_nm)
    wanted = z_command_nm + delta
    target = min(max(wanted, low_nm), high_nm)
    return ControlStep(target, target - z_command_nm, target != wanted)


class LockStateMachine:
    """The lock's state given a stream of (good, error_nm) samples (no I/O).

    Starts in ``locking``. ``fault`` is set from outside with :meth:`fault`.
    """

    def __init__(
        self,
        locked_tolerance_nm: float,
        locked_samples: int,
        lost_after_bad: int,
        bad_history: int,
        reacquire_after_good: int,
        unlock_after_out: int = 2,
    ) -> None:
        self.locked_tolerance_nm = locked_tolerance_nm
        self.locked_samples = locked_samples
        self.lost_after_bad = lost_after_bad
        self.reacquire_after_good = reacquire_after_good
        self.unlock_after_out = unlock_after_out
        self._history: deque[bool] = deque(maxlen=bad_history)
        self._in_tolerance = 0
        self._out_of_tolerance = 0
        self._good_run = 0
        self.state = FocusState.LOCKING

    @property
    def controlling(self) -> bool:
        """True in the states where good samples move z."""
        return self.state in (FocusState.LOCKING, FocusState.LOCKED, FocusState.REACQUIRING)

    def restart(self, state: str = FocusState.LOCKING) -> None:
        """Forget the history and continue in ``state`` (e.g. after an offset change)."""
        self._history.clear()
        self._in_tolerance = self._out_of_tolerance = self._good_run = 0
        self.state = state

    def fault(self) -> None:
        self.state = FocusState.FAULT

    def update(self, good: bool, error_nm: float) -> str:
        """Advance with one sample; return the new state."""
        if self.state == FocusState.FAULT:
            return self.state
        if self.state == FocusState.LOST:
            self._good_run = self._good_run + 1 if good else 0
            if self._good_run >= self.reacquire_after_good:
                self.restart(FocusState.REACQUIRING)
            return self.state
        self._history.append(not good)
        if sum(self._history) >= self.lost_after_bad:
            self.restart(FocusState.LOST)
            return self.state
        if not good:
            return self.state
        within = abs(error_nm) < self.locked_tolerance_nm
        self._in_tolerance = self._in_tolerance + 1 if within else 0
        self._out_of_tolerance = 0 if within else self._out_of_tolerance + 1
        if self.state != FocusState.LOCKED and self._in_tolerance >= self.locked_samples:
            self.state = FocusState.LOCKED
        elif self.state == FocusState.LOCKED and self._out_of_tolerance >= self.unlock_after_out:
            self.state = FocusState.LOCKING
        return self.state




def mean_of_good(reads: list[ProfileMeasurement]) -> ProfileMeasurement:
    """Mean of the good measurements; the first bad one unless at least half are good."""
    good = [m for m in reads if m.ok]
    if len(good) * 2 < len(reads) or not good:
        return next((m for m in reads if not m.ok), reads[0])
    if len(good) == 1:
        return good[0]
    return ProfileMeasurement(
        position_px=float(np.mean([m.position_px for m in good])),
        intensity=float(np.mean([m.intensity for m in good])),
        peak=float(np.mean([m.peak for m in good])),
        width_px=float(np.mean([m.width_px for m in good])),
        noise=float(np.mean([m.noise for m in good])),
        snr=float(np.mean([m.snr for m in good])),
        saturated=False,
        ok=True,
    )


#: consecutive z moves that may time out before the lock faults (a controller link that hiccups once in a
#: week-long run must not end the lock for the rest of it; the potentiostat's reads get 3 retries too)
MOVE_TIMEOUTS_BEFORE_FAULT = 3


class MoveTimeouts:
    """Counts consecutive z-move timeouts of the lock. :meth:`tolerate` says whether a failed move may be
    skipped (z held, corrected again at the next sample); any other device error, or the ``limit``-th
    timeout in a row, is a fault. :meth:`reset` after every move that went through."""

    def __init__(self, limit: int = MOVE_TIMEOUTS_BEFORE_FAULT) -> None:
        self.limit = int(limit)
        self.in_a_row = 0

    def tolerate(self, exc: Exception) -> bool:
        if not isinstance(exc, DeviceTimeout):
            return False
        self.in_a_row += 1
        return self.in_a_row < self.limit

    def reset(self) -> None:
        self.in_a_row = 0

    def held_message(self, target_nm: float, exc: Exception) -> str:
        """The warning of a tolerated timeout."""
        return (f"z move to {target_nm:.0f} nm timed out ({self.in_a_row} in a row, fault at {self.limit}): "
                f"z held, corrected at the next sample: {exc}")
