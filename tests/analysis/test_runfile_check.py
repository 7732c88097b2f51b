"""A truncated run file is reported at once, before any frame is read (issue 14 item 7)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from operascope.acquisition.binner import BinnedFrame
from operascope.acquisition.run_writer import RunSetup, RunWriter
from operascope.analysis.errors import RunFileError
from operascope.analysis.runfile import open_run
from operascope.analysis.runfile_check import stored_eof


@pytest.mark.parametrize("fraction", [2, 10, 100, 1000])
def test_a_cut_copy_is_refused_within_a_second(tmp_path, fraction):
    path = tmp_path / "run.h5"
    writer = RunWriter(RunSetup(path=str(path), frame_shape=(400, 500), t0_s=0.0, config_toml=""))
    writer.start()
    for k in range(5):
        writer.write_binned(BinnedFrame(k, np.ones((400, 500), np.float32), 1, k, k, k, k, False, 0), 1, 1, 1)
    writer.close("done")
    data = path.read_bytes()
    assert stored_eof(path) == len(data)
    with open_run(path) as run:
        assert run.n_frames == 5
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // fraction])
    t0 = time.monotonic()
    with pytest.raises(RunFileError, match="truncated"):
        open_run(cut)
    assert time.monotonic() - t0 < 1.0
