"""acquisition.record_loop: the one-call recording's argument checks and ordered stop."""

from __future__ import annotations

import pytest

from operascope.acquisition.microscope import Microscope
from tests.fakes.rig import fake_rig_factory, small_config


def test_record_needs_a_duration_or_a_protocol(tmp_path):
    with Microscope(small_config(), rig_factory=fake_rig_factory(speed=20)) as scope:
        with pytest.raises(ValueError, match="duration_s, a protocol"):
            scope.record(tmp_path / "r.h5")
        assert not (tmp_path / "r.h5").exists()


def test_record_stops_in_order_and_leaves_the_engine_idle(tmp_path):
    statuses = []
    with Microscope(small_config(bin_size=2), rig_factory=fake_rig_factory(speed=20)) as scope:
        summary = scope.record(tmp_path / "r.h5", duration_s=2.0, progress=statuses.append)
        assert summary.stop_reason == "duration reached" and summary.bins >= 1
        assert scope.status().state == "idle" and not scope.is_live and not scope.protocols.is_running
    assert statuses and statuses[-1].bins_written == summary.bins
