"""Run browser benchmark: time to show one bin (binned + ΔI/I images, cursors, events) while scrubbing.

Synthetic run files (analysis/synthetic_run.py) at 320x288 and 1920x1200; every bin is shown once in
order, then in random order. Goals (issue 20): median < 50 ms at 320x288, < 200 ms at 1920x1200.
The reference in the same run is reading the bin from the file alone (h5py), so the ratio is the
browser's cost over the bare read.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_run_browser.py [--bins N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PyQt5 import QtWidgets  # noqa: E402

from operascope.analysis.synthetic_run import SyntheticParticle, make_synthetic_run  # noqa: E402
from operascope.gui.run_browser import RunBrowser  # noqa: E402

GOALS_MS = {(288, 320): 50.0, (1200, 1920): 200.0}


def _particles(shape: tuple[int, int]) -> list[SyntheticParticle]:
    h, w = shape
    r = min(h, w) / 8
    return [SyntheticParticle(w * 0.3, h * 0.4, r, (r / 3, -r / 6)), SyntheticParticle(w * 0.6, h * 0.6, r * 0.8)]


def bench(shape: tuple[int, int], n_bins: int, folder: Path, app: QtWidgets.QApplication) -> None:
    path = folder / f"run_{shape[1]}x{shape[0]}.h5"
    t0 = time.perf_counter()
    make_synthetic_run(path, n_frames=n_bins, shape=shape, particles=_particles(shape),
                       fiducial_xy_px=(shape[1] * 0.85, shape[0] * 0.8))
    t_make = time.perf_counter() - t0
    t0 = time.perf_counter()
    browser = RunBrowser(path)
    browser.show()
    app.processEvents()
    t_open = time.perf_counter() - t0
    order = list(range(n_bins)) + list(np.random.default_rng(0).permutation(n_bins))
    show_ms, read_ms = [], []
    for k in order:
        t0 = time.perf_counter()
        browser.slider.setValue(int(k)) if k != browser.index else browser.show_bin(int(k))
        app.processEvents()        # the repaint is part of showing a bin
        show_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        browser.data.run.frame(int(k))
        read_ms.append((time.perf_counter() - t0) * 1000)
    browser.close()
    median, p95 = statistics.median(show_ms), float(np.percentile(show_ms, 95))
    ref = statistics.median(read_ms)
    goal = GOALS_MS[shape]
    print(f"{shape[1]}x{shape[0]}: {n_bins} bins (file made in {t_make:.1f} s, opened in {t_open * 1000:.0f} ms); "
          f"show a bin median {median:.1f} ms, p95 {p95:.1f} ms (goal < {goal:.0f} ms: "
          f"{'OK' if median < goal else 'MISSED'}); bare frame read {ref:.1f} ms, ratio {median / ref:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bins", type=int, default=60, help="bins per synthetic run (default 60)")
    args = parser.parse_args()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        for shape in GOALS_MS:
            bench(shape, args.bins, Path(tmp), app)


if __name__ == "__main__":
    main()
