"""FocusLock on a small self-made fake rig, plus the pure control step and state machine.

The fake clock advances only when a thread sleeps on it (or a profile is exposed), so the
loop runs as fast as the CPU allows and the tests stay quick and deterministic in virtual time.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operascope.acquisition.focus_lock import (
    CalibrationRefused,
    FocusLock,
    FocusLockError,
    LockStateMachine,
    control_step,
    travel_limits,
)
from operascope.config.schema import FocusLockConfig
from tests.fakes.clocks import SteppingClock
from operascope.devices.base import DeviceInfo, FocusSensor, Positioner, Profile

N_PIXELS = 128


class FakeZ(Positioner):
    """A z axis that moves instantly; records every commanded target."""

    name = "z"

    def __init__(self, limits=(-50_000.0, 50_000.0)) -> None:
        self._target = 0.0
        self._limits = limits
        self.targets: list[float] = []

    def open(self): pass
    def close(self): pass
    def info(self): return DeviceInfo("fake", "0")
    @property
    def is_open(self): return True
    @property
    def limits_nm(self): return self._limits
    def position_nm(self): return self._target
    def target_nm(self): return self._target
    def is_moving(self): return False
    def halt(self): pass

    def move_to(self, target_nm: float) -> None:
        self.check_target(target_nm)
        self._target = float(target_nm)
        self.targets.append(self._target)


class FakeSensor(FocusSensor):
    """Gaussian line at centre + slope·(z − z_interface(t)) px; the interface drifts."""

    def __init__(self, clock, axis, slope_px_per_nm=0.02, drift_nm_s=5.0, noise=0.02, seed=0) -> None:
        self.clock, self.axis = clock, axis
        self.slope = slope_px_per_nm
        self.drift_nm_s = drift_nm_s
        self.noise = noise
        self.step_nm = 0.0
        self.laser_on = True
        self.rng = np.random.default_rng(seed)

    def interface_nm(self, t_s: float) -> float:
        return self.drift_nm_s * t_s + self.step_nm

    def defocus_nm(self) -> float:
        return self.axis.position_nm() - self.interface_nm(self.clock.now_s())

    def open(self): pass
    def close(self): pass
    def info(self): return DeviceInfo("fake", "0")
    @property
    def is_open(self): return True
    @property
    def n_pixels(self): return N_PIXELS

    def read_profile(self, timeout_s: float = 1.0) -> Profile:
        self.clock.sleep_s(0.002)  # exposure
        t = self.clock.now_s()
        centre = N_PIXELS / 2 + self.slope * (self.axis.position_nm() - self.interface_nm(t))
        x = np.arange(N_PIXELS, dtype=float)
        peak = 2000.0 if self.laser_on else 0.0
        values = 100.0 + peak * np.exp(-0.5 * ((x - centre) / 3.0) ** 2)
        values += self.noise * 2000.0 * self.rng.standard_normal(N_PIXELS)
        return Profile(values, t)


def make_rig(**config):
    clock = SteppingClock()
    axis = FakeZ()
    sensor = FakeSensor(clock, axis, **{k: config.pop(k) for k in list(config) if k in ("slope_px_per_nm", "drift_nm_s", "noise")})
    cfg = FocusLockConfig(**({"calibration_settle_s": 0.0, "calibration_reads": 3} | config))
    samples, events = [], []
    lock = FocusLock(sensor, axis, clock, cfg, on_sample=samples.append, on_event=lambda lvl, msg: events.append((lvl, msg)))
    return lock, sensor, axis, clock, samples, events


def run_until(clock, t_s: float, timeout_wall_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_wall_s
    while clock.now_s() < t_s:
        assert time.monotonic() < deadline, "the loop did not advance virtual time"
        time.sleep(0.002)


# --------------------------------------------------------------------------- calibration


def test_calibration_measures_the_true_slope_and_returns_to_start():
    lock, sensor, axis, clock, _, events = make_rig(drift_nm_s=0.0, slope_px_per_nm=-0.015)
    axis.move_to(1234.0)
    cal = lock.calibrate()
    assert cal.slope_px_per_nm == pytest.approx(-0.015, rel=0.02)
    assert cal.r2 > 0.99
    assert cal.residual_nm < 10.0
    assert cal.capture_span_nm >= 2500.0
    assert axis.position_nm() == 1234.0
    assert len(axis.targets) >= 61
    assert lock.state == "off"
    assert any("calibrated" in msg for _, msg in events)
    assert any("off -> calibrating" in msg for _, msg in events)


def test_calibration_refused_when_laser_is_off(tmp_path):
    lock, sensor, axis, *_ , events = make_rig()
    sensor.laser_on = False
    with pytest.raises(CalibrationRefused, match="usable line"):
        lock.calibrate()
    assert lock.calibration is None and lock.state == "off"
    assert any(level == "error" for level, _ in events)


def test_calibration_save_load_round_trip(tmp_path):
    lock, *_ = make_rig(drift_nm_s=0.0)
    cal = lock.calibrate()
    path = tmp_path / "focus_cal.json"
    lock.save_calibration(path)
    other, *_ = make_rig(calibration_file=str(path))
    assert other.calibration == cal
    with pytest.raises(ValueError, match="not a valid focus calibration"):
        (tmp_path / "bad.json").write_text("{}")
        other.load_calibration(tmp_path / "bad.json")
    with pytest.raises(FocusLockError, match="not found"):
        other.load_calibration(tmp_path / "missing.json")


# --------------------------------------------------------------------------- closed loop on the fake rig


def test_lock_holds_focus_against_drift_and_recovers_from_a_step():
    lock, sensor, axis, clock, samples, events = make_rig(drift_nm_s=5.0)
    lock.lock()
    try:
        run_until(clock, clock.now_s() + 6.0)
        assert lock.state == "locked"
        defocus = []
        t_end = clock.now_s() + 4.0
        while clock.now_s() < t_end:
            defocus.append(sensor.defocus_nm())
            time.sleep(0.001)
        # locked at the starting focus (defocus 0 at lock time + drift since calibration)
        assert np.std(defocus) < 10.0
        sensor.step_nm += 200.0
        t_step = clock.now_s()
        run_until(clock, t_step + 2.0)
        assert lock.state == "locked"
    finally:
        lock.unlock()
    assert lock.state == "off"
    after = [s for s in samples if s.time_s > t_step + 0.5]
    assert max(abs(s.error_nm) for s in after[:20]) < 30.0
    assert {"locking", "locked"} <= {s.state for s in samples}
    # z_cmd was sent as absolute targets: the z read-back equals the software-held command
    assert all(s.z_nm == s.z_command_nm for s in samples)


def test_laser_off_goes_lost_holds_z_and_reacquires():
    lock, sensor, axis, clock, samples, events = make_rig(drift_nm_s=0.0)
    lock.lock()
    try:
        run_until(clock, clock.now_s() + 2.0)
        assert lock.state == "locked"
        sensor.laser_on = False
        run_until(clock, clock.now_s() + 0.5)
        assert lock.state == "lost"
        n_moves = len(axis.targets)
        run_until(clock, clock.now_s() + 2.0)
        assert lock.state == "lost"
        assert len(axis.targets) == n_moves  # z held: never chased
        sensor.laser_on = True
        run_until(clock, clock.now_s() + 2.0)
        assert lock.state == "locked"
    finally:
        lock.unlock()
    states = [s.state for s in samples]
    lost_at = states.index("lost")
    assert "reacquiring" in states[lost_at:]
    assert any(level == "warning" and "lost" in msg for level, msg in events)


def test_line_out_of_range_is_lost_not_chased():
    lock, sensor, axis, clock, samples, _ = make_rig(drift_nm_s=0.0)
    lock.lock()
    try:
        run_until(clock, clock.now_s() + 1.0)
        z_before = axis.position_nm()
        sensor.step_nm = 4000.0  # line jumps off the calibrated range (~80 px)
        run_until(clock, clock.now_s() + 1.0)
        assert lock.state == "lost"
        assert abs(axis.position_nm() - z_before) < 50.0
    finally:
        lock.unlock()


def test_focus_offset_moves_z_while_locked():
    lock, sensor, axis, clock, *_ = make_rig(drift_nm_s=0.0)
    lock.lock()
    try:
        run_until(clock, clock.now_s() + 1.0)
        z0 = axis.position_nm()
        lock.set_offset_nm(150.0)
        run_until(clock, clock.now_s() + 2.0)
        assert axis.position_nm() - z0 == pytest.approx(150.0, abs=15.0)
        assert lock.state == "locked"
    finally:
        lock.unlock()
    with pytest.raises(ValueError, match="focus offset"):
        lock.set_offset_nm(float("nan"))


def test_window_exceeded_is_a_fault_and_stops():
    lock, sensor, axis, clock, samples, events = make_rig(drift_nm_s=2000.0, window_nm=1000.0)
    lock.calibrate()
    origin = axis.position_nm()
    first_move = len(axis.targets)
    lock.lock()
    try:
        deadline = time.monotonic() + 10.0
        while lock.is_running and time.monotonic() < deadline:
            time.sleep(0.002)
        assert lock.state == "fault"
        assert not lock.is_running
    finally:
        lock.unlock()
    assert all(abs(z - origin) <= 1000.0 + 1e-6 for z in axis.targets[first_move:])
    assert max(abs(z - origin) for z in axis.targets[first_move:]) > 900.0
    assert any(level == "error" and "travel window" in msg for level, msg in events)


@pytest.mark.parametrize("ratio", [0.5, 1.5])
def test_miscalibrated_slope_still_converges(ratio):
    lock, sensor, axis, clock, samples, _ = make_rig(drift_nm_s=0.0)
    lock.calibrate()
    sensor.slope *= ratio  # the true slope now differs from the calibrated one
    lock.lock()
    try:
        run_until(clock, clock.now_s() + 0.5)
        sensor.step_nm += 200.0
        t_step = clock.now_s()
        run_until(clock, t_step + 3.0)
        assert lock.state == "locked"
        assert abs(sensor.defocus_nm()) < 20.0
    finally:
        lock.unlock()


def test_loop_runs_at_the_configured_rate():
    lock, sensor, axis, clock, samples, _ = make_rig(drift_nm_s=0.0, rate_hz=40.0)
    lock.lock()
    try:
        run_until(clock, clock.now_s() + 2.0)
    finally:
        lock.unlock()
    times = np.array([s.time_s for s in samples])
    assert np.median(np.diff(times)) == pytest.approx(1 / 40.0, rel=0.02)


# --------------------------------------------------------------------------- pure pieces


def test_control_step_is_integral_on_absolute_z():
    step = control_step(100.0, 40.0, 0.5, 2.0, 300.0, -1e4, 1e4)
    assert step.z_command_nm == 80.0 and step.delta_nm == -20.0 and not step.limited
    assert control_step(100.0, 1.5, 0.5, 2.0, 300.0, -1e4, 1e4).delta_nm == 0.0      # deadband
    assert control_step(100.0, 5000.0, 0.5, 2.0, 300.0, -1e4, 1e4).delta_nm == -300.0  # per-step clamp
    edge = control_step(100.0, -400.0, 0.5, 2.0, 300.0, -1e4, 150.0)
    assert edge.z_command_nm == 150.0 and edge.limited
    assert control_step(100.0, float("nan"), 0.5, 2.0, 300.0, -1e4, 1e4).delta_nm == 0.0


def test_travel_limits_respect_window_and_soft_limits():
    assert travel_limits(0.0, 5000.0, (-2000.0, 1e6), 100.0) == (-1900.0, 5000.0)
    with pytest.raises(FocusLockError, match="no room"):
        travel_limits(0.0, 100.0, (500.0, 1000.0))


def test_state_machine_transitions():
    sm = LockStateMachine(20.0, 3, 3, 5, 2)
    assert [sm.update(True, 5.0) for _ in range(3)][-1] == "locked"
    assert sm.update(True, 50.0) == "locked"      # one outlier tolerated
    assert sm.update(True, 50.0) == "locking"
    sm.update(False, math.nan)
    sm.update(False, math.nan)
    assert sm.update(False, math.nan) == "lost"
    assert sm.update(True, 1.0) == "lost"
    assert sm.update(True, 1.0) == "reacquiring"
    assert [sm.update(True, 1.0) for _ in range(3)][-1] == "locked"
    sm.fault()
    assert sm.update(True, 0.0) == "fault"


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    gain=st.floats(0.05, 1.95),
    slope_ratio=st.floats(0.3, 3.0),
    noise_nm=st.floats(0.0, 500.0),
    drift_nm_per_step=st.floats(-300.0, 300.0),
    window_nm=st.floats(100.0, 10_000.0),
    soft_high_nm=st.floats(50.0, 20_000.0),
    seed=st.integers(0, 1000),
)
def test_property_z_never_leaves_window_or_soft_limits(gain, slope_ratio, noise_nm, drift_nm_per_step,
                                                       window_nm, soft_high_nm, seed):
    """Pure model of the loop: whatever the noise, drift, gain and miscalibration, every
    commanded z stays inside origin ± window and the soft limits; a cut move is flagged."""
    rng = np.random.default_rng(seed)
    soft = (-20_000.0, soft_high_nm)
    low, high = travel_limits(0.0, window_nm, soft, 10.0)
    z_cmd, interface = 0.0, 0.0
    for _ in range(300):
        interface += drift_nm_per_step
        error = slope_ratio * (z_cmd - interface) + rng.normal(0.0, noise_nm + 1e-9)
        step = control_step(z_cmd, error, gain, 2.0, 300.0, low, high)
        assert low <= step.z_command_nm <= high
        assert -window_nm <= step.z_command_nm <= window_nm
        assert soft[0] <= step.z_command_nm <= soft[1]
        assert abs(step.delta_nm) <= 300.0 + 1e-9
        if step.limited:
            assert step.z_command_nm in (low, high)
        z_cmd = step.z_command_nm


def test_a_failing_sample_listener_does_not_stop_the_lock():
    clock = SteppingClock()
    axis = FakeZ()
    sensor = FakeSensor(clock, axis, drift_nm_s=0.0)
    events = []

    def broken(sample):
        raise RuntimeError("listener bug")

    lock = FocusLock(sensor, axis, clock, FocusLockConfig(calibration_settle_s=0.0, calibration_reads=3),
                     on_sample=broken, on_event=lambda lvl, msg: events.append((lvl, msg)))
    lock.lock()
    try:
        run_until(clock, clock.now_s() + 1.0)
        assert lock.state == "locked" and lock.is_running
    finally:
        lock.unlock()
    warnings = [msg for lvl, msg in events if lvl == "warning" and "listener bug" in msg]
    assert len(warnings) == 1


def test_lock_refuses_without_a_line():
    lock, sensor, axis, clock, samples, events = make_rig(drift_nm_s=0.0)
    lock.calibrate()
    sensor.laser_on = False
    with pytest.raises(FocusLockError, match="no usable"):
        lock.lock()
    assert lock.state == "off" and not lock.is_running
