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
(lock origin ± ``window_nm``, re-centred on slow drift within ``drift_budget_nm_s``:
:mod:`operascope.acquisition.focus_window`) nor the stage soft limits (minus a margin) — reaching
that edge is a fault: the loop stops and says so. With ``recover`` on, a lost lock searches z for
the line when the signal is back (:mod:`operascope.acquisition.focus_recover`).

The pure control law, its closed-loop dynamics and the state machine are in
:mod:`operascope.acquisition.focus_control` (re-exported here).

States (:class:`FocusState`; the run file stores their values): ``off`` → ``calibrating`` → ``locking`` →
``locked`` (``locked_samples`` consecutive good samples with |e| < tolerance) → ``lost`` (the
gate failed for ``lost_after_bad`` of the last ``bad_history`` samples: z is held, never
chased) → ``reacquiring`` (``reacquire_after_good`` good samples in a row: control resumes) →
``locked``; ``fault`` when the travel window / soft limits would be exceeded or the stage
fails (the loop stops). Every change is reported through ``on_event(level, message)``; every
update through ``on_sample(FocusSample)``.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from operascope.acquisition.focus_control import (  # noqa: F401 - re-exported: the lock's states and control law
    FOCUS_STATES, ControlStep, FocusLockError, FocusSample, FocusState, LockStateMachine, MoveTimeouts,
    bad_measurement, mean_of_good, control_step, travel_limits,
)
from operascope.acquisition.focus_calibration import load_calibration_file, save_calibration_file, scan_and_fit
from operascope.acquisition.focus_reading import SensorReading
from operascope.acquisition.focus_recover import recovery_from_config
from operascope.acquisition.focus_window import TravelWindow
from operascope.acquisition.worker import Worker
from operascope.analysis.focus_signal import (
    CalibrationRefused,
    FocusCalibration,
    ProfileMeasurement,
)
from operascope.config.schema import FocusLockConfig
from operascope.devices.base import Clock, DeviceError, FocusSensor, Positioner

log = logging.getLogger(__name__)

__all__ = [
    "CalibrationRefused",
    "ControlStep",
    "FOCUS_STATES",
    "FocusCalibration",
    "FocusLock",
    "FocusLockError",
    "FocusSample",
    "FocusState",
    "LockStateMachine",
    "control_step",
    "travel_limits",
]

EventCallback = Callable[[str, str], None]


# --------------------------------------------------------------------------- the lock


class FocusLock(SensorReading):
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
        signal_expected: Callable[[], bool] | None = None,
    ) -> None:
        """``signal_expected()`` (e.g. "the focus laser is on") gates the ``recover`` z search."""
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
        self._window: TravelWindow | None = None
        self._recovery = recovery_from_config(config, signal_expected)
        self._machine = self._new_machine()
        self._move_timeouts = MoveTimeouts()
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
        previous = self._state
        level = {FocusState.FAULT: "error", FocusState.LOST: "warning"}.get(state, "info")
        self._emit(level, f"{previous} -> {state}" + (f" ({why})" if why else ""))
        self._state = state   # after the event: whoever sees the new state has been told why

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
        return scan_and_fit(self._axis, self._clock, self._config, self._read_one, int(self._sensor.n_pixels),
                            scan_z, z_start)

    def save_calibration(self, path: str | Path) -> None:
        """Write the calibration as JSON to ``path``."""
        if self.calibration is None:
            raise FocusLockError("no calibration to save; run calibrate() or load_calibration() first")
        save_calibration_file(self.calibration, path)

    def load_calibration(self, path: str | Path) -> FocusCalibration:
        """Read a calibration saved by :meth:`save_calibration`; ValueError names the file."""
        calibration = load_calibration_file(path, int(self._sensor.n_pixels))
        with self._mutex:
            self.calibration = calibration
        self._emit("info", f"calibration loaded from {path} (slope {calibration.slope_px_per_nm:.5f} px/nm)")
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
            self._window = TravelWindow(self._origin_nm, self._clock.now_s(), cfg.window_nm, cfg.drift_budget_nm_s,
                                        tuple(self._axis.limits_nm), cfg.soft_limit_margin_nm)
            self._limits_nm = self._window.limits_nm()
            if self._recovery is not None:
                self._recovery.reset()
            self._machine = self._new_machine()
            self._iterations = self._overruns = 0
            self._stop.clear()
            self._set_state(FocusState.LOCKING, f"target {self._target_px:.2f} px at z {self._origin_nm:.0f} nm")
            self._emit("info", self._window.describe())
            warning = self._window.week_warning()
            if warning:
                self._emit("warning", warning)
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
            if not self._in_calibrated_range(measurement):
                good = False
                reason = f"line at {measurement.position_px:.1f} px is outside the calibrated range"
            else:
                with self._mutex:
                    error = calibration.error_nm(measurement.position_px, self._target_px)
        with self._mutex:
            new_state = self._machine.update(good, error)
            if good and self._machine.controlling:
                self._apply_control(error, now_s)
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
        if self._recovery is not None and self._state == FocusState.LOST and self._recovery.due(now_s):
            self._recover()
        return sample

    def _in_calibrated_range(self, measurement: ProfileMeasurement) -> bool:
        """A good line inside the calibrated capture range (± 5 % of it)."""
        calibration = self.calibration
        if not measurement.ok or calibration is None:
            return False
        low_px, high_px = sorted(
            calibration.offset_px + calibration.slope_px_per_nm * (z - calibration.z_center_nm)
            for z in (calibration.capture_low_nm, calibration.capture_high_nm)
        )
        span = high_px - low_px
        return low_px - 0.05 * span <= measurement.position_px <= high_px + 0.05 * span

    def _recover(self) -> None:
        """The bounded z search of ``recover = true`` (see focus_recover.py); on the loop thread."""
        cfg, calibration, hold_nm = self._config, self.calibration, self._z_command_nm
        step_nm = min(cfg.recover_step_nm, 0.9 * abs(calibration.capture_high_nm - calibration.capture_low_nm))
        self._emit("info", f"recover: signal lost at z {hold_nm:.0f} nm; searching ±{cfg.recover_range_nm:.0f} nm "
                           f"in {step_nm:.0f} nm steps")
        gate = self._gate()
        try:
            found_nm = self._recovery.search(self._axis, self._clock, hold_nm, self._limits_nm, step_nm,
                                             lambda: self._read_measurement(gate, max(3, cfg.profiles_per_update)),
                                             self._in_calibrated_range, self._stop)
        except DeviceError as exc:
            with self._mutex:
                self._machine.fault()
                self._set_state(FocusState.FAULT, f"z move during the recover search failed: {exc}")
            return
        if found_nm is None:
            self._emit("warning", f"recover: no line within ±{cfg.recover_range_nm:.0f} nm of {hold_nm:.0f} nm; "
                                  f"z back at {hold_nm:.0f} nm, next search in {cfg.recover_retry_s:g} s")
            return
        with self._mutex:
            self._z_command_nm = found_nm
            self._machine.restart(FocusState.REACQUIRING)
            self._set_state(FocusState.REACQUIRING, f"recovered: line found at z {found_nm:.0f} nm "
                                                    f"({found_nm - hold_nm:+.0f} nm from the held z)")

    def _apply_control(self, error_nm: float, now_s: float) -> None:
        cfg = self._config
        if self._window is not None and self._machine.state == FocusState.LOCKED:
            note = self._window.maybe_recentre(self._z_command_nm, now_s)
            if note:
                self._limits_nm = self._window.limits_nm()
                self._origin_nm = self._window.origin_nm
                self._emit("info", note)
        step = control_step(
            self._z_command_nm, error_nm, cfg.gain, cfg.deadband_nm, cfg.max_step_nm, *self._limits_nm
        )
        if step.delta_nm != 0.0:
            try:
                self._axis.move_to(step.z_command_nm)
            except DeviceError as exc:
                if self._move_timeouts.tolerate(exc):
                    self._emit("warning", self._move_timeouts.held_message(step.z_command_nm, exc))
                    return
                self._machine.fault()
                self._set_state(FocusState.FAULT, f"z move to {step.z_command_nm:.0f} nm failed: {exc}")
                return
            self._move_timeouts.reset()
            self._z_command_nm = step.z_command_nm
        if step.limited:
            self._machine.fault()
            low, high = self._limits_nm
            self._set_state(
                FocusState.FAULT,
                f"correction needs z beyond the travel window [{low:.0f}, {high:.0f}] nm "
                f"(lock origin {self._origin_nm:.0f} nm ± {cfg.window_nm:.0f} nm, drift budget "
                f"{cfg.drift_budget_nm_s:g} nm/s); lock stopped at "
                f"{self._z_command_nm:.0f} nm — check the sample, then lock again",
            )
