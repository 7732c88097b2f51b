"""Multi-position runs (issue 19): per-visit overhead and per-position time resolution; render cost vs sample size.

1. On the simulated four-field sample (config/simulated_positions.toml), records a multi-position run
   with 1, 2, 4 and 8 positions at bin 20 (10 Hz, so a 2 s bin) and one bin per visit, and reads the
   visits table of the run file (rig-clock times): move + settle (settled_time - time), refocus
   (focus_time - settled_time), the whole per-visit overhead (visit length - the bin's own time) and
   the per-position time resolution (mean cycle period = time between two bins of one position).
   Printed as a table with the ratio overhead / bin time. Uses the engine of issue 19
   (Microscope.record(positions=, dwell_bins=)).
2. Render cost of one 320x288 frame of the same sample with 0, 100 and 1000 extra particles far
   from the field of view, as a ratio to the bare sample measured in the same run (only particles
   reaching the ROI are rendered, so the ratio should stay ~1).
3. The must-show of issue 19: a simulated 1C charge over the four positions of
   config/positions.example.toml and a single-position run of the same charge (field A, stage at 0),
   each analysed (``operascope analyze``) and compared with the simulation's truth per particle
   (analysis/com_truth.py): particles found per position, COM error vs the true front COM (nm RMS over
   the bins with >= 20 % of the particle unreacted), the ratio multi / single, and whether any bin holds
   a frame exposed before its visit's focus was back (raw frames on, checked against /entry/visits).

Run: .venv/bin/python benchmarks/bench_positions.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from operascope.config.loader import load_config, preset_path
from operascope.devices.base import Roi
from operascope.simulators.world.world import World

BIN_FRAMES = 20
FRAME_RATE_HZ = 10.0
SPEED = 10.0
#: Stage positions (µm): the four fields of the example list, then four more fields of the same sample.
POSITIONS_EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "positions.example.toml"
FIELDS_UM = [("A", 0.0, 0.0), ("B", 60.0, 0.0), ("C", 0.0, 60.0), ("D", 60.0, 60.0),
             ("E", 30.0, 0.0), ("F", 30.0, 60.0), ("G", 0.0, 30.0), ("H", 60.0, 30.0)]


def visit_overheads(n_positions: int, cycles: int = 3) -> dict[str, float]:
    """Record ``cycles`` cycles over ``n_positions`` positions; rig-time figures from /entry/visits."""
    from operascope.acquisition.microscope import Microscope
    from operascope.acquisition.positions import PositionList, StagePosition
    from operascope.analysis import runfile_layout as L

    plist = PositionList(tuple(StagePosition(name, x, y) for name, x, y in FIELDS_UM[:n_positions]))
    bin_s = BIN_FRAMES / FRAME_RATE_HZ
    duration_s = cycles * n_positions * (bin_s + 1.0) + 2.0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "positions.h5"
        with Microscope.from_config(preset_path("simulated_positions"), speed=SPEED, bin_size=BIN_FRAMES,
                                    frame_rate_hz=FRAME_RATE_HZ, particle_model="uniform") as scope:
            scope.record(path, duration_s=duration_s, positions=plist, dwell_bins=1)
        with h5py.File(path, "r") as f:
            v = f[L.VISITS]
            time_s, settled_s, focus_s, end_s = (v[k][()] for k in ("time", "settled_time", "focus_time", "end_time"))
            n_bins = v["n_bins"][()]
            status = [s.decode() for s in v["status"][()]]
            cycle_s = float(f[L.POSITIONS].attrs["cycle_period_s"])
    done = np.array([s == "recorded" and n > 0 for s, n in zip(status, n_bins)])
    overhead = (end_s - time_s - n_bins * bin_s)[done]
    return {"visits": int(done.sum()), "move_settle_s": float(np.median((settled_s - time_s)[done])),
            "refocus_s": float(np.median((focus_s - settled_s)[done])), "overhead_s": float(np.median(overhead)),
            "cycle_s": cycle_s, "bin_s": bin_s}


def render_cost_s(extra_far_particles: int, repeats: int = 40) -> float:
    """Median wall time (s) of one 320x288 frame of the four-field sample plus far-away particles."""
    config = load_config(preset_path("simulated_positions"))
    far = [{"x_um": 1000.0 + 5.0 * (k % 200), "y_um": 1000.0 + 5.0 * (k // 200), "diameter_um": 2.0}
           for k in range(extra_far_particles)]
    particles = [p.model_dump() for p in config.simulation.particles] + far
    world = World(load_config(preset_path("simulated_positions"),
                              overrides={"simulation": {"particle_model": "uniform", "particles": particles}}))
    world.set_led(enabled=True)
    roi = Roi(0, 0, 320, 288)
    times = []
    for k in range(repeats):
        start = time.perf_counter()
        world.render_at(1.0 + 0.1 * k, roi, 2.5, 0.0, k)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


#: Fiducial box of the analysis for multi-position fields (the default 21 px loses the fiducial: see README).
ANALYSIS = {"box_px": 31}


def charge_vs_truth(folder: Path, multi: bool, speed: float, frame_rate_hz: float, bin_frames: int) -> dict:
    """Record a 1C charge (4 positions or one), analyse it, compare COM with truth; figures per particle."""
    from operascope.acquisition.microscope import Microscope
    from operascope.analysis.com_truth import compare_com_with_truth
    from operascope.analysis.positions_report import analyze_positions
    from operascope.analysis.report import analyze_run
    from operascope.analysis.runfile import open_run
    from operascope.analysis.visit_gating import frames_before_focus

    path = folder / ("multi.h5" if multi else "single.h5")
    start = time.perf_counter()
    with Microscope.from_config(preset_path("simulated_positions"), speed=speed, bin_size=bin_frames,
                                frame_rate_hz=frame_rate_hz, c_rate=1.0) as scope:
        summary = scope.record(path, protocol="charge", save_raw=multi,
                               positions=str(POSITIONS_EXAMPLE) if multi else None)
    record_s = time.perf_counter() - start
    out = folder / (path.stem + "_analysis")
    errors: dict[str, list] = {}
    with open_run(path) as run:
        if multi:
            report = analyze_positions(path, out, **ANALYSIS)
            fits = {n: p["drift"]["n_fits_ok"] for n, p in report["positions"].items()}
            for name in run.positions():
                errors[name] = compare_com_with_truth(run.for_position(name), out / f"position_{name}")
            gating = frames_before_focus(path)
        else:
            fits = {"A": analyze_run(path, out, **ANALYSIS)["drift"]["n_fits_ok"]}
            errors["A"] = compare_com_with_truth(run, out)
            gating = None
    return {"errors": errors, "summary": summary, "record_s": record_s, "gating": gating, "fits": fits}


def _rms(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.sqrt(np.mean(np.square(finite)))) if finite else float("nan")


def must_show(speed: float = 20.0, frame_rate_hz: float = 2.0, bin_frames: int = 10) -> None:
    """Print the 4-position vs single-position 1C charge against truth (issue 19 must-show)."""
    print(f"\n1C charge against the simulation's truth: 4 positions ({POSITIONS_EXAMPLE.name}) vs one position; "
          f"bin {bin_frames} at {frame_rate_hz:g} Hz, speed {speed:g}x, FEM particles")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {kind: charge_vs_truth(Path(tmp), kind == "multi", speed, frame_rate_hz, bin_frames)
                for kind in ("single", "multi")}
    print(f"{'run':>6} {'pos':>3} {'particle':>8} {'truth':>5} {'bins':>5} {'COM err RMS nm':>14} "
          f"{'max nm':>7} {'true COM max nm':>15} {'unreacted RMS':>13}")
    per_run = {}
    for kind, r in runs.items():
        rms_all = []
        for name, errs in r["errors"].items():
            for e in errs:
                rms_all.append(e.rms_error_nm)
                print(f"{kind:>6} {name:>3} {e.label:>8} {e.truth_index:>5} {e.n_bins:>5} {e.rms_error_nm:>14.1f} "
                      f"{e.max_error_nm:>7.1f} {e.truth_com_max_nm:>15.1f} {e.unreacted_rms_error:>13.3f}")
        per_run[kind] = rms_all
        s = r["summary"]
        print(f"{kind:>6}: {s.bins} bins, {s.frames_binned}/{s.frames_in} frames binned, {s.frames_dropped} dropped, "
              f"recorded in {r['record_s']:.0f} s wall; particles found per position: "
              + ", ".join(f"{n} {len(e)}" for n, e in r["errors"].items()) + "; fiducial fits ok per position: "
              + ", ".join(f"{n} {k}" for n, k in r["fits"].items()))
    single_a = _rms(per_run["single"])
    multi_a = _rms([e.rms_error_nm for e in runs["multi"]["errors"].get("A", [])])
    multi_all = _rms(per_run["multi"])
    print(f"COM error vs truth, RMS over particles: single {single_a:.1f} nm, 4-position field A {multi_a:.1f} nm "
          f"(ratio {multi_a / single_a:.2f}), all 4 positions {multi_all:.1f} nm (ratio {multi_all / single_a:.2f})")
    gating = runs["multi"]["gating"]
    print(f"bins holding a frame exposed before its visit's focus was back: {gating['bad_bins']} of "
          f"{gating['bins']} (largest lead {gating['worst_s']:.3f} s)")


def main() -> None:
    print(f"multi-position visits, bin {BIN_FRAMES} frames at {FRAME_RATE_HZ:g} Hz = "
          f"{BIN_FRAMES / FRAME_RATE_HZ:g} s per bin, 1 bin per visit, focus lock off (rig time, medians):")
    print(f"{'positions':>9} {'visits':>6} {'move+settle s':>13} {'refocus s':>9} {'overhead s':>10} "
          f"{'overhead/bin':>12} {'cycle s':>8} {'resolution/1-pos':>16}")
    reference = None
    for n in (1, 2, 4, 8):
        r = visit_overheads(n)
        reference = reference or r["cycle_s"]
        print(f"{n:>9} {r['visits']:>6} {r['move_settle_s']:>13.3f} {r['refocus_s']:>9.3f} {r['overhead_s']:>10.3f} "
              f"{r['overhead_s'] / r['bin_s']:>12.3f} {r['cycle_s']:>8.2f} {r['cycle_s'] / reference:>16.2f}")
    base = render_cost_s(0)
    print("\nrender cost of one 320x288 frame (uniform particles) vs far-away particles on the sample:")
    print(f"{'extra far particles':>19} {'ms/frame':>9} {'ratio to none':>13}")
    for extra in (0, 100, 1000):
        cost = base if extra == 0 else render_cost_s(extra)
        print(f"{extra:>19} {cost * 1e3:>9.2f} {cost / base:>13.2f}")
    must_show()


if __name__ == "__main__":
    if "--must-show" in sys.argv:
        must_show()
    else:
        main()
