"""acquisition.pipeline: typed markers, begin() waits on an event, loops on Worker."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from operascope.acquisition.pipeline import Begin, BinReady, End, Quit
from operascope.acquisition.protocol_kinds import PROTOCOL_KINDS, ProtocolKind
from operascope.acquisition.focus_lock import FOCUS_STATES, FocusState
from operascope.analysis import runfile_layout
from operascope.devices.base import ROLES


def test_markers_are_frozen_dataclasses():
    for marker in (Begin(session=None), End(session=None), BinReady(None, None), Quit()):
        assert dataclasses.is_dataclass(marker)
        field_names = [f.name for f in dataclasses.fields(marker)]
        if field_names:
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(marker, field_names[0], 1)


def test_state_enums_keep_the_stored_strings():
    assert FOCUS_STATES == runfile_layout.FOCUS_STATES
    assert FocusState.LOCKED == "locked" and str(FocusState.LOCKED) == "locked"
    assert PROTOCOL_KINDS == ("ocv", "charge", "discharge", "cycle", "gitt")
    assert str(ProtocolKind.GITT) == "gitt"
    assert ROLES == ("camera", "stage", "led", "focus_laser", "focus_sensor", "potentiostat")


def test_recording_start_and_stop_through_the_pipeline(tmp_path):
    from operascope.acquisition.microscope import Microscope

    with Microscope.from_config(None, speed=20, roi=(0, 0, 64, 64)) as scope:
        scope.start_live()
        names = {t.name for t in threading.enumerate()}
        assert {"binner", "differential", "camera-capture"} <= names
        scope.start_recording(tmp_path / "r.h5", bin_size=2)
        assert scope.status().state == "recording"
        summary = scope.stop_recording()
        status = scope.status()
        assert status.state == "live"
        assert status.bins_written == summary.bins and status.writer_queue_depth == 0
