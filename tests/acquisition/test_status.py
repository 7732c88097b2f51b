"""acquisition.status: EngineState values and the snapshot of a closed/open engine."""

from __future__ import annotations

import math

from operascope.acquisition.microscope import Microscope
from operascope.acquisition.status import EngineState
from tests.fakes.rig import fake_rig_factory, small_config


def test_states_are_str_enums_with_the_shown_values():
    assert [str(s) for s in EngineState] == ["closed", "idle", "live", "recording"]
    assert EngineState.LIVE == "live"


def test_status_of_closed_and_idle_engine():
    scope = Microscope(small_config(), rig_factory=fake_rig_factory(speed=20))
    closed = scope.status()
    assert closed.state is EngineState.CLOSED and closed.frames_in == 0 and math.isnan(closed.voltage_v)
    with scope:
        idle = scope.status()
        assert idle.state is EngineState.IDLE and idle.focus_state == "off" and idle.error is None
