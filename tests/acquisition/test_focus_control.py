"""acquisition.focus_control: stored state values and the averaging of profile measurements."""

from __future__ import annotations

import math

from operascope.acquisition.focus_control import FOCUS_STATES, FocusState, bad_measurement, mean_of_good
from operascope.analysis.focus_signal import ProfileMeasurement


def _good(position_px: float) -> ProfileMeasurement:
    return ProfileMeasurement(position_px, 10.0, 5.0, 3.0, 0.1, 50.0, False, True)


def test_states_keep_their_stored_order_and_values():
    assert FOCUS_STATES == ("off", "calibrating", "locking", "locked", "lost", "reacquiring", "fault")
    assert FocusState("lost") is FocusState.LOST


def test_mean_of_good_needs_half_good():
    bad = bad_measurement("no line")
    assert mean_of_good([_good(10.0), _good(12.0), bad]).position_px == 11.0
    assert mean_of_good([_good(10.0), bad, bad]) is bad
    assert not bad.ok and math.isnan(bad.position_px) and bad.reason == "no line"
