"""``operascope repair`` after a real SIGKILL: a plain ``h5py.File(p, "r")`` opens the file afterwards,
with every bin seen more than ~1 s before the kill, end_time a valid ISO 8601 time, stop_reason "crashed"."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from operascope.acquisition.cli import main
from operascope.analysis import runfile_layout as L
from operascope.analysis.superblock import lookup3, read_superblock

REPO = Path(__file__).resolve().parents[2]
FLUSH_AGE_S = 1.0


def test_lookup3_known_values():
    # Bob Jenkins' published hashlittle values (lookup3.c driver5)
    assert lookup3(b"", 0) == 0xDEADBEEF
    assert lookup3(b"Four score and seven years ago", 0) == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161


def _bins(path: Path) -> int | None:
    try:
        with h5py.File(path, "r", swmr=True, locking=False) as f:
            return int(f[L.BINNED]["time"].shape[0])
    except (OSError, KeyError, ValueError):
        return None


def test_repair_after_sigkill_plain_h5py_opens_with_every_old_bin(tmp_path, capsys):
    out = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, "-m", "operascope.acquisition.cli", "acquire", "--out", str(out),
                             "--duration", "100000", "--speed", "10", "--fps", "2", "--bin", "2", "--save-raw",
                             "--protocol", "charge", "--c-rate", "1"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    first_seen: dict[int, float] = {}
    try:
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            n = _bins(out)
            if n is not None:
                first_seen.setdefault(n, time.monotonic())
                if n >= 6:
                    break
            time.sleep(0.05)
        else:
            raise AssertionError(f"fewer than 6 bins in {out} after 60 s")
        time.sleep(2.0 * FLUSH_AGE_S)
        kill_time = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    old_enough = max(n for n, seen in first_seen.items() if seen <= kill_time - FLUSH_AGE_S)

    assert read_superblock(out).left_open
    with pytest.raises(OSError):               # what a user without h5clear meets today
        h5py.File(out, "r").close()

    assert main(["repair", str(out)]) == 0
    said = capsys.readouterr().out
    assert "repaired" in said and "cleared superblock flags" in said and "kept rows: binned" in said

    assert not read_superblock(out).left_open
    import hdf5plugin  # noqa: F401 - raw frames are bitshuffle-lz4

    with h5py.File(out, "r") as f:             # plain open: no swmr, no locking tricks
        b = f[L.BINNED]
        n = b["frames"].shape[0]
        assert n >= old_enough
        lengths = {c.name: b[c.name].shape[0] for c in L.TABLE["binned"].columns}
        assert set(lengths.values()) == {n}
        frames = b["frames"][()]
        assert np.isfinite(frames).all() and (frames.reshape(n, -1).mean(axis=1) > 10).all()
        raw = f[L.RAW]
        assert raw["frames"].shape[0] == raw["time"].shape[0] == raw["frame_id"].shape[0] >= 2 * n - 2
        assert raw["frames"][-1].mean() > 10
        assert f[L.ENTRY][L.STOP_REASON][()] == b"crashed"
        end = dt.datetime.fromisoformat(f[L.ENTRY][L.END_TIME][()].decode())
        start = dt.datetime.fromisoformat(f[L.ENTRY][L.START_TIME][()].decode())
        assert end >= start

    assert main(["repair", str(out)]) == 0      # idempotent: a second repair changes nothing
    assert "nothing to repair" in capsys.readouterr().out


def test_repair_refuses_a_non_hdf5_file_in_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.h5"
    bad.write_text("not hdf5")
    assert main(["repair", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an HDF5 file" in err[0]
    assert bad.read_text() == "not hdf5"


def test_repair_refuses_a_file_still_being_written(tmp_path, capsys):
    from operascope.acquisition.run_lock import RunFileLock

    path = tmp_path / "live.h5"
    with h5py.File(path, "w", libver=("v110", "v110")) as f:
        f["x"] = np.arange(3)
    before = path.read_bytes()
    with RunFileLock(path):
        assert main(["repair", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"file in use by PID {os.getpid()}" in err
    assert path.read_bytes() == before
