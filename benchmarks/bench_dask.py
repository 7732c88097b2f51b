"""Benchmark the Dask analysis path (issue 18): bins/s of one run for

* the serial path (``operascope analyze`` = :func:`operascope.analysis.report.analyze_run`, whole report),
* the Dask graph on the local threaded scheduler with 1 and 2 workers,
* the Dask graph on a dask.distributed LocalCluster of 2 worker processes,

each as a ratio to the serial path and to the I/O floor (reading every bin once, full frames, from the same
file; it is in the page cache after being written, so this is a memory-bandwidth floor), and the scaling
efficiency (rate with 2 workers / 2 x rate with 1). Synthetic run: :func:`make_large_run` (3 particles,
fiducial, Poisson noise), uncompressed, one HDF5 chunk per bin.

Run:  .venv/bin/python benchmarks/bench_dask.py [--frames 300] [--size 512] [--chunk-bins 32] [--no-cluster]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from operascope.analysis import runfile_layout as layout  # noqa: E402
from operascope.analysis.distributed.graph import AnalysisSettings, plan_run, run_graph  # noqa: E402
from operascope.analysis.distributed.runner import compute  # noqa: E402
from operascope.analysis.distributed.synthetic_large import make_large_run  # noqa: E402
from operascope.analysis.report import analyze_run  # noqa: E402


def _timed(label: str, n_bins: int, action) -> float:
    t0 = time.perf_counter()
    action()
    rate = n_bins / (time.perf_counter() - t0)
    print(f"  {label:<38s} {rate:9.1f} bins/s")
    return rate


def _read_every_bin(path: Path) -> None:
    with h5py.File(path, "r") as f:
        frames = f[f"{layout.BINNED}/frames"]
        for k in range(frames.shape[0]):
            frames[k]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", type=int, default=512, help="frame side in px")
    parser.add_argument("--chunk-bins", type=int, default=32)
    parser.add_argument("--no-cluster", action="store_true", help="skip the 2-process LocalCluster")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_dask_"))
    try:
        path = make_large_run(folder / "run.h5", args.frames, (args.size, args.size))
        n = args.frames
        print(f"run: {n} bins of {args.size}x{args.size} float32 ({path.stat().st_size / 2**20:.0f} MiB), "
              f"chunks of {args.chunk_bins} bins")
        settings = AnalysisSettings(chunk_bins=args.chunk_bins)
        rates = {"io_floor": _timed("read every bin once (I/O floor)", n, lambda: _read_every_bin(path))}
        rates["serial"] = _timed("serial analyze_run (whole report)", n,
                                 lambda: analyze_run(path, folder / "serial_report"))
        results = {}
        for workers in (1, 2):
            rates[f"threads_{workers}"] = _timed(f"Dask threads, {workers} worker(s)", n, lambda w=workers: results.
                                                 setdefault(w, compute([run_graph(path, settings)], workers=w)[0]))
        same = np.allclose(results[1].com_nm, results[2].com_nm, equal_nan=True)
        if not args.no_cluster:
            from distributed import Client, LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                    Client(cluster) as client:
                # warm both workers (imports of the analysis modules), so the timing is of the analysis
                client.run(lambda: __import__("operascope.analysis.distributed.graph"))
                rates["processes_2"] = _timed("Dask LocalCluster, 2 processes", n,
                                              lambda: compute([run_graph(path, settings)], client=client))
        print("ratios:")
        for key, rate in rates.items():
            if key != "io_floor":
                print(f"  {key:<14s} {rate / rates['serial']:6.2f} x serial   "
                      f"{rate / rates['io_floor']:6.3f} x I/O floor")
        t0 = time.perf_counter()
        plan_run(str(path), settings)
        plan_s = time.perf_counter() - t0
        share = plan_s * rates["threads_1"] / n
        print(f"plan task (fiducial drift of every bin, reference, mask; runs before the chunks): {plan_s:.2f} s = "
              f"{100 * share:.0f} % of the 1-worker time; "
              f"Amdahl bound for 2 workers: {1 / (share + (1 - share) / 2):.2f} x")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared machines scale less)")
        efficiency = rates["threads_2"] / (2 * rates["threads_1"])
        print(f"scaling efficiency, threads 1 -> 2: {efficiency:.2f} (1.00 = perfect)")
        if "processes_2" in rates:
            efficiency_processes = rates["processes_2"] / (2 * rates["threads_1"])
            print(f"scaling efficiency, threads 1 -> 2 processes: {efficiency_processes:.2f}")
        print(f"1 and 2 threaded workers give the same COM distances: {same}")
        return 0 if same else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
