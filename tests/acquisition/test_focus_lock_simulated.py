"""The focus lock closed-loop on the simulated world (ground truth from World.truth()).

Each test builds its own World at a high clock speed; the calibration is made once per
module and reused through save/load (as between runs on the real rig).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from operascope.acquisition.focus_lock import FocusLock
from operascope.config.loader import load_config
from operascope.simulators.devices.backends import build_simulated_devices
from operascope.simulators.world.world import World

SPEED = 10.0


class SimRig:
    def __init__(self, calibration_file=None, seed: int = 3, simulation=None, **focus) -> None:
        overrides = {"simulation": {"speed": SPEED, "seed": seed} | (simulation or {}), "focus_lock": focus}
        if calibration_file is not None:
            overrides["focus_lock"]["calibration_file"] = str(calibration_file)
        self.cfg = load_config(overrides=overrides)
        self.world = World(self.cfg)
        self.devices = build_simulated_devices(self.world)
        for role in ("stage", "focus_laser", "focus_sensor"):
            self.devices[role].open()
        self.laser = self.devices["focus_laser"]
        self.laser.set_power(self.cfg.focus_lock.laser_power_w)
        self.laser.enable(True)
        self.z = self.devices["stage"].axis("z")
        self.samples, self.events = [], []
        self.lock = FocusLock(self.devices["focus_sensor"], self.z, self.world.clock, self.cfg.focus_lock,
                              on_sample=self.samples.append, on_event=lambda lvl, msg: self.events.append((lvl, msg)))

    @property
    def clock(self):
        return self.world.clock

    def defocus_nm(self) -> float:
        return self.world.truth()["defocus_nm"]

    def trace(self, duration_s: float, every_s: float = 0.05, what=None) -> np.ndarray:
        """Sample ``what()`` (default: true defocus) for ``duration_s`` virtual seconds."""
        what = what or self.defocus_nm
        t_end = self.clock.now_s() + duration_s
        values = []
        while self.clock.now_s() < t_end:
            values.append(what())
            self.clock.sleep_s(every_s)
        return np.asarray(values)

    def wait_state(self, state: str, timeout_s: float = 5.0) -> float:
        """Virtual seconds until the lock reports ``state``; fails after ``timeout_s``."""
        t0 = self.clock.now_s()
        while self.lock.state != state:
            assert self.clock.now_s() - t0 < timeout_s, f"state {self.lock.state!r}, expected {state!r}"
            time.sleep(0.002)
        return self.clock.now_s() - t0

    def close(self) -> None:
        self.lock.close()
        for role in ("focus_sensor", "focus_laser", "stage"):
            self.devices[role].close()


@pytest.fixture
def make_rig():
    rigs = []

    def factory(**kwargs) -> SimRig:
        rig = SimRig(**kwargs)
        rigs.append(rig)
        return rig

    yield factory
    for rig in rigs:
        rig.close()


@pytest.fixture(scope="module")
def calibration_file(tmp_path_factory):
    rig = SimRig(seed=11)
    try:
        cal = rig.lock.calibrate()
        assert cal.slope_px_per_nm == pytest.approx(rig.cfg.simulation.focus_slope_px_per_nm, rel=0.03)
        assert cal.r2 > 0.999 and cal.residual_nm < 5.0
        assert cal.capture_span_nm == pytest.approx(3000.0)
        assert cal.capture_range_nm == pytest.approx(1500.0)
        assert abs(rig.z.target_nm()) < 1e-6  # back where it started
        path = tmp_path_factory.mktemp("focus") / "focus_calibration.json"
        rig.lock.save_calibration(path)
    finally:
        rig.close()
    return path


def test_lock_holds_true_focus_against_drift_and_recovers_from_a_step(make_rig, calibration_file):
    rig = make_rig(calibration_file=calibration_file, simulation={"drift_z_nm_s": 5.0})
    assert rig.lock.calibration is not None
    rig.lock.lock()
    rig.wait_state("locked")
    d0 = rig.defocus_nm()
    held = rig.trace(20.0)
    dof = rig.cfg.simulation.depth_of_field_nm
    # 20 s of 5 nm/s drift would move focus by 100 nm; locked, it stays within a few nm
    assert np.max(np.abs(held - d0)) < 15.0
    assert np.std(held) < 5.0
    assert np.max(np.abs(held)) < dof / 2
    rig.world.sim.z_focus_nm += 200.0  # 200 nm step of the interface
    after = rig.trace(1.5, every_s=0.01)
    assert np.max(np.abs(after - d0)) > 100.0           # the step was seen ...
    assert np.all(np.abs(after[-50:] - d0) < 15.0)     # ... and corrected within 1 s
    assert rig.lock.state == "locked"


def test_laser_interlock_goes_lost_holds_z_then_reacquires(make_rig, calibration_file):
    rig = make_rig(calibration_file=calibration_file)
    rig.lock.lock()
    rig.wait_state("locked")
    d0 = rig.defocus_nm()
    rig.world.inject_fault("focus_laser", "interlock_trip", duration_s=2.0)
    rig.wait_state("lost", timeout_s=1.0)
    target = rig.z.target_nm()
    targets = rig.trace(1.0, every_s=0.02, what=rig.z.target_nm)
    assert np.all(targets == target)  # z held still: never chased
    assert any(level == "warning" and "lost" in msg for level, msg in rig.events)
    rig.clock.sleep_s(1.2)  # interlock window over; the laser must be switched on again
    rig.laser.enable(True)
    rig.wait_state("locked", timeout_s=3.0)
    assert "reacquiring" in [s.state for s in rig.samples]
    assert abs(rig.defocus_nm() - d0) < 20.0


def test_line_out_of_range_is_lost_then_reacquired(make_rig, calibration_file):
    rig = make_rig(calibration_file=calibration_file)
    rig.lock.lock()
    rig.wait_state("locked")
    z_before = rig.z.target_nm()
    rig.world.sim.z_focus_nm += 2500.0  # line leaves the calibrated ±1.5 µm range
    rig.wait_state("lost", timeout_s=1.0)
    rig.clock.sleep_s(0.5)
    assert abs(rig.z.target_nm() - z_before) <= rig.cfg.focus_lock.max_step_nm  # at most the first step
    rig.world.sim.z_focus_nm -= 2500.0
    rig.wait_state("locked", timeout_s=3.0)
    assert abs(rig.z.target_nm() - z_before) < 30.0


def test_window_exceeded_faults_and_stops(make_rig, calibration_file):
    rig = make_rig(calibration_file=calibration_file, window_nm=500.0)
    origin = rig.z.target_nm()
    rig.lock.lock()
    rig.wait_state("locked")
    rig.world.sim.z_focus_nm += 1000.0  # inside the capture range, beyond the window
    rig.wait_state("fault", timeout_s=2.0)
    time.sleep(0.05)
    assert not rig.lock.is_running
    assert abs(rig.z.target_nm() - origin) == pytest.approx(500.0)
    assert any(level == "error" and "travel window" in msg for level, msg in rig.events)


@pytest.mark.parametrize("true_over_assumed", [0.5, 1.5])
def test_miscalibrated_slope_still_converges(make_rig, calibration_file, true_over_assumed):
    rig = make_rig(calibration_file=calibration_file)
    rig.world.sim.focus_slope_px_per_nm *= true_over_assumed
    rig.lock.lock()
    rig.wait_state("locked")
    d0 = rig.defocus_nm()
    rig.world.sim.z_focus_nm += 200.0
    after = rig.trace(2.0, every_s=0.02)
    assert np.all(np.abs(after[-25:] - d0) < 15.0)
    assert rig.lock.state == "locked"


def test_sensor_unplugged_is_lost_then_reconnected_and_relocked(make_rig, calibration_file):
    rig = make_rig(calibration_file=calibration_file)
    rig.lock.lock()
    rig.wait_state("locked")
    rig.world.inject_fault("focus_sensor", "device_lost", duration_s=1.0)
    rig.wait_state("lost", timeout_s=1.0)
    target = rig.z.target_nm()
    assert np.all(rig.trace(0.5, every_s=0.02, what=rig.z.target_nm) == target)  # held while lost
    rig.wait_state("locked", timeout_s=4.0)
    assert any("reconnected" in msg for _, msg in rig.events)
    assert rig.lock.is_running
