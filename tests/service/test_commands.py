"""Commands are validated on the engine side before anything reaches the rig."""

from __future__ import annotations

import pytest

from operascope.service.commands import CommandError, build_commands, validate


@pytest.fixture(scope="module")
def commands():
    return build_commands()


def test_a_valid_request_passes_with_its_arguments(commands):
    command, args = validate(commands, "start_recording", {"out_path": "runs/a.h5", "bin_size": 20})
    assert command.control and args == {"out_path": "runs/a.h5", "bin_size": 20}


@pytest.mark.parametrize("method, args, message", [
    ("format_disk", {}, "unknown command"),
    (None, {}, "unknown command"),
    ("status", [1, 2], "arguments must be an object"),
    ("start_recording", {}, "'out_path' is required"),
    ("start_recording", {"out_path": "a.txt"}, "ending in .h5"),
    ("start_recording", {"out_path": "a.h5", "bin_size": 0}, "integer from 1 to 10000"),
    ("start_recording", {"out_path": "a.h5", "bin_size": True}, "bin_size must be int"),
    ("start_recording", {"out_path": "a.h5", "duration_s": 1e309}, "finite number"),
    ("start_protocol", {"kind": "explode"}, "one of"),
    ("set_fiducial", {"x_px": "1", "y_px": 2}, "x_px must be"),
    ("stop_live", {"now": True}, "unknown argument 'now'"),
])
def test_bad_requests_are_one_error_naming_what_is_wrong(commands, method, args, message):
    with pytest.raises(CommandError, match=message):
        validate(commands, method, args)
