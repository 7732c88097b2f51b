"""Lock faults during a recording: never silent, never the end of the data unless asked."""

from __future__ import annotations

import pytest

from operascope.acquisition.lock_faults import LockFaultMonitor
from operascope.acquisition.microscope import Microscope


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def now_s(self) -> float:
        return self.t


def monitor(reaction: str, states: list[str], **kwargs):
    clock, events, calls = Clock(), [], []
    state = {"now": "locked"}
    mon = LockFaultMonitor(lambda: state["now"], clock.now_s, lambda level, msg: events.append((level, msg)), reaction,
                           request_stop=lambda why: calls.append(("stop", why)),
                           recentre=lambda: calls.append(("recentre", "")), t0_s=100.0, **kwargs)
    for name in states:        # one poll per virtual second
        clock.t += 1.0
        state["now"] = name
        if name == "fault":
            mon.note_event("error", "window exceeded")
        mon.poll()
    return mon, events, calls


def test_unlocked_time_and_faults_are_counted_and_reported_loudly():
    mon, events, calls = monitor("continue", ["locked", "fault", "fault", "fault", "locking", "locked", "lost", "locked"])
    assert [t for t, _ in mon.summary.faults] == [2.0]
    assert mon.summary.faults[0][1] == "window exceeded"
    assert mon.summary.unlocked_s == pytest.approx(4.0)     # 3 s in fault + 1 s lost
    assert calls == []
    assert any(level == "error" and "FOCUS LOCK FAULT at run time 2.0 s" in msg and "continues" in msg
               for level, msg in events)
    assert "1 fault(s), unlocked 4 s" in mon.summary.text()


def test_stop_and_recentre_reactions():
    _, _, calls = monitor("stop", ["locked", "fault"])
    assert calls == [("stop", "focus lock fault at 2 s (window exceeded)")]
    mon, _, calls = monitor("recentre", ["fault", "locked", "fault"])
    assert calls == [("recentre", ""), ("recentre", "")] and mon.summary.recentred == 2
    with pytest.raises(ValueError, match="on_fault 'panic'"):
        LockFaultMonitor(lambda: "locked", Clock().now_s, lambda *a: None, "panic")


def faulting_scope(on_fault: str) -> Microscope:
    """Stress drift (40 nm/s) against an 800 nm window: the lock faults about 20 s in."""
    return Microscope.from_config(None, simulation={
        "speed": 10.0, "seed": 2, "drift_z_nm_s": 40.0, "particle_model": "uniform"},
        acquisition={"roi": (0, 150, 96, 96)},
        focus_lock={"window_nm": 800.0, "calibration_range_nm": 600.0, "on_fault": on_fault})


def test_a_fault_never_ends_the_recording_and_is_in_the_summary(tmp_path):
    with faulting_scope("continue") as scope:
        summary = scope.record(tmp_path / "run.h5", duration_s=45.0, focus_lock=True)
        events = [e.message for e in scope.events.history()]
    assert summary.stop_reason.startswith("duration reached; focus lock fault at")
    assert summary.duration_s >= 45.0 and summary.bins >= 20
    assert len(summary.focus_faults) == 1 and "travel window" in summary.focus_faults[0]
    assert 5.0 < summary.focus_unlocked_s < 45.0
    assert any(m.startswith("FOCUS LOCK FAULT") for m in events)


def test_on_fault_stop_ends_the_run_with_the_fault_as_reason(tmp_path):
    with faulting_scope("stop") as scope:
        summary = scope.record(tmp_path / "run.h5", duration_s=120.0, focus_lock=True)
    assert summary.stop_reason.startswith("focus lock fault at")
    assert summary.duration_s < 60.0 and summary.bins >= 5


def test_record_runs_the_scheduled_refresh_and_reports_each_one(tmp_path):
    with Microscope.from_config(None, simulation={"speed": 10.0, "seed": 1, "particle_model": "uniform"},
                                acquisition={"roi": (0, 150, 96, 96), "bin_size": 5},
                                focus_lock={"calibration_range_nm": 600.0, "refresh_interval_s": 10.0}) as scope:
        summary = scope.record(tmp_path / "run.h5", duration_s=40.0, focus_lock=True)
        refreshes = [e.message for e in scope.events.history() if e.source == "focus_refresh"]
    assert summary.stop_reason == "duration reached" and summary.focus_faults == ()
    assert len(refreshes) >= 2
    assert all(m.startswith("focus refresh: offset") for m in refreshes)
