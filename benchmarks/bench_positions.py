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

Run: .venv/bin/python benchmarks/bench_positions.py
"""

from __future__ import annotations

import statistics
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


if __name__ == "__main__":
    main()
