"""The lock-target refresh stays off while a multi-position schedule runs (it would step the lock while the
stage moves between fields); it may run again once the schedule stopped."""

from __future__ import annotations

from types import SimpleNamespace

from operascope.acquisition.focus_hooks import RecordFocusServices


def _services(schedule):
    services = RecordFocusServices.__new__(RecordFocusServices)   # only the gate is under test
    session = SimpleNamespace(binner=SimpleNamespace(frames_in=40, bin_size=20))
    services._scope = SimpleNamespace(position_schedule=schedule, recording=SimpleNamespace(session=session))
    return services


def test_refresh_is_gated_off_while_the_position_schedule_runs():
    running = SimpleNamespace(is_running=True)
    assert not _services(running)._single_position() and not _services(running)._may_refresh()
    stopped = SimpleNamespace(is_running=False)
    assert _services(stopped)._single_position() and _services(stopped)._may_refresh()
    assert _services(None)._single_position() and _services(None)._may_refresh()
