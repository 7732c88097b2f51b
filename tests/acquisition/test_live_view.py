"""acquisition.live_view: start is idempotent, stop ends the threads, the reference restarts on lock."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from operascope.acquisition.microscope import Microscope
from tests.fakes.rig import fake_rig_factory, small_config


def test_live_view_starts_once_and_stops():
    scope = Microscope(small_config(bin_size=2), rig_factory=fake_rig_factory(speed=20))
    with scope:
        scope.start_live()
        pipeline = scope.live.pipeline
        scope.start_live()
        assert scope.live.pipeline is pipeline and scope.is_live
        deadline = time.monotonic() + 10
        while scope.latest_frame() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert scope.latest_frame() is not None
        scope.stop_live()
        assert scope.live.pipeline is None and not scope.is_live
    assert "binner" not in {t.name for t in threading.enumerate()}


def test_reference_restarts_when_the_lock_locks_while_live_only():
    events = []
    scope = Microscope(small_config())
    scope.subscribe_events(events.append)
    locking, locked = SimpleNamespace(state="locking"), SimpleNamespace(state="locked")
    scope.live.restart_reference_when_locked(locking, locked)
    assert any("reference restarted" in e.message for e in events)
    events.clear()
    scope.live.restart_reference_when_locked(locked, locked)
    assert not events
