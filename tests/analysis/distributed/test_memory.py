"""Constant memory: a run larger than 2x the memory allowed to the analysis is analysed with the growth of
RSS (peak minus before the analysis, in a fresh process) under that limit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


from operascope.analysis.distributed.synthetic_large import make_large_run

LIMIT_MB = 56
PROBE = r"""
import json, sys
import numpy as np, h5py, scipy.ndimage, dask, dask.threaded
from operascope.analysis.distributed.graph import AnalysisSettings, run_graph
from operascope.analysis.distributed.runner import compute
def status_mb(field):
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith(field)) / 1024
before = status_mb("VmRSS")
(result,) = compute([run_graph(sys.argv[1], AnalysisSettings(chunk_bins=8))], workers=2)
peak = status_mb("VmHWM")   # this process's peak RSS (ru_maxrss would include the parent's, from before exec)
print(json.dumps({"before_mb": before, "peak_mb": peak, "n_particles": len(result.plan.particles),
                  "n_finite": int(np.isfinite(result.com_nm).sum()), "n_frames": result.plan.n_frames}))
"""


def _growth_mb(path: Path) -> tuple[float, dict]:
    done = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report["peak_mb"] - report["before_mb"], report


def test_run_larger_than_twice_the_limit_is_analysed_within_it(tmp_path: Path) -> None:
    path = make_large_run(tmp_path / "large.h5", n_frames=120, shape=(512, 512))   # 120 MiB of frames
    size_mb = path.stat().st_size / 2**20
    assert size_mb > 2 * LIMIT_MB
    growth_mb, report = _growth_mb(path)
    path.unlink()   # do not leave 120 MiB in pytest's kept temporary folders
    assert report["n_frames"] == 120 and report["n_particles"] == 3
    assert report["n_finite"] > 100
    assert growth_mb < LIMIT_MB, f"analysis grew RSS by {growth_mb:.0f} MB for a {size_mb:.0f} MB run"
    # and independent of run length: a run 6x shorter needs about the same
    short = make_large_run(tmp_path / "short.h5", n_frames=20, shape=(512, 512))
    short_growth_mb, _ = _growth_mb(short)
    short.unlink()
    assert growth_mb - short_growth_mb < 10.0, (growth_mb, short_growth_mb)
