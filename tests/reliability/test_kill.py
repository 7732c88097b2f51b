"""Reliability: a recording process killed with SIGKILL leaves a run file that opens and keeps its bins.

A real ``operascope acquire`` runs in a subprocess; a second reader watches the file grow (SWMR) and
notes when each bin count was first seen; then the process is killed with SIGKILL (no handler, no
cleanup). Every bin seen at least ~1 s before the kill must be in the file afterwards, readable by
h5py and by the analysis reader, and ``operascope analyze`` reports on it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from operascope.analysis import runfile_layout as L
from operascope.analysis.runfile import open_run

REPO = Path(__file__).resolve().parents[2]
#: The run file is flushed after every binned frame and at least every second (DESIGN.md).
FLUSH_AGE_S = 1.0


def _bins_now(path: Path) -> tuple[int, float] | None:
    """(binned frames, run time of the last one in s) in the growing file, read the way a second
    process does (SWMR), or None."""
    try:
        with h5py.File(path, "r", swmr=True, libver="latest", locking=False) as f:
            times = f[L.BINNED]["time"]
            n = int(times.shape[0])
            return n, (float(times[n - 1]) if n else float("nan"))
    except (OSError, KeyError, ValueError):
        return None


def test_sigkill_mid_run_leaves_a_file_with_every_bin_older_than_a_second(tmp_path):
    out = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, "-m", "operascope.acquisition.cli", "acquire", "--out", str(out),
                             "--duration", "100000", "--speed", "10", "--fps", "2", "--bin", "2",
                             "--protocol", "charge", "--c-rate", "1"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    first_seen: dict[int, float] = {}          # bin count -> wall time it was first seen by the reader
    last_look: tuple[float, float] = (0.0, float("nan"))   # (wall time, run time of the newest bin then)
    try:
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            now = _bins_now(out)
            if now is not None:
                first_seen.setdefault(now[0], time.monotonic())
                if now[0] >= 1:
                    last_look = (time.monotonic(), now[1])
                if now[0] >= 8:
                    break
            time.sleep(0.05)
        else:
            raise AssertionError(f"fewer than 8 bins in {out} after 60 s")
        time.sleep(2.5 * FLUSH_AGE_S)              # the run goes on; the newest bins are younger than a second
        kill_time = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    old_enough = max(n for n, seen in first_seen.items() if seen <= kill_time - FLUSH_AGE_S)
    assert old_enough >= 8

    # h5py opens the killed file (in SWMR read mode: the writer never cleared its "open for write" flag,
    # so a non-SWMR open is refused until `h5clear -s`) and every dataset reads
    with h5py.File(out, "r", swmr=True, libver="latest", locking=False) as f:
        frames = f[L.BINNED]["frames"][()]
        n_in_bin = f[L.BINNED]["n_frames_in_bin"][()]
        first_id, last_id = f[L.BINNED]["first_frame_id"][()], f[L.BINNED]["last_frame_id"][()]
        times = f[L.BINNED]["time"][()]
        echem_t = f[L.ELECTROCHEMISTRY]["time"][()]
        stop_reason = f[L.ENTRY]["stop_reason"][()]
        n_diff = f[L.DIFFERENTIAL]["frames"].shape[0]
    n = frames.shape[0]
    assert n >= old_enough
    # ... and the bins made up to ~1 s of wall time (10 s of rig time at --speed 10) before the kill:
    # the run clock at the kill is the newest bin seen plus the wall time since, times the speed
    run_time_at_kill = last_look[1] + (kill_time - last_look[0]) * 10.0
    print(f"newest bin in the file {run_time_at_kill - times[-1]:.1f} rig s before the kill")
    assert times[-1] >= run_time_at_kill - (FLUSH_AGE_S + 0.3) * 10.0
    assert n >= old_enough + 5                     # bins were made and kept after the reader last looked
    # the bins in the file are whole: real pixels, consecutive frame ids, increasing times
    assert np.isfinite(frames).all() and (frames.reshape(n, -1).mean(axis=1) > 10).all()
    assert (n_in_bin == 2).all() and (last_id - first_id == 1).all() and (first_id[1:] == last_id[:-1] + 1).all()
    assert (np.diff(times) > 0).all()
    assert n_diff >= n - 2 and echem_t.size >= 5 and (np.diff(echem_t) > 0).all()
    assert stop_reason == b""                      # never closed: nothing claims a clean end
    with open_run(out) as run:                     # the analysis reader takes it too
        assert run.n_frames == n
    from operascope.acquisition.cli import main

    assert main(["analyze", str(out), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "summary.json").is_file()
