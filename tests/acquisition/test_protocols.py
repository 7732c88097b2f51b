"""Protocol recipes and the protocol runner (against the fake cell)."""

from __future__ import annotations

import json

import numpy as np

import pytest

from operascope.acquisition.echem_history import EchemHistory
from operascope.acquisition.protocol_runner import ProtocolRunner
from operascope.acquisition.protocols import ProtocolSpec, StepOutcome, protocol_steps
from operascope.devices.base import OCV, ConstantCurrent, EchemPoint
from tests.fakes.rig import FakeCell, FastClock


def test_c_rate_current_follows_200_mAh_per_g_times_mass():
    assert ProtocolSpec("charge", active_mass_mg=1.0, c_rate=1.0).c_rate_current_a == pytest.approx(200e-6)
    assert ProtocolSpec("charge", active_mass_mg=2.5, c_rate=2.0).c_rate_current_a == pytest.approx(1e-3)
    assert ProtocolSpec("gitt", active_mass_mg=1.0).gitt_current_a == pytest.approx(10e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "charge", "v_min": 4.3, "v_max": 3.0}, "cut-offs reversed"),
    ({"kind": "boil"}, "not known"),
    ({"kind": "ocv", "duration_s": -1.0}, "duration"),
    ({"kind": "cycle", "cycles": 0}, "cycles"),
])
def test_impossible_protocols_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ProtocolSpec(**kwargs)


def test_gitt_steps_alternate_and_stop_when_a_pulse_reaches_the_cut_off():
    spec = ProtocolSpec("gitt", gitt_pulse_s=60.0, gitt_rest_s=300.0, gitt_initial_rest_s=120.0, v_max=4.3)
    gen = protocol_steps(spec)
    steps = [next(gen)]
    voltages = [3.9, 4.0, 4.0, 4.1, 4.1, 4.31, 4.31]
    try:
        for v in voltages:
            steps.append(gen.send(StepOutcome("duration", v)))
    except StopIteration:
        pass
    assert [s.kind for s in steps] == ["rest", "pulse", "rest", "pulse", "rest", "pulse", "rest"]
    assert [s.index for s in steps] == [0, 1, 2, 3, 4, 5, 6]
    assert isinstance(steps[0].technique, OCV) and steps[0].technique.duration_s == 120.0
    assert isinstance(steps[1].technique, ConstantCurrent) and steps[1].technique.duration_s == 60.0
    assert isinstance(steps[2].technique, OCV) and steps[2].technique.duration_s == 300.0
    assert json.loads(steps[1].parameters_json())["technique"] == "ConstantCurrent"


def test_gitt_without_initial_rest_starts_with_a_pulse():
    spec = ProtocolSpec("gitt", gitt_pulse_s=60.0, gitt_rest_s=300.0, gitt_initial_rest_s=0.0)
    assert next(protocol_steps(spec)).kind == "pulse"


def test_history_integrates_capacity_and_interpolates_at_mid_times():
    history = EchemHistory(active_mass_mg=1.0)
    for k in range(4):
        history.add(EchemPoint(10.0 * k, 3.7 + 0.1 * k, 2e-4, step=0))
    # 2e-4 A for 30 s on 1 mg = 6e-3 As / 3.6e-3 = 1.667 mAh/g
    assert history.latest().capacity_mAh_g == pytest.approx(30 * 2e-4 / 3.6e-3)
    v, i, q = history.at(15.0)
    assert v == pytest.approx(3.85) and i == pytest.approx(2e-4) and q == pytest.approx(15 * 2e-4 / 3.6e-3)
    assert history.at(99.0)[0] == pytest.approx(4.0)


def _run(spec, speed):
    clock = FastClock(speed)
    cell = FakeCell(clock, spec.active_mass_mg)
    history = EchemHistory(spec.active_mass_mg)
    steps = []
    runner = ProtocolRunner(cell, clock, spec, history, on_step=lambda s, t: steps.append((s, t)), poll_wall_s=0.005)
    runner.start()
    assert runner.done.wait(20.0)
    runner.stop()
    return runner, cell, history, steps


def test_charge_stops_at_the_upper_cut_off():
    spec = ProtocolSpec("charge", c_rate=2.0, v_max=4.1, record_interval_s=5.0)
    runner, cell, history, _ = _run(spec, speed=20_000.0)
    samples = history.samples()
    assert runner.end_reason == "cut-off"
    assert samples[-1].voltage_v >= 4.1 > samples[-2].voltage_v
    assert all(s.current_a == pytest.approx(4e-4) for s in samples)
    assert samples[-1].capacity_mAh_g > 50


def test_gitt_alternates_pulse_and_rest_with_the_configured_durations():
    spec = ProtocolSpec("gitt", gitt_current_ma_g=400.0, gitt_pulse_s=120.0, gitt_rest_s=240.0, v_max=4.0,
                        gitt_initial_rest_s=0.0, record_interval_s=10.0)
    runner, cell, history, steps = _run(spec, speed=5_000.0)
    kinds = [s.kind for s, _ in steps]
    assert kinds[:4] == ["pulse", "rest", "pulse", "rest"] and runner.end_reason in ("cut-off", "complete")
    starts = [t for _, t in steps]
    for k in range(len(steps) - 2):   # every completed step lasted its configured time (points every 10 s)
        expected = 120.0 if kinds[k] == "pulse" else 240.0
        assert starts[k + 1] - starts[k] == pytest.approx(expected, abs=1e-6)
    samples = history.samples()
    pulse_points = [s for s in samples if s.step % 2 == 0]
    rest_points = [s for s in samples if s.step % 2 == 1]
    assert all(s.current_a > 0 for s in pulse_points) and all(s.current_a == 0 for s in rest_points)
    assert max(s.voltage_v for s in samples) >= 4.0


def test_cycling_alternates_charge_and_discharge_between_the_cut_offs():
    spec = ProtocolSpec("cycle", c_rate=5.0, v_min=3.75, v_max=3.95, cycles=2, record_interval_s=5.0)
    runner, cell, history, steps = _run(spec, speed=20_000.0)
    assert [(s.kind, s.cycle, s.index) for s, _ in steps] == [
        ("charge", 0, 0), ("discharge", 0, 1), ("charge", 1, 2), ("discharge", 1, 3)]
    assert runner.end_reason == "cut-off"
    samples = history.samples()
    for index, limit, sign in ((0, 3.95, 1), (1, 3.75, -1), (2, 3.95, 1), (3, 3.75, -1)):
        step_samples = [s for s in samples if s.step == index]
        assert sign * (step_samples[-1].voltage_v - limit) >= 0            # ended at its cut-off
        assert all(sign * (s.voltage_v - limit) < 0 for s in step_samples[:-1])
        assert all(np.sign(s.current_a) == sign for s in step_samples)
    # capacity goes up on charge and back down on discharge
    assert samples[-1].capacity_mAh_g < max(s.capacity_mAh_g for s in samples) - 20


def test_a_failing_recording_start_reports_the_original_error(tmp_path):
    from operascope.acquisition.microscope import Microscope
    from tests.fakes.rig import fake_rig_factory, small_config

    with Microscope(small_config(), rig_factory=fake_rig_factory()) as scope:
        with pytest.raises(FileNotFoundError, match="does not exist"):
            scope.record(tmp_path / "missing" / "run.h5", duration_s=5.0)
        assert not scope.is_live and not scope.is_recording


def test_history_grows_past_its_initial_capacity_and_returns_points_from_an_index():
    history = EchemHistory(active_mass_mg=2.0, initial_capacity=4)
    for k in range(11):
        history.add(EchemPoint(float(k), 3.5 + 0.01 * k, 1e-4, step=k // 5, cycle=0))
    assert len(history) == 11 and history.latest().step == 2
    tail = history.samples(8)
    assert [s.time_s for s in tail] == [8.0, 9.0, 10.0] and tail[0].voltage_v == pytest.approx(3.58)
    # 1e-4 A for 10 s on 2 mg = 1e-3 As / 7.2e-3 = 0.1389 mAh/g
    assert history.latest().capacity_mAh_g == pytest.approx(1e-3 / 7.2e-3)
    assert history.at(4.5)[0] == pytest.approx(3.545)
