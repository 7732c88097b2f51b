"""acquisition.protocol_service: protocols built from the config in one place."""

from __future__ import annotations

import pytest

from operascope.acquisition.microscope import Microscope
from operascope.acquisition.protocols import ProtocolRequest, ProtocolSpec
from tests.fakes.rig import small_config


def test_specs_come_from_the_config_kind_names_requests_and_specs():
    scope = Microscope(small_config())
    ec = scope.config.electrochemistry
    charge = scope.make_protocol("charge")
    assert charge.kind == "charge" and charge.c_rate == ec.c_rate and charge.v_max == ec.v_max
    assert charge.active_mass_mg == scope.config.sample.active_mass_mg
    assert scope.make_protocol("ocv", duration_s=5.0).duration_s == 5.0
    request = scope.make_protocol(ProtocolRequest("discharge", c_rate=2.0, v_min=3.1, v_max=4.0))
    assert (request.kind, request.c_rate, request.v_min) == ("discharge", 2.0, 3.1)
    assert request.record_interval_s == ec.record_interval_s
    assert scope.make_protocol(charge) is charge and isinstance(charge, ProtocolSpec)


def test_a_request_is_checked_where_it_is_made():
    with pytest.raises(ValueError, match="not known"):
        ProtocolRequest("boil")
    with pytest.raises(ValueError, match="below v_max"):
        ProtocolRequest("charge", v_min=4.0, v_max=3.0)


def test_protocols_need_an_open_rig():
    with pytest.raises(RuntimeError, match="not open"):
        Microscope(small_config()).start_protocol("charge")
