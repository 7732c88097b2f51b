"""The wire format: typed engine data round-trips; hostile input is refused, never unpickled."""

from __future__ import annotations

import json

import numpy as np
import pytest

from operascope.acquisition.events import Event
from operascope.acquisition.live_differential import DifferentialFrame
from operascope.devices.base import Frame
from operascope.service import wire


def test_frames_differentials_and_events_round_trip_with_their_types():
    frame = Frame(np.arange(12, dtype=np.uint16).reshape(3, 4), 7, 123_456, 1.5)
    diff = DifferentialFrame(2, 3.0, np.array([[np.nan, 0.01]], dtype=np.float32), 0.1, -0.2, True)
    event = Event(1.0, "warning", "engine", "ünïcode ok")
    back = wire.decode(wire.encode({"items": [frame, diff, event], "nan": float("nan")}), wire.engine_types())
    f, d, e = back["items"]
    assert isinstance(f, Frame) and f.frame_id == 7 and f.pixels.dtype == np.uint16
    np.testing.assert_array_equal(f.pixels, frame.pixels)
    assert isinstance(d, DifferentialFrame) and np.isnan(d.pixels[0, 0]) and d.pixels.dtype == np.float32
    assert e == event
    assert np.isnan(back["nan"])


def test_unknown_types_stay_plain_dicts():
    plain = wire.decode([json.dumps({"__dc__": "os.system", "cmd": "rm"}).encode()], wire.engine_types())
    assert plain == {"cmd": "rm"}


@pytest.mark.parametrize("frames, message", [
    ([b"\xff\xfe"], "not a JSON"),
    ([b'{"__nd__": 0, "dtype": "object", "shape": [1]}', b"x"], "malformed array"),
    ([b'{"__nd__": 0, "dtype": "uint16", "shape": [4]}', b"xx"], "header says"),
    ([b'{"__nd__": 3, "dtype": "uint16", "shape": [1]}'], "malformed array"),
    ([], "empty"),
])
def test_malformed_messages_are_wire_errors(frames, message):
    with pytest.raises(wire.WireError, match=message):
        wire.decode(frames)


def test_an_oversized_header_is_refused():
    with pytest.raises(wire.WireError, match="at most"):
        wire.decode([b" " * (wire.MAX_HEADER_BYTES + 1)])


def test_objects_without_a_wire_form_are_refused_on_the_sending_side():
    with pytest.raises(TypeError, match="cannot send a"):
        wire.encode(object())
