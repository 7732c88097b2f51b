"""Benchmark the analysis: fiducial fit speed and precision/CRLB, and a whole-run analysis.

Run:  .venv/bin/python benchmarks/bench_analysis.py [--frames 1000] [--trials 2000] [--skip-run] [--run FILE]

Prints figures and ratios to references measured in the same run (goal: analysis <= 20x one read of the file):
* the `make run` file (the default run config: `operascope acquire` with the Makefile's arguments, made in a
  temp dir unless --run names one): analyze_run against one read of its binned frames, wall and CPU time;
* fiducial fits: vectorised Poisson-MLE (fit_boxes) and single live fits (fit_spot on a full
  1920x1200 frame) against scipy.optimize.curve_fit (least squares) on the same boxes;
  precision (RMS error / exact CRLB) of both.
* a run the size of the simulated rig's default (774 bins of 320x288, defocused fiducial), then
* whole run: analyze_run on N binned 1920x1200 float32 frames synthesised in a temp dir
  (uncompressed, one chunk per frame, as the writer does), against the time to read every frame
  once. Synthetic frames: three static disc particles that brighten over the run, Poisson noise
  from a bank of 8 pre-drawn noise frames, and a fiducial spot moved by a known sub-pixel drift
  (only the fiducial drifts, which costs the analysis the same as a moving scene).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import curve_fit
from scipy.special import erf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from operascope.analysis.drift import track_fiducial  # noqa: E402
from operascope.analysis.fiducial import crlb_xy, fit_boxes, fit_spot, spot_model  # noqa: E402
from operascope.analysis.report import analyze_run  # noqa: E402
from operascope.analysis.synthetic_run import write_run_file  # noqa: E402


def _ls_model(coords, x0, y0, s, n, b):
    rows, cols = coords
    ex = 0.5 * (erf((cols + 0.5 - x0) / (np.sqrt(2) * s)) - erf((cols - 0.5 - x0) / (np.sqrt(2) * s)))
    ey = 0.5 * (erf((rows + 0.5 - y0) / (np.sqrt(2) * s)) - erf((rows - 0.5 - y0) / (np.sqrt(2) * s)))
    return (b + n * ex * ey).ravel()


def bench_fiducial(trials: int) -> None:
    rng = np.random.default_rng(0)
    box = 21
    sigma = 3.2
    print("== fiducial localisation (21x21 box, sigma 3.2 px, 5 free parameters) ==")
    print(f"{'photons':>9} {'bg/px':>6} {'CRLB px':>9} {'MLE/CRLB':>9} {'LS/CRLB':>8} {'MLE fits/s':>11} "
          f"{'LS fits/s':>10} {'speed ratio':>11}")
    for photons, background in ((3e3, 20.0), (2e4, 100.0), (1e5, 1e3)):
        centre = (box - 1) / 2
        truth = np.column_stack([centre + rng.uniform(-0.5, 0.5, trials), centre + rng.uniform(-0.5, 0.5, trials),
                                 np.full(trials, sigma), np.full(trials, photons), np.full(trials, background)])
        mu, _ = spot_model(truth, (box, box))
        data = rng.poisson(mu).astype(float)
        t0 = time.perf_counter()
        fit = fit_boxes(data)
        t_mle = time.perf_counter() - t0
        bound = crlb_xy(photons, background, sigma, box, fit_sigma=True)[0]
        ratio_mle = float(np.sqrt(np.mean((fit.x_px - truth[:, 0]) ** 2))) / bound
        coords = np.mgrid[0:box, 0:box].astype(float)
        n_ls = min(trials, 300)
        errors = []
        t0 = time.perf_counter()
        for k in range(n_ls):
            p0 = [centre, centre, 3.0, data[k].sum() - data[k].min() * box * box, data[k].min()]
            try:
                popt, _ = curve_fit(_ls_model, coords, data[k].ravel(), p0=p0)
                errors.append(popt[0] - truth[k, 0])
            except RuntimeError:
                errors.append(np.nan)
        t_ls = time.perf_counter() - t0
        ratio_ls = float(np.sqrt(np.nanmean(np.square(errors)))) / bound
        print(f"{photons:9.0f} {background:6.0f} {bound:9.4f} {ratio_mle:9.3f} {ratio_ls:8.3f} "
              f"{trials / t_mle:11.0f} {n_ls / t_ls:10.0f} {(trials / t_mle) / (n_ls / t_ls):11.1f}")
    frame = rng.poisson(np.full((1200, 1920), 500.0)).astype(np.float32)
    spot, _ = spot_model(np.array([[960.3, 600.7, sigma, 1e5, 0.0]]), (1200, 1920))
    frame += spot[0].astype(np.float32)
    n_live = 200
    t0 = time.perf_counter()
    for _ in range(n_live):
        fit_spot(frame, (960.0, 600.0))
    t_live = time.perf_counter() - t0
    print(f"live fit_spot on a 1920x1200 frame with a guess: {n_live / t_live:.0f} fits/s "
          f"({1e3 * t_live / n_live:.2f} ms per fit)")


def _synthesise(path: Path, n_frames: int, shape: tuple[int, int], discs=((600, 500, 43), (900, 520, 36), (1200, 700, 32)),
                fiducial: tuple[float, float] = (300.0, 900.0), sigma_px: float = 3.2, spot_signal: float = 4e5) -> None:
    rng = np.random.default_rng(1)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    background = 2000.0
    base = np.full(shape, background, dtype=np.float32)
    particles = np.zeros(shape, dtype=bool)
    for x, y, r in discs:
        disc = (xx - x) ** 2 + (yy - y) ** 2 <= r * r
        particles |= disc
    base[particles] = 2.0 * background
    noise_bank = [rng.normal(0, np.sqrt(base)).astype(np.float32) for _ in range(8)]
    drift_px = np.cumsum(rng.normal(0, 0.05, (n_frames, 2)), axis=0) + np.linspace(0, 3, n_frames)[:, None]
    half = int(np.ceil(4 * sigma_px)) + 2
    r0, c0 = int(fiducial[1]) - half, int(fiducial[0]) - half

    def frames():
        for k in range(n_frames):
            frame = base.copy()
            frame[particles] *= 1.0 + 0.15 * k / max(n_frames - 1, 1)
            frame += noise_bank[k % len(noise_bank)]
            spot, _ = spot_model(np.array([[half + fiducial[0] - int(fiducial[0]) + drift_px[k, 0],
                                            half + fiducial[1] - int(fiducial[1]) + drift_px[k, 1],
                                            sigma_px, spot_signal, 0.0]]), (2 * half + 1, 2 * half + 1))
            window = (slice(r0, r0 + 2 * half + 1), slice(c0, c0 + 2 * half + 1))
            frame[window] = rng.poisson(base[window] + spot[0]).astype(np.float32)  # shot noise on the spot
            yield frame

    t = np.arange(n_frames) * 4.0
    write_run_file(path, frames(), shape, t, 200 * t / t[-1] * 0.8, 3.6 + 0.6 * t / t[-1],
                   np.full(n_frames, 1e-4), 34.7,
                   truth_drift_nm=(drift_px[:, 0] * 34.7, drift_px[:, 1] * 34.7))


#: The simulated rig's default run (`make run`-sized): 320x288 ROI, 774 bins, three particles, and the fiducial
#: defocused (the lock off: sigma 5.5 px > 21 / 4.5, the case that made every fit a refit in a larger box).
SIM_RUN = dict(shape=(288, 320), discs=((101, 101, 43), (230, 104, 37), (173, 213, 32)), fiducial=(43.0, 230.0),
               sigma_px=5.5, spot_signal=6e4)
FULL_RUN = dict(shape=(1200, 1920))
GOAL_RATIO = 20.0


def bench_run(n_frames: int, keep: bool, shape: tuple[int, int] = (1200, 1920), **scene) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_analysis_"))
    path = tmp / "run.h5"
    try:
        print(f"== whole-run analysis: {n_frames} binned frames {shape[1]}x{shape[0]} float32 "
              f"({n_frames * shape[0] * shape[1] * 4 / 1e9:.1f} GB) ==")
        t0 = time.perf_counter()
        _synthesise(path, n_frames, shape, **scene)
        print(f"synthesised in {time.perf_counter() - t0:.1f} s")
        import h5py

        t0 = time.perf_counter()
        with h5py.File(path, "r") as f:
            ds = f["/entry/binned/frames"]
            total = 0.0
            for k in range(n_frames):
                total += float(ds[k][0, 0])
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        with h5py.File(path, "r") as f:
            f["/entry/binned/frames"][()]
        t_read_all = time.perf_counter() - t0
        t_read = min(t_read, t_read_all)  # the faster way to read the file once is the reference
        t0 = time.perf_counter()
        summary = analyze_run(path, tmp / "out", fiducial_xy_px=scene.get("fiducial"))  # as the rig config gives it
        t_analyse = time.perf_counter() - t0
        t0 = time.perf_counter()
        with h5py.File(path, "r") as f:
            ds = f["/entry/binned/frames"]
            trace = track_fiducial(lambda k, r, c: np.asarray(ds[k, r, c], dtype=np.float32), n_frames, shape,
                                   scene.get("fiducial", (300.0, 900.0)))
        t_fiducial = time.perf_counter() - t0
        truth = summary["drift"].get("versus_simulation_truth", {})
        print(f"reference: read every frame once {t_read:.3f} s ({1e3 * t_read / n_frames:.2f} ms/frame)")
        print(f"analyze_run: {t_analyse:.2f} s ({1e3 * t_analyse / n_frames:.2f} ms/frame), "
              f"ratio to full read {t_analyse / t_read:.1f}x (goal <= {GOAL_RATIO:.0f}x)")
        print(f"  of which fiducial tracking (chunked kernel): {t_fiducial:.2f} s = {t_fiducial / t_read:.1f}x the read; "
              f"{int(trace.ok.sum())}/{n_frames} fits ok, median box {np.median([f.box_px for f in trace.fits]):.0f} px")
        print(f"particles analysed: {summary['mask']['n_particles']}; drift RMS error vs truth "
              f"{truth.get('rms_error_nm', float('nan')):.2f} nm; CRLB {summary['drift'].get('crlb_nm', float('nan')):.3f} nm")
        print(f"achieved precision (std of error vs truth) / CRLB: {truth.get('error_std_to_crlb')}; "
              f"frame-to-frame scatter / CRLB (includes the synthetic random-walk drift): "
              f"{summary['drift'].get('scatter_to_crlb')}")
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


#: The Makefile's `make run` acquisition (the default run config).
MAKE_RUN_ARGS = ["--protocol", "charge", "--c-rate", "2", "--duration", "1800", "--fps", "4", "--speed", "30",
                 "--bin", "20", "--focus-lock", "--seed", "1"]


def _best_of(fn, repeats: int = 3) -> tuple[float, float]:
    """Best wall and best CPU (process) time of ``fn()`` over ``repeats`` calls."""
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return wall, cpu


def bench_make_run(run_file: str | None, keep: bool, rounds: int = 5) -> None:
    """analyze_run on the `make run` file against one read of its binned frames (the goal: <= 20x)."""
    import subprocess

    import h5py

    tmp = Path(tempfile.mkdtemp(prefix="bench_analysis_mr_"))
    try:
        path = Path(run_file) if run_file else tmp / "demo.h5"
        if not run_file:
            exe = Path(sys.executable).with_name("operascope")
            t0 = time.perf_counter()
            subprocess.run([str(exe), "acquire", "--out", str(path), *MAKE_RUN_ARGS], check=True,
                           stdout=subprocess.DEVNULL)
            print(f"acquired the make-run file in {time.perf_counter() - t0:.1f} s")

        def read() -> None:
            with h5py.File(path, "r") as f:
                f["/entry/binned/frames"][()]

        with h5py.File(path, "r") as f:
            shape = f["/entry/binned/frames"].shape
        out = tmp / "report"
        analyze_run(path, out)   # warm-up: imports, page cache
        from operascope.analysis.report import _worker_threads

        print(f"== make-run file {path.name}: {shape[0]} bins {shape[2]}x{shape[1]} ==")
        print(f"analysis pool: {_worker_threads()} threads (figures drawn while the particle kernels run); "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        # Rounds of (best-of-3 read, one analysis) side by side, so a load change hits both; the median ratio counts.
        ratios_wall, ratios_cpu = [], []
        for k in range(rounds):
            read_wall, read_cpu = _best_of(read)
            an_wall, an_cpu = _best_of(lambda: analyze_run(path, out), repeats=1)
            ratios_wall.append(an_wall / read_wall)
            ratios_cpu.append(an_cpu / read_cpu)
            print(f"round {k + 1}: read {read_wall:.3f} s wall, {read_cpu:.3f} s CPU; analyze_run {an_wall:.2f} s "
                  f"wall, {an_cpu:.2f} s CPU; ratio {ratios_wall[-1]:.1f}x wall, {ratios_cpu[-1]:.1f}x CPU")
        print(f"analyze_run / one read of the binned frames (median of {rounds} rounds): "
              f"{float(np.median(ratios_wall)):.1f}x wall, {float(np.median(ratios_cpu)):.1f}x CPU "
              f"(goal <= {GOAL_RATIO:.0f}x)")
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000, help="binned frames in the whole-run benchmark")
    parser.add_argument("--sim-bins", type=int, default=774, help="binned frames in the simulated-rig-sized run")
    parser.add_argument("--trials", type=int, default=2000, help="fiducial fits per photon level")
    parser.add_argument("--skip-run", action="store_true", help="only the fiducial benchmark")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic run file")
    parser.add_argument("--run", default=None, help="an existing make-run file to analyse (default: acquire one)")
    parser.add_argument("--skip-make-run", action="store_true", help="leave out the make-run file section")
    args = parser.parse_args()
    if not args.skip_make_run:
        bench_make_run(args.run, args.keep)
    bench_fiducial(args.trials)
    if not args.skip_run:
        print("-- the simulated rig's run size (make run), fiducial defocused --")
        bench_run(args.sim_bins, args.keep, **SIM_RUN)
        print("-- full-frame run --")
        bench_run(args.frames, args.keep, **FULL_RUN)


if __name__ == "__main__":
    main()
