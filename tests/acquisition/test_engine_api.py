"""EngineAPI: the Microscope facade provides every member of the typed public surface."""

from __future__ import annotations

import inspect

from operascope.acquisition.engine_api import EngineAPI
from operascope.acquisition.microscope import Microscope


def test_microscope_provides_every_engine_api_member_with_the_same_parameters():
    members = [name for name in dir(EngineAPI) if not name.startswith("_")]
    assert {"status", "start_recording", "stop_recording", "subscribe_events", "latest_frame"} <= set(members)
    for name in members:
        api_member = inspect.getattr_static(EngineAPI, name)
        impl = inspect.getattr_static(Microscope, name)
        if isinstance(api_member, property):
            assert isinstance(impl, property), name
            continue
        api_params = list(inspect.signature(api_member).parameters)
        impl_params = list(inspect.signature(impl).parameters)
        assert impl_params[: len(api_params)] == api_params, name


def test_an_open_microscope_is_an_engine_api_instance():
    scope = Microscope.from_config(None, speed=20, roi=(0, 0, 32, 32))
    assert isinstance(scope, EngineAPI)
