"""Active focus stabilisation: the 980 nm line-reflection focus lock (Qt-free).

The lock watches where the reflected 980 nm line falls on the focus sensor and moves the Z
nano-positioner to keep it at a target pixel. One loop update (period T = 1/rate_hz on the rig
clock) does:

    x̂   = line position (px) from the profile (operascope.analysis.focus_signal)
    e    = (x̂ − x_target) / b                 focus error in nm of stage z (b = slope px/nm)
    z_cmd ← clamp(z_cmd − g·e)                  integral control on ABSOLUTE z

``z_cmd`` is held in software and sent as an absolute target (``move_to``). It is never
recomputed from the read-back position, and increments are never added to an accumulated
output (the ImSwitch double-integration bug). A deadband skips moves below ``deadband_nm``; a
per-update clamp limits |Δz| to ``max_step_nm``; the target never leaves the travel window
(lock origin ± ``window_nm``) nor the stage soft limits (minus a margin) — reaching that edge is a
fault: the loop stops and says so.

Closed-loop dynamics. With α = true slope / calibrated slope, n_k the sensor noise (σ_n per
update) and w_k the drift increment, the error obeys e_{k+1} = (1 − αg)·e_k − αg·n_k + w_k:

* **stable iff 0 < αg < 2** (a slope sign error, α < 0, runs away; αg ≥ 2 oscillates and grows);
* jitter σ_z = σ_n·sqrt(αg / (2 − αg)) (0.577·σ_n at αg = 0.5);
* time constant ≈ −T / ln(1 − αg); a constant drift v lags by v·T / (αg).

So a calibration off by a factor 0.5–1.5 only changes the effective gain (αg = 0.25–0.75 at
g = 0.5) and the lock still converges.

States (:class:`FocusState`; the run file stores their values): ``off`` → ``calibrating`` → ``locking`` →
``locked`` (``locked_samples`` consecutive good samples with |e| < tolerance) → ``lost`` (the
gate failed for ``lost_after_bad`` of the last ``bad_history`` samples: z is held, never
chased) → ``reacquiring`` (``reacquire_after_good`` good samples in a row: control resumes) →
``locked``; ``fault`` when the travel window / soft limits would be exceeded or the stage
fails (the loop stops). Every change is reported through ``on_event(level, message)``; every
update through ``on_sample(FocusSample)``.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from operascope.acquisition.worker import Worker
from operascope.analysis.focus_signal import (
    CalibrationCriteria,
    CalibrationRefused,
    FocusCalibration,
    ProfileMeasurement,
    QualityGate,
    fit_calibration,
    measure_profile,
)
from operascope.config.schema import FocusLockConfig

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
from operascope.devices.base import Clock, DeviceError, DeviceLost, FocusSensor, Positioner

__all__ = [
    "CalibrationRefused",
    "ControlStep",
    "FocusCalibration",
    "FocusLock",
    "FocusLockError",
    "FocusSample",
    "LockStateMachine",
    "control_step",
    "travel_limits",
]

EventCallback = Callable[[str, str], None]


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


def _bad_measurement(reason: str) -> ProfileMeasurement:
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


# --------------------------------------------------------------------------- the lock


class FocusLock:
    """Closed-loop focus lock on a :class:`FocusSensor` and the Z :class:`Positioner`.

    ``lock()`` starts a fixed-rate loop thread (calibrating first if needed); ``unlock()``
    stops it and leaves z where it is. Thread-safe for the public methods.
    """

    def __init__(
        self,
        sensor: FocusSensor,
        z_axis: Positioner,
        clock: Clock,
        config: FocusLockConfig,
        on_sample: Callable[[FocusSample], None] | None = None,
        on_event: EventCallback | None = None,
    ) -> None:
        self._sensor = sensor
        self._axis = z_axis
        self._clock = clock
        self._config = config
        self._on_sample = on_sample
        self._on_event = on_event
        self._mutex = threading.RLock()
        self._stop = threading.Event()
        self._thread: Worker | None = None
        self._state = FocusState.OFF
        self.calibration: FocusCalibration | None = None
        self.dark_profile: np.ndarray | None = None
        self._offset_nm = 0.0
        self._base_target_px = float("nan")
        self._target_px = float("nan")
        self._z_command_nm = float("nan")
        self._origin_nm = float("nan")
        self._limits_nm = (float("-inf"), float("inf"))
        self._machine = self._new_machine()
        self._iterations = 0
        self._overruns = 0
        self._loop_started_s = float("nan")
        self._callback_failed = False
        self._last_reconnect_s = float("-inf")
        if config.calibration_file and Path(config.calibration_file).is_file():
            self.load_calibration(config.calibration_file)

    # ----------------------------------------------------------------- properties

    @property
    def state(self) -> str:
        """The current :class:`FocusState` (a str)."""
        return self._state

    @property
    def offset_nm(self) -> float:
        """Focus offset (nm of z) added to the lock point."""
        return self._offset_nm

    @property
    def z_command_nm(self) -> float:
        """The software-held absolute z target (nm); NaN before lock()."""
        return self._z_command_nm

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def loop_stats(self) -> dict[str, float]:
        """Iterations, overruns and the achieved loop rate (Hz of the rig clock)."""
        elapsed = self._clock.now_s() - self._loop_started_s if math.isfinite(self._loop_started_s) else 0.0
        rate = self._iterations / elapsed if elapsed > 0 else 0.0
        return {"iterations": self._iterations, "overruns": self._overruns, "rate_hz": rate}

    # ----------------------------------------------------------------- events

    def _emit(self, level: str, message: str) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(level, f"focus lock: {message}")
        except Exception:  # noqa: BLE001 - a broken listener must not stop the lock; logged, not raised
            log.exception("focus lock: event listener failed on %r", message)

    def _set_state(self, state: str, why: str = "") -> None:
        if state not in FOCUS_STATES:
            raise ValueError(f"focus state {state!r} is not one of {FOCUS_STATES}")
        state = FocusState(state)
        if state == self._state:
            return
        previous, self._state = self._state, state
        level = {FocusState.FAULT: "error", FocusState.LOST: "warning"}.get(state, "info")
        self._emit(level, f"{previous} -> {state}" + (f" ({why})" if why else ""))

    # ----------------------------------------------------------------- measurement

    def _gate(self) -> QualityGate:
        cfg = self._config
        gate = QualityGate(
            min_snr=cfg.min_snr,
            min_intensity_fraction=cfg.min_intensity_fraction,
            width_tolerance=cfg.width_tolerance,
            saturation_counts=cfg.saturation_counts,
        )
        if self.calibration is not None:
            gate = gate.with_reference(self.calibration.reference_intensity, self.calibration.reference_width_px)
        return gate

    def _read_one(self, gate: QualityGate) -> ProfileMeasurement:
        try:
            profile = self._sensor.read_profile(self._config.sensor_timeout_s)
        except DeviceError as exc:
            if isinstance(exc, DeviceLost):
                self._try_reconnect_sensor()
            return _bad_measurement(str(exc))
        values = np.asarray(profile.values)
        expected = int(self._sensor.n_pixels)
        if values.ndim != 1 or values.size != expected:
            shown = f"{values.size} pixels" if values.ndim == 1 else f"shape {values.shape}"
            return _bad_measurement(f"profile has {shown}, the sensor has {expected} pixels; ignored")
        dark = self.dark_profile if self.dark_profile is not None and self.dark_profile.size == values.size else None
        try:
            return measure_profile(values, gate, self._config.estimator, dark)
        except (ValueError, TypeError, FloatingPointError) as exc:  # garbage the analysis refuses: a bad sample
            return _bad_measurement(f"unusable profile: {exc}")

    def _try_reconnect_sensor(self, every_s: float = 1.0) -> None:
        """After DeviceLost, try the sensor's ``reconnect()`` (if it has one) at most once per ``every_s``."""
        reconnect = getattr(self._sensor, "reconnect", None)
        now_s = self._clock.now_s()
        if reconnect is None or now_s - self._last_reconnect_s < every_s:
            return
        self._last_reconnect_s = now_s
        try:
            reconnect()
        except DeviceError:
            return
        self._emit("info", "focus sensor reconnected")

    def _read_measurement(self, gate: QualityGate, n_profiles: int) -> ProfileMeasurement:
        """Mean of the good ones among ``n_profiles`` reads; bad unless at least half pass."""
        reads = [self._read_one(gate) for _ in range(n_profiles)]
        good = [m for m in reads if m.ok]
        if len(good) * 2 < n_profiles or not good:
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

    # ----------------------------------------------------------------- calibration

    def calibrate(self) -> FocusCalibration:
        """Scan z ± calibration_range_nm around the current target, fit line position vs z.

        Returns to the start position afterwards. Raises :class:`CalibrationRefused` (with the
        reason) when the fit is poor, FocusLockError while the loop runs.
        """
        with self._mutex:
            if self.is_running:
                raise FocusLockError("cannot calibrate while locked; call unlock() first")
            cfg = self._config
            z_start = float(self._axis.target_nm())
            offsets = np.arange(-cfg.calibration_range_nm, cfg.calibration_range_nm + 0.5 * cfg.calibration_step_nm,
                                cfg.calibration_step_nm)
            scan_z = z_start + offsets
            low, high = self._axis.limits_nm
            if scan_z[0] < low or scan_z[-1] > high:
                raise CalibrationRefused(
                    f"the scan [{scan_z[0]:.0f}, {scan_z[-1]:.0f}] nm would leave the z soft limits "
                    f"[{low:.0f}, {high:.0f}] nm; move z inwards or reduce calibration_range_nm"
                )
            self._set_state(FocusState.CALIBRATING, f"{len(scan_z)} steps of {cfg.calibration_step_nm:g} nm around {z_start:.0f} nm")
            try:
                result = self._scan_and_fit(scan_z, z_start)
            except CalibrationRefused as exc:
                self._set_state(FocusState.OFF)
                self._emit("error", f"calibration refused: {exc}")
                raise
            except DeviceError as exc:
                self._set_state(FocusState.OFF)
                self._emit("error", f"calibration failed: {exc}")
                raise
            self.calibration = result
            self._set_state(FocusState.OFF)
            self._emit(
                "info",
                f"calibrated: slope {result.slope_px_per_nm:.5f} px/nm, residual {result.residual_nm:.1f} nm RMS, "
                f"R² {result.r2:.4f}, capture range ±{result.capture_range_nm:.0f} nm",
            )
            return result

    def _scan_and_fit(self, scan_z: np.ndarray, z_start: float) -> FocusCalibration:
        cfg = self._config
        gate = QualityGate(min_snr=cfg.min_snr, saturation_counts=cfg.saturation_counts)  # no reference yet
        positions, valid, intensities, widths = [], [], [], []
        try:
            for z in scan_z:
                self._axis.move_to(float(z))
                self._axis.wait_settled(timeout_s=10.0, clock=self._clock)
                self._clock.sleep_s(cfg.calibration_settle_s)
                reads = [self._read_one(gate) for _ in range(cfg.calibration_reads)]
                good = [m for m in reads if m.ok]
                enough = len(good) * 2 >= len(reads) and len(good) > 0
                valid.append(enough)
                positions.append(float(np.median([m.position_px for m in good])) if enough else float("nan"))
                intensities.append(float(np.median([m.intensity for m in good])) if enough else float("nan"))
                widths.append(float(np.median([m.width_px for m in good])) if enough else float("nan"))
        finally:
            self._axis.move_to(z_start)
            self._axis.wait_settled(timeout_s=10.0, clock=self._clock)
        ok = np.asarray(valid)
        if not ok.any():
            raise CalibrationRefused(
                "no scan step had a usable line; check that the focus laser is on and the sensor sees the reflection"
            )
        criteria = CalibrationCriteria(
            min_r2=cfg.calibration_min_r2, max_residual_fraction_of_step=cfg.calibration_max_residual_fraction
        )
        return fit_calibration(
            scan_z,
            positions,
            valid,
            z_center_nm=z_start,
            reference_intensity=float(np.nanmedian(intensities)),
            reference_width_px=float(np.nanmedian(widths)),
            criteria=criteria,
            estimator=cfg.estimator,
            n_pixels=int(self._sensor.n_pixels),
            created_time_s=self._clock.now_s(),
        )

    def save_calibration(self, path: str | Path) -> None:
        """Write the calibration as JSON to ``path``."""
        if self.calibration is None:
            raise FocusLockError("no calibration to save; run calibrate() or load_calibration() first")
        Path(path).write_text(json.dumps(self.calibration.to_dict(), indent=2), encoding="utf-8")

    def load_calibration(self, path: str | Path) -> FocusCalibration:
        """Read a calibration saved by :meth:`save_calibration`; ValueError names the file."""
        file = Path(path)
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            calibration = FocusCalibration.from_dict(data)
        except FileNotFoundError:
            raise FocusLockError(f"{file}: focus calibration file not found") from None
        except (ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"{file}: not a valid focus calibration: {exc}") from None
        if calibration.n_pixels and calibration.n_pixels != self._sensor.n_pixels:
            raise ValueError(
                f"{file}: calibration was made on a {calibration.n_pixels}-pixel sensor, this one has "
                f"{self._sensor.n_pixels}; calibrate again"
            )
        with self._mutex:
            self.calibration = calibration
        self._emit("info", f"calibration loaded from {file} (slope {calibration.slope_px_per_nm:.5f} px/nm)")
        return calibration

    # ----------------------------------------------------------------- lock / unlock

    def _new_machine(self) -> LockStateMachine:
        cfg = self._config
        return LockStateMachine(
            cfg.locked_tolerance_nm, cfg.locked_samples, cfg.lost_after_bad, cfg.bad_history, cfg.reacquire_after_good
        )

    def lock(self) -> None:
        """Hold the current focus: calibrate if needed, take the line position now as the
        target (plus the offset) and start the loop thread. No-op if already running."""
        with self._mutex:
            if self.is_running:
                return
            if self.calibration is None:
                self.calibrate()
            cfg = self._config
            gate = self._gate()
            reads = [self._read_measurement(gate, cfg.profiles_per_update) for _ in range(max(10, cfg.locked_samples))]
            good = [m.position_px for m in reads if m.ok]
            if len(good) < max(1, len(reads) // 2):
                reason = next((m.reason for m in reads if not m.ok), "")
                self._emit("error", f"cannot lock: no usable line ({reason})")
                raise FocusLockError(f"cannot lock: no usable focus-sensor line ({reason}); check the focus laser")
            self._base_target_px = float(np.median(good))
            self._target_px = self._base_target_px + self.calibration.slope_px_per_nm * self._offset_nm
            self._origin_nm = float(self._axis.target_nm())
            self._z_command_nm = self._origin_nm
            self._limits_nm = travel_limits(self._origin_nm, cfg.window_nm, self._axis.limits_nm, cfg.soft_limit_margin_nm)
            self._machine = self._new_machine()
            self._iterations = self._overruns = 0
            self._stop.clear()
            self._set_state(FocusState.LOCKING, f"target {self._target_px:.2f} px at z {self._origin_nm:.0f} nm")
            self._thread = Worker("focus-lock", lambda _stop: self._run(),
                                  lambda exc: self._emit("error", f"focus-lock loop failed: {exc}"))
            self._thread.start()

    def unlock(self) -> None:
        """Stop the loop (z stays where it is) and go to ``off``."""
        self._stop.set()
        thread = self._thread
        if thread is not None and not thread.is_current_thread():
            thread.join(5.0)
            if thread.is_alive():
                self._emit("error", "loop thread did not stop within 5 s")
        self._thread = None
        if self._state != FocusState.OFF:
            self._set_state(FocusState.OFF, "unlocked")

    def close(self) -> None:
        """Stop the loop. Idempotent; the devices stay open (they belong to the rig)."""
        self.unlock()

    def set_offset_nm(self, offset_nm: float) -> None:
        """Move the lock point by ``offset_nm`` of z (positive = larger z); allowed while locked."""
        value = float(offset_nm)
        if not math.isfinite(value) or abs(value) > self._config.window_nm:
            raise ValueError(
                f"focus offset {offset_nm!r} nm is outside the allowed range ±{self._config.window_nm:g} nm (window_nm)"
            )
        with self._mutex:
            self._offset_nm = value
            if self.calibration is not None and math.isfinite(self._base_target_px):
                self._target_px = self._base_target_px + self.calibration.slope_px_per_nm * value
                if self._machine.state in (FocusState.LOCKED, FocusState.LOCKING):
                    self._machine.restart(FocusState.LOCKING)
        self._emit("info", f"focus offset set to {value:+.1f} nm")

    # ----------------------------------------------------------------- loop

    def _run(self) -> None:
        period_s = 1.0 / self._config.rate_hz
        clock = self._clock
        self._loop_started_s = next_s = clock.now_s()
        try:
            while not self._stop.is_set():
                self._iterate()
                self._iterations += 1
                if self._state == FocusState.FAULT:
                    return
                # fixed grid: a late update runs at once; whole missed periods are skipped and counted
                next_s += period_s
                remaining = next_s - clock.now_s()
                if remaining > 0:
                    clock.sleep_s(remaining)
                elif remaining < -period_s:
                    missed = math.floor(-remaining / period_s)
                    self._overruns += missed
                    next_s += missed * period_s
        except Exception as exc:  # anything unexpected: stop safely and say so
            self._machine.fault()
            self._set_state(FocusState.FAULT, f"loop error: {type(exc).__name__}: {exc}")

    def _iterate(self) -> FocusSample:
        cfg = self._config
        calibration = self.calibration
        now_s = self._clock.now_s()
        measurement = self._read_measurement(self._gate(), cfg.profiles_per_update)
        good = measurement.ok
        reason = measurement.reason
        error = float("nan")
        if good:
            low_px, high_px = sorted(
                calibration.offset_px + calibration.slope_px_per_nm * (z - calibration.z_center_nm)
                for z in (calibration.capture_low_nm, calibration.capture_high_nm)
            )
            span = high_px - low_px
            if not (low_px - 0.05 * span <= measurement.position_px <= high_px + 0.05 * span):
                good = False
                reason = f"line at {measurement.position_px:.1f} px is outside the calibrated range"
            else:
                with self._mutex:
                    error = calibration.error_nm(measurement.position_px, self._target_px)
        with self._mutex:
            new_state = self._machine.update(good, error)
            if good and self._machine.controlling:
                self._apply_control(error)
            if self._machine.state != FocusState.FAULT:
                self._set_state(new_state, reason if new_state == FocusState.LOST else "")
        try:
            z_nm = float(self._axis.position_nm())
        except DeviceError:
            z_nm = float("nan")
        sample = FocusSample(
            now_s, error, z_nm, self._state, measurement.position_px, measurement.intensity, self._z_command_nm, reason
        )
        if self._on_sample is not None:
            try:
                self._on_sample(sample)
            except Exception as exc:  # a broken listener must not stop the lock; say so once
                if not self._callback_failed:
                    self._callback_failed = True
                    self._emit("warning", f"on_sample listener raised {type(exc).__name__}: {exc}; samples continue")
        return sample

    def _apply_control(self, error_nm: float) -> None:
        cfg = self._config
        step = control_step(
            self._z_command_nm, error_nm, cfg.gain, cfg.deadband_nm, cfg.max_step_nm, *self._limits_nm
        )
        if step.delta_nm != 0.0:
            try:
                self._axis.move_to(step.z_command_nm)
            except DeviceError as exc:
                self._machine.fault()
                self._set_state(FocusState.FAULT, f"z move to {step.z_command_nm:.0f} nm failed: {exc}")
                return
            self._z_command_nm = step.z_command_nm
        if step.limited:
            self._machine.fault()
            low, high = self._limits_nm
            self._set_state(
                FocusState.FAULT,
                f"correction needs z beyond the travel window [{low:.0f}, {high:.0f}] nm "
                f"(lock origin {self._origin_nm:.0f} nm ± {cfg.window_nm:.0f} nm); lock stopped at "
                f"{self._z_command_nm:.0f} nm — check the sample, then lock again",
            )
