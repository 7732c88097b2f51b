"""acquisition.engine_commands: plain-data stage, illumination, clock and note commands."""

from __future__ import annotations

import pytest

from operascope.acquisition.microscope import Microscope
from tests.fakes.rig import fake_rig_factory, small_config


def test_commands_need_an_open_rig():
    with pytest.raises(RuntimeError, match="not open"):
        Microscope(small_config()).stage_position_nm()


def test_stage_and_illumination_commands_return_plain_data():
    events = []
    with Microscope.from_config(None, speed=20, roi=(0, 0, 32, 32)) as scope:
        scope.subscribe_events(events.append)
        position = scope.stage_position_nm()
        assert isinstance(position, dict) and set(position) >= {"x", "y", "z"}
        scope.move_stage_nm({"x": position["x"] + 100.0})
        scope.halt_stage()
        led = scope.set_led(current_a=0.2)
        assert led.enabled and led == scope.set_led()
        laser = scope.set_laser(on=False)
        assert not laser.enabled
        assert scope.clock_s() > 0 and scope.clock_speed() == pytest.approx(20.0)
        assert scope.echem_samples() == []
        scope.note("hello", source="gui", level="warning")
    assert any(e.message == "hello" and e.source == "gui" and e.level == "warning" for e in events)
