"""The gating check of a multi-position run file (analysis/visit_gating.py) finds a bin holding a frame exposed
before its visit's focus was back, and passes a clean file."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.acquisition.binner import BinnedFrame
from operascope.acquisition.position_state import Visit
from operascope.acquisition.positions import PositionList, StagePosition
from operascope.acquisition.run_writer import RunSetup, RunWriter
from operascope.analysis.visit_gating import frames_before_focus
from operascope.devices.base import Frame

PLIST = PositionList((StagePosition("A", 0.0, 0.0), StagePosition("B", 5.0, 0.0)))
T0_S = 100.0


def _write(path, first_frame_of_b: int) -> None:
    """Frames 0..19 exposed at 100.0, 100.5, ... s; visit A focus back at 100.4 s (bins frames 1-4), visit B
    focus back at 103.4 s (bins frames ``first_frame_of_b``..+3)."""
    writer = RunWriter(RunSetup(path=str(path), frame_shape=(4, 4), t0_s=T0_S, config_toml="", save_raw=True,
                                camera={"exposure_time": 2.0, "frame_rate": 2.0}, sample={}, positions=PLIST))
    writer.start()
    for k in range(20):
        writer.write_raw(Frame(np.zeros((4, 4), np.uint16), k, int((T0_S + 0.5 * k) * 1e9), T0_S + 0.5 * k + 0.1))
    writer.write_visit(Visit(T0_S, 0, T0_S + 0.3, T0_S + 0.4, T0_S + 2.6, 1))
    writer.write_visit(Visit(T0_S + 2.6, 1, T0_S + 3.3, T0_S + 3.4, T0_S + 6.0, 1))
    for index, (name, first, visit) in enumerate((("A", 1, 0), ("B", first_frame_of_b, 1))):
        binned = BinnedFrame(index, np.zeros((4, 4), np.float32), 4, first, first + 3, 0.0, 0.0, False, 0)
        writer.write_binned(binned, 3.9, 0.0, 0.0, position=name, visit_index=visit)
    writer.close("done")


def test_a_clean_file_passes(tmp_path):
    _write(tmp_path / "ok.h5", first_frame_of_b=7)     # frame 7 exposed at 103.5 s > 103.4 s
    result = frames_before_focus(tmp_path / "ok.h5")
    assert result == {"bins": 2, "bad_bins": 0, "worst_s": 0.0, "frames_checked": 8, "frames_missing": 0}


def test_a_frame_exposed_while_moving_is_found(tmp_path):
    _write(tmp_path / "bad.h5", first_frame_of_b=5)    # frame 5 exposed at 102.5 s, during the move to B
    result = frames_before_focus(tmp_path / "bad.h5")
    assert result["bad_bins"] == 1 and result["worst_s"] == pytest.approx(0.9)


def test_a_file_without_raw_frames_is_refused(tmp_path):
    path = tmp_path / "noraw.h5"
    writer = RunWriter(RunSetup(path=str(path), frame_shape=(4, 4), t0_s=T0_S, config_toml="", camera={},
                                sample={}, positions=PLIST))
    writer.start()
    writer.close("done")
    with pytest.raises(ValueError, match="raw frames"):
        frames_before_focus(path)
