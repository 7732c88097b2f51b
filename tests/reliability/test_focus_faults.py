"""Reliability item 6: whatever the focus sensor or the z stage do, z stays inside the travel window.

A hypothesis test drives random fault sequences into the real FocusLock (its loop thread, on a
virtual clock) through a scripted focus sensor: laser interlock trips (dark profiles), the line
gone or pushed to the edge, garbage profiles (NaN, inf, saturated, flat, random noise, negative,
wrong length, too short, 2-D), plausible-looking fake lines anywhere, real defocus jumps, sensor
timeouts and unplugs, and z moves that fail (timeout, end of travel, link lost). Asserted on
what the axis was actually told: every commanded z lies inside lock origin ± window and inside
the soft limits minus the margin; no step exceeds max_step_nm; z is not moved while the lock
is lost; a failed move is never retried (the lock stops in ``fault`` and says why); and no
profile, however broken, kills the loop with an unexpected error.

A second test runs the lock on the simulated World with faults injected on the laser, the
sensor and the stage, checking the stage's true z.

Already shown elsewhere: the pure control step never leaves window/limits under random noise,
drift, gain and miscalibration (tests/test_focus_lock.py::test_property_z_never_leaves_window_or_soft_limits);
interlock → lost → reacquired and sensor unplugged → reconnected on the simulated world
(tests/test_focus_lock_sim.py).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from operascope.acquisition.focus_lock import FocusLock, travel_limits
from operascope.acquisition.focus_control import MOVE_TIMEOUTS_BEFORE_FAULT
from operascope.analysis.focus_signal import FocusCalibration
from operascope.analysis.runfile_layout import FOCUS_STATES
from operascope.config.loader import load_config
from operascope.config.schema import FocusLockConfig
from tests.fakes.clocks import SteppingClock
from operascope.devices.base import (
    DeviceInfo,
    DeviceLost,
    DeviceTimeout,
    EndOfTravel,
    FocusSensor,
    Positioner,
    Profile,
)
from operascope.simulators.devices.backends import build_simulated_devices
from operascope.simulators.world.world import World

N_PIXELS = 128
SLOPE_PX_PER_NM = 0.02
LINE_SIGMA_PX = 3.0


class RecordingZ(Positioner):
    """An instant z axis that records every commanded target, and fails the moves it is told to."""

    name = "stage.z"

    def __init__(self, origin_nm: float, limits_nm: tuple[float, float]) -> None:
        self._position = origin_nm
        self._limits = limits_nm
        self.attempts: list[float] = []
        self.failures: dict[int, Exception] = {}  # attempt index -> error raised instead of moving
        self.failed_at: list[int] = []

    def open(self): pass
    def close(self): pass
    def info(self): return DeviceInfo("recording z", "0")
    @property
    def is_open(self): return True
    @property
    def limits_nm(self): return self._limits
    def position_nm(self): return self._position
    def target_nm(self): return self._position
    def is_moving(self): return False
    def halt(self): pass

    def move_to(self, target_nm: float) -> None:
        self.check_target(target_nm)
        index = len(self.attempts)
        self.attempts.append(float(target_nm))
        if index in self.failures:
            self.failed_at.append(index)
            raise self.failures[index]
        self._position = float(target_nm)


def line(centre_px: float, peak: float = 2000.0, n: int = N_PIXELS, background: float = 100.0) -> np.ndarray:
    x = np.arange(n, dtype=float)
    return background + peak * np.exp(-0.5 * ((x - centre_px) / LINE_SIGMA_PX) ** 2)


class ScriptedSensor(FocusSensor):
    """The reflected line for the true defocus, except where the script says otherwise.

    The line sits at centre + slope·(z − interface); ``interface_nm`` changes with "jump" events.
    """

    def __init__(self, clock: SteppingClock, axis: RecordingZ, seed: int = 0) -> None:
        self.clock, self.axis = clock, axis
        self.interface_nm = axis.position_nm()
        self.script: list[tuple[str, float]] = []
        self.reads = 0
        self.rng = np.random.default_rng(seed)
        self.reconnects = 0
        self.lost = False
        self.drift_nm_per_read = 0.0

    def open(self): pass
    def close(self): pass
    def info(self): return DeviceInfo("scripted sensor", "0")
    @property
    def is_open(self): return True
    @property
    def n_pixels(self): return N_PIXELS

    def reconnect(self) -> None:
        self.reconnects += 1
        self.lost = False

    def true_profile(self) -> np.ndarray:
        centre = N_PIXELS / 2 + SLOPE_PX_PER_NM * (self.axis.position_nm() - self.interface_nm)
        return line(centre) + 10.0 * self.rng.standard_normal(N_PIXELS)

    def read_profile(self, timeout_s: float = 1.0) -> Profile:
        self.clock.sleep_s(0.002)
        t = self.clock.now_s()
        self.interface_nm += self.drift_nm_per_read  # slow thermal drift of the cover glass
        if not self.script:
            return Profile(self.true_profile(), t)
        kind, value = self.script.pop(0)
        self.reads += 1
        rng = self.rng
        if kind == "timeout":
            raise DeviceTimeout("focus_sensor", "no profile in time")
        if kind == "lost":
            self.lost = True
            raise DeviceLost("focus_sensor", "unplugged")
        if kind == "jump":  # the interface really moves: a defocus step of ``value`` nm
            self.interface_nm += value
            return Profile(self.true_profile(), t)
        values = {
            "ok": lambda: self.true_profile(),
            "interlock": lambda: 100.0 + 10.0 * rng.standard_normal(N_PIXELS),  # laser off: dark
            "edge": lambda: line(2.0 + 3.0 * abs(value) % 3.0),
            "fake_line": lambda: line(8.0 + (N_PIXELS - 16) * abs(value) % (N_PIXELS - 16)),
            "nan": lambda: np.full(N_PIXELS, np.nan),
            "some_nan": lambda: np.where(np.arange(N_PIXELS) % 7 == 0, np.nan, self.true_profile()),
            "inf": lambda: np.where(np.arange(N_PIXELS) == 5, np.inf, self.true_profile()),
            "minus_inf": lambda: np.where(np.arange(N_PIXELS) == 9, -np.inf, self.true_profile()),
            "saturated": lambda: np.minimum(self.true_profile() * 5.0, 4095.0),
            "flat": lambda: np.full(N_PIXELS, 4095.0 * abs(value) % 4096.0),
            "noise": lambda: rng.uniform(0.0, 4095.0, N_PIXELS),
            "negative": lambda: -self.true_profile(),
            "short": lambda: line(25.0, n=50),
            "long": lambda: line(N_PIXELS / 2 + 40.0, n=2 * N_PIXELS),
            "tiny": lambda: np.array([1.0, 2.0, 3.0]),
            "empty": lambda: np.zeros(0),
            "two_d": lambda: np.tile(self.true_profile(), (2, 1)),
        }[kind]()
        return Profile(values, t)


SENSOR_EVENTS = ["ok", "interlock", "edge", "fake_line", "nan", "some_nan", "inf", "minus_inf", "saturated", "flat",
                 "noise", "negative", "short", "long", "tiny", "empty", "two_d", "timeout", "lost", "jump"]
MOVE_ERRORS = {
    "timeout": lambda: DeviceTimeout("stage.z", "no answer"),
    "end_of_travel": lambda: EndOfTravel("stage.z", "forward end of travel reached"),
    "lost": lambda: DeviceLost("stage.z", "link lost"),
}


def make_calibration() -> FocusCalibration:
    """A calibration as calibrate() would make it on this sensor, around z = 0 (±3000 nm)."""
    z = np.arange(-3000.0, 3001.0, 100.0)
    positions = N_PIXELS / 2 + SLOPE_PX_PER_NM * z
    peak = line(N_PIXELS / 2) - 100.0
    return FocusCalibration(
        slope_px_per_nm=SLOPE_PX_PER_NM, offset_px=N_PIXELS / 2, z_center_nm=0.0, residual_nm=1.0,
        max_residual_nm=2.0, r2=0.9999, capture_range_nm=3000.0, capture_low_nm=-3000.0, capture_high_nm=3000.0,
        n_points=z.size, reference_intensity=float(peak.sum()), reference_width_px=LINE_SIGMA_PX, step_nm=100.0,
        n_pixels=N_PIXELS, scan_z_nm=tuple(z), scan_position_px=tuple(positions),
    )


events_strategy = st.lists(
    st.tuples(st.sampled_from(SENSOR_EVENTS), st.floats(-4000.0, 4000.0, allow_nan=False)),
    min_size=5, max_size=60,
)


@settings(max_examples=50, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate, Phase.shrink],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    events=events_strategy,
    ok_runs=st.integers(0, 3),
    window_nm=st.floats(200.0, 4000.0),
    max_step_nm=st.floats(10.0, 1000.0),
    gain=st.floats(0.1, 1.9),
    origin_nm=st.floats(-2000.0, 2000.0),
    soft_room_nm=st.tuples(st.floats(150.0, 6000.0), st.floats(150.0, 6000.0)),
    move_failure=st.one_of(st.none(), st.tuples(st.integers(0, 20), st.sampled_from(sorted(MOVE_ERRORS)),
                                                st.sampled_from([1, MOVE_TIMEOUTS_BEFORE_FAULT]))),
    drift_nm_per_read=st.floats(-40.0, 40.0),
    estimator=st.sampled_from(["gaussian", "centroid", "phasor"]),
    profiles_per_update=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_random_sensor_and_stage_faults_never_move_z_outside_the_window(
        events, ok_runs, window_nm, max_step_nm, gain, origin_nm, soft_room_nm, move_failure, drift_nm_per_read,
        estimator, profiles_per_update, seed):
    margin_nm = 100.0
    soft = (origin_nm - soft_room_nm[0], origin_nm + soft_room_nm[1])
    clock = SteppingClock(yield_s=0.00005)
    axis = RecordingZ(origin_nm, soft)
    sensor = ScriptedSensor(clock, axis, seed)
    config = FocusLockConfig(window_nm=window_nm, max_step_nm=max_step_nm, gain=gain, soft_limit_margin_nm=margin_nm,
                             rate_hz=200.0, lost_after_bad=3, bad_history=6, reacquire_after_good=2,
                             estimator=estimator, profiles_per_update=profiles_per_update)
    samples, log = [], []
    lock = FocusLock(sensor, axis, clock, config, on_sample=samples.append, on_event=lambda lvl, msg: log.append((lvl, msg)))
    lock.calibration = make_calibration()
    # interleave runs of good profiles so the lock also acts (and is lost, and reacquires) between faults
    script = []
    for kind, value in events:
        script.append((kind, value))
        script += [("ok", 0.0)] * ok_runs
    if move_failure is not None:
        first, kind, in_a_row = move_failure
        for index in range(first, first + in_a_row):
            axis.failures[index] = MOVE_ERRORS[kind]()
    lock.lock()
    sensor.drift_nm_per_read = drift_nm_per_read
    sensor.script = script
    try:
        deadline = time.monotonic() + 20.0
        while sensor.script and lock.is_running:
            assert time.monotonic() < deadline, "the loop did not consume the script"
            time.sleep(0.001)
        clock.sleep_s(0.05)  # a few more updates on good profiles
        time.sleep(0.01)
    finally:
        lock.unlock()

    low, high = travel_limits(origin_nm, window_nm, soft, margin_nm)
    assert low >= origin_nm - window_nm - 1e-6 and high <= origin_nm + window_nm + 1e-6
    previous = origin_nm
    for index, target in enumerate(axis.attempts):
        assert low - 1e-6 <= target <= high + 1e-6, (target, low, high)
        assert soft[0] + margin_nm - 1e-6 <= target <= soft[1] - margin_nm + 1e-6
        assert abs(target - previous) <= max_step_nm + 1e-6
        if index not in axis.failed_at:
            previous = target
    messages = " | ".join(msg for _, msg in log)
    states = {s.state for s in samples}
    event(f"states seen: {sorted(states)}; move failed: {bool(axis.failed_at)}; moves: {'>= 10' if len(axis.attempts) >= 10 else '< 10'}")
    assert "loop error" not in messages, messages  # no profile kills the loop with an unexpected error
    assert all(s.state in FOCUS_STATES for s in samples)
    faulted_by_move = axis.failed_at and (move_failure[1] != "timeout"
                                          or len(axis.failed_at) >= MOVE_TIMEOUTS_BEFORE_FAULT)
    if faulted_by_move:  # a move that faults is never retried: it was the last one, and the lock says why
        assert axis.failed_at[-1] == len(axis.attempts) - 1
        assert axis.failed_at == list(range(axis.failed_at[0], axis.failed_at[0] + len(axis.failed_at)))
        assert any(lvl == "error" and "z move" in msg and "failed" in msg for lvl, msg in log), messages
        assert samples[-1].state == "fault"  # the loop ended with that update (unlock() joined it)
    elif axis.failed_at:  # fewer timeouts in a row than the limit: z held, a warning each, the lock goes on
        held = [msg for lvl, msg in log if lvl == "warning" and "timed out" in msg and "z held" in msg]
        assert len(held) == len(axis.failed_at), messages
        assert not any(lvl == "error" and "z move" in msg for lvl, msg in log), messages
    if any(s.state == "fault" for s in samples):
        assert any(lvl == "error" for lvl, _ in log)
    for before, after in zip(samples, samples[1:]):  # while lost, z is held
        if after.state == "lost" and before.state == "lost":
            assert after.z_command_nm == before.z_command_nm


def test_garbage_profiles_are_bad_samples_not_loop_errors():
    """Each kind of broken profile, alone and repeated: the lock goes lost, holds z, keeps running."""
    for kind in ["nan", "short", "long", "tiny", "empty", "two_d", "noise", "flat", "saturated", "negative"]:
        clock = SteppingClock(yield_s=0.00005)
        axis = RecordingZ(0.0, (-50_000.0, 50_000.0))
        sensor = ScriptedSensor(clock, axis)
        log = []
        lock = FocusLock(sensor, axis, clock, FocusLockConfig(rate_hz=200.0), on_event=lambda lvl, msg: log.append(msg))
        lock.calibration = make_calibration()
        lock.lock()
        try:
            moves_before = len(axis.attempts)
            sensor.script = [(kind, 0.0)] * 5000
            deadline = time.monotonic() + 10.0
            # Look as soon as the lock says "lost", with garbage still queued: good profiles after the last
            # garbage one would (rightly) let it re-acquire, so a check after the script ran out would race.
            while not any("-> lost" in message for message in log):
                assert time.monotonic() < deadline, (kind, lock.state, log)
                time.sleep(0.001)
            assert sensor.script, f"{kind}: the script ran out before the check; lengthen it"
            assert lock.is_running and lock.state == "lost", (kind, lock.state, log)
            assert len(axis.attempts) == moves_before, kind
            reasons = " ".join(log)
            assert "loop error" not in reasons, (kind, reasons)
        finally:
            lock.unlock()


def test_wrong_length_profile_names_the_lengths():
    clock = SteppingClock(yield_s=0.00005)
    axis = RecordingZ(0.0, (-50_000.0, 50_000.0))
    sensor = ScriptedSensor(clock, axis)
    samples = []
    lock = FocusLock(sensor, axis, clock, FocusLockConfig(rate_hz=200.0), on_sample=samples.append)
    lock.calibration = make_calibration()
    lock.lock()
    try:
        sensor.script = [("short", 0.0)] * 3
        deadline = time.monotonic() + 10.0
        while sensor.script:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        time.sleep(0.01)
    finally:
        lock.unlock()
    reasons = [s.reason for s in samples if s.reason]
    assert any("50 pixels" in r and f"{N_PIXELS}" in r for r in reasons), reasons


# --------------------------------------------------------------------------- on the simulated world


@pytest.mark.parametrize("seed", [1, 2])
def test_simulated_world_faults_keep_true_z_inside_the_window(seed):
    rng = np.random.default_rng(seed)
    window_nm = 1500.0
    cfg = load_config(overrides={"simulation": {"speed": 20.0, "seed": seed},
                                 "focus_lock": {"window_nm": window_nm, "calibration_settle_s": 0.0,
                                                "calibration_reads": 2, "calibration_range_nm": 1000.0,
                                                "calibration_step_nm": 100.0}})
    world = World(cfg)
    devices = build_simulated_devices(world)
    for role in ("stage", "focus_laser", "focus_sensor"):
        devices[role].open()
    devices["focus_laser"].set_power(cfg.focus_lock.laser_power_w)
    devices["focus_laser"].enable(True)
    z = devices["stage"].axis("z")
    log = []
    lock = FocusLock(devices["focus_sensor"], z, world.clock, cfg.focus_lock, on_event=lambda lvl, msg: log.append((lvl, msg)))
    commanded = []
    original_move = z.move_to

    def recording_move(target_nm: float) -> None:
        commanded.append(float(target_nm))
        original_move(target_nm)

    z.move_to = recording_move  # type: ignore[method-assign]
    try:
        lock.calibrate()
        commanded.clear()
        lock.lock()
        origin = lock.z_command_nm
        true_z = []
        faults = [("focus_laser", "interlock_trip", 0.3), ("focus_sensor", "timeout", 0.2),
                  ("focus_sensor", "device_lost", 0.3), ("stage", "timeout", 0.0), ("focus_laser", "timeout", 0.2)]
        for index in rng.permutation(len(faults)):
            device, kind, duration = faults[index]
            world.inject_fault(device, kind, duration_s=duration)
            t_end = world.clock.now_s() + 0.6
            while world.clock.now_s() < t_end:
                true_z.append(world.stage_position_nm("z"))
                time.sleep(0.002)
            if not lock.is_running:
                break
            if not devices["focus_laser"].state().enabled:  # the operator switches the laser back on
                devices["focus_laser"].enable(True)
        messages = " | ".join(msg for _, msg in log)
        assert "-> lost" in messages and "focus sensor reconnected" in messages, messages
        assert true_z and all(origin - window_nm - 20.0 <= v <= origin + window_nm + 20.0 for v in true_z)
        assert all(origin - window_nm <= v <= origin + window_nm for v in commanded)
        if not lock.is_running:  # only a failed z move may stop it, and it says so
            assert lock.state == "fault" and any("z move" in msg for _, msg in log), log
    finally:
        lock.close()
        for role in ("focus_sensor", "focus_laser", "stage"):
            devices[role].close()


@pytest.mark.parametrize("timeouts_in_a_row", [1, MOVE_TIMEOUTS_BEFORE_FAULT - 1, MOVE_TIMEOUTS_BEFORE_FAULT])
def test_z_move_timeouts_below_the_limit_hold_z_and_the_lock_goes_on(timeouts_in_a_row):
    """A controller link that times out once (or up to the limit - 1 times in a row) must not end a week's lock:
    each timeout is a warning, z is held and corrected at the next sample; the limit-th in a row is a fault."""
    clock = SteppingClock(yield_s=0.00005)
    axis = RecordingZ(0.0, (-50_000.0, 50_000.0))
    sensor = ScriptedSensor(clock, axis)
    sensor.drift_nm_per_read = 5.0            # the cover glass drifts: the lock moves z at every update
    config = FocusLockConfig(window_nm=5000.0, max_step_nm=500.0, gain=0.5, rate_hz=200.0)
    log = []
    lock = FocusLock(sensor, axis, clock, config, on_event=lambda lvl, msg: log.append((lvl, msg)))
    lock.calibration = make_calibration()
    for index in range(5, 5 + timeouts_in_a_row):
        axis.failures[index] = DeviceTimeout("stage.z", "controller did not answer in time")
    lock.lock()
    try:
        deadline = time.monotonic() + 20.0
        while len(axis.attempts) < 20 and lock.is_running:
            assert time.monotonic() < deadline, "the lock stopped moving z"
            time.sleep(0.001)
    finally:
        lock.unlock()
    messages = " | ".join(msg for _, msg in log)
    held = [msg for lvl, msg in log if lvl == "warning" and "timed out" in msg and "z held" in msg]
    if timeouts_in_a_row < MOVE_TIMEOUTS_BEFORE_FAULT:
        assert len(held) == timeouts_in_a_row and "in a row, fault at 3" in held[0], messages
        assert len(axis.attempts) >= 20 and "fault" not in lock.state, messages   # it kept correcting
    else:
        assert len(held) == MOVE_TIMEOUTS_BEFORE_FAULT - 1, messages
        assert axis.failed_at[-1] == len(axis.attempts) - 1 == 5 + MOVE_TIMEOUTS_BEFORE_FAULT - 1
        assert "-> fault (z move to" in messages and not lock.is_running, messages
        assert any(lvl == "error" and "z move" in msg and "failed" in msg for lvl, msg in log), messages
