"""Multi-position recordings over the service: start_recording carries a position list (path or TOML text)
and dwell_bins; position_statuses is a read-only command; PositionStatus travels over the wire."""

from __future__ import annotations

import pytest

from operascope.acquisition.position_state import PositionState, PositionStatus
from operascope.acquisition.positions import PositionList, StagePosition, positions_to_toml
from operascope.service import wire
from operascope.service.commands import CommandError, build_commands, validate

PLIST = PositionList((StagePosition("A", 0.0, 0.0), StagePosition("B", 2.0, 1.0, 0.05, roi=(0, 0, 32, 32))))


class RecordingEngine:
    def __init__(self):
        self.calls = []

    def start_recording(self, out_path, **kwargs):
        self.calls.append((out_path, kwargs))

    def position_statuses(self):
        return [PositionStatus("A", PositionState.RECORDING, visits=2, bins=4, last_visit_time_s=5.0)]


@pytest.fixture(scope="module")
def commands():
    return build_commands()


def test_a_position_list_sent_as_toml_reaches_the_engine_as_the_same_list(commands):
    command, args = validate(commands, "start_recording", {"out_path": "runs/m.h5", "dwell_bins": 3,
                                                            "positions_toml": positions_to_toml(PLIST)})
    engine = RecordingEngine()
    assert command.handler(engine, **args) == "runs/m.h5"
    (_, kwargs), = engine.calls
    assert kwargs["positions"] == PLIST and kwargs["dwell_bins"] == 3


def test_a_position_list_path_is_passed_on_for_the_engine_to_load(commands):
    command, args = validate(commands, "start_recording", {"out_path": "runs/m.h5", "positions": "lists/p.toml"})
    engine = RecordingEngine()
    command.handler(engine, **args)
    assert engine.calls[0][1]["positions"] == "lists/p.toml" and engine.calls[0][1]["dwell_bins"] == 1


@pytest.mark.parametrize("args, message", [
    ({"dwell_bins": 0}, "dwell_bins"),
    ({"dwell_bins": True}, "dwell_bins"),
    ({"positions": 5}, "positions must be"),
    ({"positions_toml": ["A"]}, "positions_toml must be"),
])
def test_bad_position_arguments_are_refused_before_the_engine(commands, args, message):
    with pytest.raises(CommandError, match=message):
        validate(commands, "start_recording", {"out_path": "a.h5", **args})


def test_bad_toml_text_is_one_value_error_naming_it(commands):
    command, args = validate(commands, "start_recording", {"out_path": "a.h5", "positions_toml": "][ nope"})
    with pytest.raises(ValueError, match="positions_toml: not valid TOML"):
        command.handler(RecordingEngine(), **args)


def test_position_statuses_is_read_only_and_its_records_travel_over_the_wire(commands):
    command, args = validate(commands, "position_statuses", {})
    assert not command.control
    statuses = command.handler(RecordingEngine(), **args)
    back = wire.decode(wire.encode(statuses), wire.engine_types())
    assert back == statuses and back[0].state == "recording"
