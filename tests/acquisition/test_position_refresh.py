"""Multi-position runs with a lock target refresh: each position's image-based check corrects that
position's lock target (a wrong z offset in the list is found), and later visits keep the correction."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.acquisition.microscope import Microscope
from operascope.acquisition.positions import PositionList, StagePosition

SIM = {"speed": 10.0, "seed": 3, "z_focus_nm": 0.0, "particle_model": "uniform"}
ACQ = {"roi": (0, 150, 96, 96), "frame_rate_hz": 4.0, "bin_size": 2}
LOCK = {"calibration_range_nm": 600.0, "refresh_interval_s": 3600.0, "refresh_planes": 5,
        "refresh_step_nm": 75.0, "refresh_max_change_nm": 400.0}
# the simulated sample is flat: B's listed z offset (+150 nm) is wrong, and only its refresh can tell
PLIST = PositionList((StagePosition("A", 0.0, 0.0), StagePosition("B", 0.5, 0.3, 0.15)))


def test_each_position_refresh_corrects_its_own_lock_target_against_the_true_focus(tmp_path):
    defocus_at: dict[str, list[float]] = {"A": [], "B": []}
    with Microscope.from_config(None, simulation=SIM, acquisition=ACQ, focus_lock=LOCK) as scope:
        def watch(status):
            for position in status.positions:
                if position.state == "recording" and position.visits >= 1:   # after its first visit (refreshed)
                    defocus_at[position.name].append(scope.world.truth()["defocus_nm"])

        summary = scope.record(tmp_path / "refresh.h5", duration_s=90, positions=PLIST, dwell_bins=1, focus_lock=True,
                               progress=watch, progress_interval_s=0.05)
        corrections = dict(scope.position_schedule.target_corrections_nm)
        messages = [e.message for e in scope.events.history() if e.source == "positions"]
    assert summary.bins >= 4
    assert corrections["A"] == pytest.approx(0.0, abs=40.0)
    assert corrections["B"] == pytest.approx(-150.0, abs=40.0)
    assert any(m.startswith("position B: lock target moved") for m in messages)
    assert len(defocus_at["B"]) >= 3 and np.median(np.abs(defocus_at["B"])) < 40.0
