"""Issue 15 item 4: a week in focus — 7 virtual days of the DEFAULT drift, recorded with the lock on.

Only the lock and the drift are real: the camera takes one 16x16 frame every 500 s (bin size 1), the
lock runs at 0.01 Hz, the cell and particle models step coarsely, the clock runs at 25 000x (a week
in ~25 s wall; calibration included).
"""

from __future__ import annotations

import time

import h5py
import numpy as np

from operascope.acquisition.microscope import Microscope
from operascope.config.schema import DRIFT_Z_PRESETS_NM_S, FocusLockConfig, SimulationConfig

WEEK_S = 7 * 86_400.0
FRAME_PERIOD_S = 500.0
RUN_SPEED = 25_000.0


def test_seven_virtual_days_of_default_drift_no_fault_recording_complete(tmp_path):
    # the defaults under test: the "physical" drift preset and the default window / drift budget
    assert SimulationConfig().drift_z_nm_s == DRIFT_Z_PRESETS_NM_S["physical"] == 0.05
    defaults = FocusLockConfig()
    assert defaults.window_nm == 5000.0 and DRIFT_Z_PRESETS_NM_S["physical"] * WEEK_S > 5 * defaults.window_nm
    events: list[str] = []
    with Microscope.from_config(
        None,
        simulation={"speed": 50.0, "seed": 4, "particle_model": "uniform", "cell_max_step_s": 600.0,
                    "particle_step_s": 3600.0},
        acquisition={"roi": (0, 150, 16, 16), "bin_size": 1, "frame_rate_hz": 1.0 / FRAME_PERIOD_S,
                     "read_timeout_s": 600.0, "drift_correction": False},
        electrochemistry={"record_interval_s": 600.0},
        focus_lock={"rate_hz": 0.01, "calibration_reads": 3, "calibration_settle_s": 0.0},
    ) as scope:
        scope.clock.speed = RUN_SPEED     # above the config's 10 000 cap: the virtual clock takes any speed
        started_wall_s = time.monotonic()
        scope.subscribe_events(lambda e: events.append(f"{e.level} {e.source}: {e.message}"))
        z0 = scope.rig.stage.axis("z").position_nm()
        summary = scope.record(tmp_path / "week.h5", duration_s=WEEK_S, focus_lock=True)
        wall_s = time.monotonic() - started_wall_s
        z_end = scope.rig.stage.axis("z").position_nm()
    text = "\n".join(events)
    print(f"week: {wall_s:.1f} s wall, z moved {z_end - z0:.0f} nm, bins {summary.bins}, stop: {summary.stop_reason}")
    assert summary.stop_reason == "duration reached", text
    assert summary.focus_faults == () and "FOCUS LOCK FAULT" not in text
    assert summary.duration_s >= WEEK_S
    # recording complete: every frame taken was binned and written (bin size 1), no id gaps, no partial bin;
    # the bins span the week (frames of the first seconds go to the live view before the file opens)
    assert summary.frames_dropped == 0 and summary.partial_bins == 0 and summary.errors == ()
    assert summary.bins == summary.frames_binned == summary.frames_in >= 0.8 * WEEK_S / FRAME_PERIOD_S, summary
    # the lock followed ~30 µm of drift by re-centring its ±5 µm window, each time an event
    assert z_end - z0 > 0.8 * DRIFT_Z_PRESETS_NM_S["physical"] * WEEK_S
    recentred = [line for line in events if "travel window re-centred" in line]
    print(f"window re-centred {len(recentred)} times")
    assert len(recentred) >= 5, text
    # the TRUE defocus (simulation truth stored with the frames) stays on one plane all week
    with h5py.File(tmp_path / "week.h5", "r") as fh:
        names: list[str] = []
        fh.visit(names.append)
        truth_name = next(n for n in names if n.endswith("defocus_nm"))
        defocus_nm = np.asarray(fh[truth_name][()], dtype=float)
    defocus_nm = defocus_nm[np.isfinite(defocus_nm)]
    print(f"true defocus over the week: mean {defocus_nm.mean():.1f} nm, SD {defocus_nm.std():.1f} nm, "
          f"max |dev| {np.max(np.abs(defocus_nm - defocus_nm.mean())):.1f} nm ({defocus_nm.size} samples)")
    assert defocus_nm.size >= 100
    assert defocus_nm.std() < 30.0 and abs(defocus_nm.mean()) < 300.0
    assert np.isfinite(wall_s) and wall_s < 60.0
