"""``[focus_lock] recover = true``: after a laser-off fault the lock re-acquires by a bounded z search."""

from __future__ import annotations

import threading
import time

import pytest

from operascope.acquisition.focus_lock import FocusLock
from operascope.acquisition.focus_recover import LockRecovery, RecoverSettings, search_offsets_nm
from operascope.analysis.focus_signal import ProfileMeasurement
from operascope.config.loader import load_config
from operascope.simulators.devices.backends import build_simulated_devices
from operascope.simulators.world.world import World

SHIFT_NM = 2500.0     # the sample moves while the lock is blind: beyond the calibrated ±1.5 µm


class Rig:
    def __init__(self, **focus) -> None:
        self.cfg = load_config(overrides={"simulation": {"speed": 10.0, "seed": 5}, "focus_lock": focus})
        self.world = World(self.cfg)
        self.devices = build_simulated_devices(self.world)
        for role in ("stage", "focus_laser", "focus_sensor"):
            self.devices[role].open()
        self.laser = self.devices["focus_laser"]
        self.laser.set_power(self.cfg.focus_lock.laser_power_w)
        self.laser.enable(True)
        self.z = self.devices["stage"].axis("z")
        self.events: list[tuple[str, str]] = []
        self.moves: list[float] = []
        original = self.z.move_to
        self.z.move_to = lambda target: (self.moves.append(float(target)), original(target))[1]
        self.lock = FocusLock(self.devices["focus_sensor"], self.z, self.world.clock, self.cfg.focus_lock,
                              on_event=lambda level, msg: self.events.append((level, msg)),
                              signal_expected=lambda: self.laser.state().enabled)

    def wait_state(self, state: str, timeout_s: float) -> bool:
        t_end = self.world.clock.now_s() + timeout_s
        while self.world.clock.now_s() < t_end:
            if self.lock.state == state:
                return True
            time.sleep(0.002)
        return self.lock.state == state

    def laser_off_and_sample_moves(self) -> float:
        """Interlock trip (1 s), the sample moves meanwhile; the operator switches the laser on again."""
        assert self.wait_state("locked", 5.0)
        before = self.world.truth()["defocus_nm"]
        self.world.inject_fault("focus_laser", "interlock_trip", duration_s=1.0)
        assert self.wait_state("lost", 1.0)
        self.world.sim.z_focus_nm += SHIFT_NM
        moves_while_dark = len(self.moves)
        self.world.clock.sleep_s(1.2)
        assert not self.laser.state().enabled and len(self.moves) == moves_while_dark   # no search in the dark
        self.laser.enable(True)
        return before

    def close(self) -> None:
        self.lock.close()
        for role in ("focus_sensor", "focus_laser", "stage"):
            self.devices[role].close()


@pytest.fixture
def rigs():
    made: list[Rig] = []
    yield lambda **focus: made.append(Rig(**focus)) or made[-1]
    for rig in made:
        rig.close()


def test_without_recover_the_lock_stays_lost(rigs):
    rig = rigs(recover=False)
    rig.lock.lock()
    rig.laser_off_and_sample_moves()
    assert not rig.wait_state("locked", 3.0) and rig.lock.state == "lost"
    assert abs(rig.world.truth()["defocus_nm"]) > 2000.0


def test_recover_finds_the_line_by_a_bounded_search_and_locks_again(rigs):
    rig = rigs(recover=True, recover_retry_s=0.5, recover_step_nm=1000.0, recover_range_nm=4000.0)
    rig.lock.lock()
    before = rig.laser_off_and_sample_moves()
    hold = rig.lock.z_command_nm
    assert rig.wait_state("locked", 5.0), rig.events
    after = rig.world.truth()["defocus_nm"]
    print(f"true defocus before the fault {before:.1f} nm, after recovery {after:.1f} nm")
    assert after == pytest.approx(before, abs=30.0)
    assert rig.lock.z_command_nm - hold == pytest.approx(SHIFT_NM, abs=100.0)
    messages = " | ".join(msg for _, msg in rig.events)
    assert "recover: signal lost" in messages and "recovered: line found at z" in messages, messages
    assert all(abs(z - hold) <= 4000.0 + 1e-6 for z in rig.moves[-20:])          # bounded by recover_range_nm


def test_search_offsets_alternate_nearest_first():
    assert search_offsets_nm(2500.0, 1000.0) == [1000.0, -1000.0, 2000.0, -2000.0]
    with pytest.raises(ValueError, match="step_nm > 0"):
        search_offsets_nm(1000.0, 0.0)


class Axis:
    def __init__(self) -> None:
        self.moves: list[float] = []

    def move_to(self, z: float) -> None:
        self.moves.append(z)


class Clock:
    def now_s(self) -> float:
        return 0.0

    def sleep_s(self, _s: float) -> None:
        return None


def test_search_stays_in_the_window_and_returns_to_the_held_z_when_nothing_is_found():
    recovery = LockRecovery(RecoverSettings(range_nm=3000.0, step_nm=1000.0, retry_s=5.0))
    axis = Axis()
    bad = ProfileMeasurement(float("nan"), 0.0, 0.0, float("nan"), float("nan"), 0.0, False, False, "dark")
    found = recovery.search(axis, Clock(), 100.0, (-1500.0, 2500.0), 1000.0, lambda: bad, lambda m: m.ok,
                            threading.Event())
    assert found is None
    assert axis.moves == [1100.0, -900.0, 2100.0, 100.0]       # ±3000 nm, window [-1500, 2500], back to hold
    assert not recovery.due(1.0) and recovery.due(5.0)            # retried only after retry_s
    dark = LockRecovery(RecoverSettings(3000.0, 1000.0, 5.0), signal_expected=lambda: False)
    assert not dark.due(100.0)
