"""Reliability item 5: stage faults are refused or stopped, never retried blindly.

On the simulated stage and on the real AttocubeStage driver against the AMC100 emulator:
end-of-travel stops the axis and is reported (no automatic retry); a target outside the soft
limits is refused before anything is sent; a lost link is DeviceLost, and after reconnecting
the driver holds the axes where they are instead of resuming (or re-sending) the lost move.

Already shown elsewhere (not repeated here): soft limits refused before moving on the simulated
stage (tests/test_sim_devices.py::test_stage_soft_limits_refuse_before_moving), on the driver
with the emulator counting requests (tests/test_driver_attocube.py::
test_out_of_range_target_refused_before_sending), EndOfTravel raised by the driver
(test_driver_attocube.py::test_end_of_travel), simulated stage faults raising their typed errors
(tests/test_sim_faults.py::test_stage_faults).
"""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operascope.config.loader import load_config
from operascope.devices.attocube import AttocubeStage
from operascope.devices.base import DeviceLost, EndOfTravel, OutOfRange
from operascope.simulators.emulators.amc100 import Amc100Server
from operascope.simulators.devices.backends import build_simulated_devices
from operascope.simulators.world.world import World
from tests.fakes.sim_world import make_world, open_devices

AMC = "com.attocube.amc."
TARGET = AMC + "move.setControlTargetPosition"


def wait_for(predicate, timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class MoveSpy:
    """Records every target the World's stage is told to move to (what the motors really do)."""

    def __init__(self, world: World) -> None:
        self.targets: list[tuple[str, float]] = []
        original = world.stage_move

        def spy(axis: str, target_nm: float) -> None:
            self.targets.append((axis, float(target_nm)))
            original(axis, target_nm)

        world.stage_move = spy  # type: ignore[method-assign]


# --------------------------------------------------------------------------- simulated stage


def test_sim_end_of_travel_mid_move_stops_the_axis_where_it_is_and_nothing_resumes():
    world = make_world(speed=1.0, stage_speed_nm_s=20_000.0, stage_noise_nm=0.0, drift_noise_nm=0.0)
    stage = open_devices(world)["stage"]
    x = stage.axis("x")
    spy = MoveSpy(world)
    x.move_to(40_000.0)  # 2 s of travel
    world.clock.sleep_s(0.1)
    world.inject_fault("stage", "end_of_travel")
    with pytest.raises(EndOfTravel, match="end-of-travel"):
        x.move_to(42_000.0)
    stopped_at = x.position_nm()
    assert 0.0 < stopped_at < 40_000.0  # halted part way, not at either target
    assert not x.is_moving() and x.target_nm() == pytest.approx(stopped_at, abs=1e-6)
    world.clock.sleep_s(0.3)  # 6 µm of travel at full speed, had it not stopped
    assert x.position_nm() == pytest.approx(stopped_at, abs=1e-6)
    assert spy.targets == [("x", 40_000.0)]  # the refused move was never sent to the motor, nor retried
    x.move_to(1_000.0)  # an explicit new command works again
    assert x.wait_settled(timeout_s=5.0) == pytest.approx(1_000.0, abs=1.0)


def test_sim_link_loss_is_device_lost_and_the_lost_command_never_runs_later():
    world = make_world(speed=1.0, stage_noise_nm=0.0, drift_noise_nm=0.0)
    stage = open_devices(world)["stage"]
    z = stage.axis("z")
    z.move_to(500.0)
    z.wait_settled(timeout_s=2.0)
    spy = MoveSpy(world)
    world.inject_fault("stage", "link_loss", duration_s=0.2)
    with pytest.raises(DeviceLost):
        z.move_to(3_000.0)
    with pytest.raises(DeviceLost):  # still lost: every call says so, nothing is queued
        z.position_nm()
    world.clock.sleep_s(0.25)
    with pytest.raises(DeviceLost):  # the window passed, but the link stays down until reconnect()
        z.move_to(3_000.0)
    stage.reconnect()
    assert z.position_nm() == pytest.approx(500.0, abs=1.0) and z.target_nm() == 500.0
    assert spy.targets == []


@settings(max_examples=60, deadline=None, derandomize=True)
@given(target=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-2_000.0, 2_000.0)),
       axis=st.sampled_from(["x", "y", "z"]))
def test_sim_any_target_is_either_inside_the_soft_limits_or_refused_before_moving(target, axis):
    world = make_world(speed=1000.0, stage_limits_nm=(-1_000.0, 1_000.0))
    stage = open_devices(world)["stage"]
    spy = MoveSpy(world)
    inside = math.isfinite(target) and -1_000.0 <= target <= 1_000.0
    if inside:
        stage.move_to(**{axis: target})
        assert spy.targets == [(axis, target)]
    else:
        with pytest.raises(OutOfRange, match="soft limits"):
            stage.move_to(**{axis: target})
        assert spy.targets == [] and stage.axis(axis).target_nm() == 0.0


# --------------------------------------------------------------------------- AMC100 emulator + driver


@pytest.fixture
def emulated():
    world = World(load_config(overrides={"simulation": {"stage_noise_nm": 0.0, "drift_noise_nm": 0.0,
                                                         "stage_speed_nm_s": 20_000.0}}))
    server = Amc100Server(build_simulated_devices(world)["stage"], "127.0.0.1", 0)
    server.start()
    host, port = server.address
    stage = AttocubeStage(host=host, port=port, timeout_s=0.5, output_settle_s=0.0)
    yield world, server, stage
    stage.close()
    server.stop()


def _sent_after(server: Amc100Server, count_before: int) -> list[str]:
    new = server.request_count - count_before
    return list(server.request_log)[-new:] if new > 0 else []


def test_driver_end_of_travel_is_reported_and_never_retried(emulated):
    world, server, stage = emulated
    with stage:
        y = stage.axis("y")
        spy = MoveSpy(world)
        world.inject_fault("stage", "end_of_travel")
        before = server.request_count
        y.move_to(2_000.0)
        with pytest.raises(EndOfTravel, match="end of travel"):
            y.wait_settled(timeout_s=2.0, poll_s=0.01)
        for _ in range(5):  # polling again reports it again; nobody re-sends the move
            with pytest.raises(EndOfTravel):
                y.is_moving()
        sent = _sent_after(server, before)
        assert sent.count(TARGET) == 1, sent
        assert spy.targets == []  # the motor never started
        here = world.stage_position_nm("y")
        time.sleep(0.2)
        assert world.stage_position_nm("y") == pytest.approx(here, abs=1e-6)
        y.move_to(-1_000.0)  # an explicit command back inside the range clears it
        assert y.wait_settled(timeout_s=2.0, poll_s=0.01) == pytest.approx(-1_000.0, abs=10.0)


@given(target=st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -5_000.001, 5_000.001]),
                        st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not -5_000 <= v <= 5_000)))
@settings(max_examples=25, deadline=None, derandomize=True)
def test_driver_targets_outside_soft_limits_send_nothing(target):
    world = World(load_config(overrides={"simulation": {"stage_noise_nm": 0.0}}))
    with Amc100Server(build_simulated_devices(world)["stage"], "127.0.0.1", 0) as server:
        host, port = server.address
        limits = {a: (-5_000.0, 5_000.0) for a in "xyz"}
        with AttocubeStage(host=host, port=port, timeout_s=0.5, output_settle_s=0.0, limits_nm=limits) as stage:
            before = server.request_count
            with pytest.raises(OutOfRange):
                stage.move_to(x=100.0, z=target)  # x is fine, but nothing moves unless every target is
            with pytest.raises(OutOfRange):
                stage.axis("z").move_to(target)
            assert server.request_count == before


def test_driver_link_lost_mid_command_does_not_resume_the_lost_move_after_reconnect(emulated):
    """The controller was told z → 20 µm as it lost its motors: after reconnect() the axis
    must hold where it is, not drive on to the target of a command the caller saw fail."""
    world, server, stage = emulated
    with stage:
        z = stage.axis("z")
        spy = MoveSpy(world)
        world.inject_fault("stage", "device_lost", duration_s=0.2)
        with pytest.raises(DeviceLost):
            z.move_to(20_000.0)
        assert not stage.is_connected
        time.sleep(0.25)
        stage.reconnect()
        time.sleep(0.3)
        assert abs(world.stage_position_nm("z")) < 50.0, world.stage_position_nm("z")
        assert all(abs(target) < 50.0 for axis, target in spy.targets), spy.targets
        assert abs(z.target_nm()) < 50.0


def test_driver_implicit_reconnect_does_not_resume_the_lost_move(emulated):
    """Same, through the driver's one automatic reconnect on the next call (a position read)."""
    world, server, stage = emulated
    with stage:
        z = stage.axis("z")
        spy = MoveSpy(world)
        world.inject_fault("stage", "device_lost", duration_s=0.2)
        with pytest.raises(DeviceLost):
            z.move_to(20_000.0)
        time.sleep(0.25)
        assert abs(z.position_nm()) < 50.0  # reconnects by itself
        time.sleep(0.3)
        assert abs(world.stage_position_nm("z")) < 50.0, world.stage_position_nm("z")
        assert not any(abs(target) > 50.0 for axis, target in spy.targets), spy.targets
        z.move_to(1_000.0)  # a new explicit command moves
        assert z.wait_settled(timeout_s=2.0, poll_s=0.01) == pytest.approx(1_000.0, abs=10.0)


def test_driver_socket_drop_during_a_move_stops_it_and_reconnect_holds(emulated):
    """The TCP link drops while z travels: on reconnect the axis is held where it is then
    (the controller's stale target is not driven to behind the caller's back)."""
    world, server, stage = emulated
    with stage:
        z = stage.axis("z")
        z.move_to(20_000.0)  # 1 s of travel
        time.sleep(0.1)
        server.drop_connections()
        with pytest.raises(DeviceLost):
            z.position_nm()
        stage.reconnect()
        held = z.target_nm()
        assert 0.0 < held < 20_000.0
        time.sleep(0.5)
        assert world.stage_position_nm("z") == pytest.approx(held, abs=50.0)
