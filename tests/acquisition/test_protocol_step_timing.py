"""Protocol steps on the simulated cell keep their configured lengths however late the runner polls.

The runner notices a step's end on its next wall-clock poll; at ``--speed`` 2000 a 0.2 s poll is 400 s of
rig time. The simulated channel (like an instrument running a technique sequence) starts the next step
where the last one ended, and the runner takes the start time from the instrument.
"""

from __future__ import annotations

import numpy as np
import pytest

from operascope.acquisition.echem_history import EchemHistory
from operascope.acquisition.protocol_runner import ProtocolRunner
from operascope.acquisition.protocols import ProtocolSpec
from operascope.simulators.devices.potentiostat import SimulatedPotentiostat
from tests.fakes.sim_world import make_world

RECORD_S = 2.0
SPEC = dict(gitt_current_ma_g=600.0, gitt_pulse_s=60.0, gitt_rest_s=120.0, gitt_initial_rest_s=40.0,
            v_max=3.70, record_interval_s=RECORD_S)


def _run_gitt(speed: float, poll_wall_s: float, seed: int = 4):
    world = make_world(speed=speed, seed=seed, particle_model="uniform")
    channel = SimulatedPotentiostat(world)
    channel.open()
    history = EchemHistory(1.0)
    steps: list[tuple[str, float]] = []
    runner = ProtocolRunner(channel, world.clock, ProtocolSpec("gitt", **SPEC), history,
                            on_step=lambda step, t: steps.append((step.kind, t)), poll_wall_s=poll_wall_s)
    runner.start()
    assert runner.done.wait(60.0), "the GITT protocol did not end"
    runner.stop()
    return runner, steps, history.samples()


def test_a_runner_polling_every_400_rig_seconds_still_starts_each_step_where_the_last_ended():
    runner, steps, samples = _run_gitt(speed=2000.0, poll_wall_s=0.2)
    assert runner.end_reason == "cut-off"
    kinds = [k for k, _ in steps]
    assert kinds[:4] == ["rest", "pulse", "rest", "pulse"] and len(steps) >= 5
    durations = np.diff([t for _, t in steps])
    for kind, duration in zip(kinds[:-1], durations):
        configured = {"pulse": SPEC["gitt_pulse_s"], "rest": SPEC["gitt_rest_s"]}[kind]
        if kind == "rest" and duration < SPEC["gitt_rest_s"] - 1:   # the initial rest
            configured = SPEC["gitt_initial_rest_s"]
        assert duration == pytest.approx(configured, abs=1e-6)
    times = np.array([s.time_s for s in samples])
    assert np.diff(times).max() <= RECORD_S + 1e-6, "the electrochemistry record has a gap"


def test_the_same_seed_gives_the_same_steps_and_voltages_at_any_speed():
    _, slow_steps, slow = _run_gitt(speed=200.0, poll_wall_s=0.05)
    _, fast_steps, fast = _run_gitt(speed=5000.0, poll_wall_s=0.05)
    assert [k for k, _ in slow_steps] == [k for k, _ in fast_steps]
    slow_t0, fast_t0 = slow_steps[0][1], fast_steps[0][1]
    np.testing.assert_allclose([t - slow_t0 for _, t in slow_steps], [t - fast_t0 for _, t in fast_steps],
                               atol=1e-6)
    assert len(slow) == len(fast)
    np.testing.assert_allclose([s.time_s - slow_t0 for s in slow], [s.time_s - fast_t0 for s in fast], atol=1e-6)
    np.testing.assert_allclose([s.voltage_v for s in slow], [s.voltage_v for s in fast], atol=1e-4)
