"""Soak: 8 virtual hours of cycling on the DEFAULT simulated rig and on the emulated rig, sped up, with faults.

Two soaks, one after the other in this process: ``default`` = config/simulated.toml as shipped (FEM
particles, default ROI and bin size), ``emulated`` = config/emulated.toml (every real driver talking its
protocol to the in-process emulators around one simulated world). Both with the focus lock on, the cell
cycling at C/2, and faults scheduled in the config firing throughout: camera unplugged (back after 20-60 s), camera timeouts, incomplete and
dropped frames, potentiostat timeouts, focus-sensor timeouts, a focus-laser interlock trip, stage
timeouts. A monitor thread samples the process RSS and the thread count every wall second.

Both run the FEM particle model (the default, and the path that leaked). Only the frame rate is lowered (0.1 fps rig time on the simulated camera, 1 fps - the FLIR minimum - on
the emulated one), so 8 virtual hours fit in minutes of wall time.
Prints per soak: wall time and speed-up, RSS at the start of the run (the reference), RSS growth over the run
and over its second half, growth per virtual hour and per echem point, threads before/during/after,
and file completeness (bins, frame-id accounting, echem coverage, one event per fault), as ratios:
RSS growth per virtual hour / the 2 MB/h goal, threads after close / before, bins and frames accounted
/ recorded. Exit status 1 if a check fails: growth above the goal, a thread left after close, a bin or
frame unaccounted for, an echem gap, a fault without its event. Steady-state growth = the second half's, per virtual hour.

    .venv/bin/python benchmarks/bench_soak.py [--hours H] [--speed K] [--rig default|emulated|both]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from operascope.acquisition.microscope import Microscope  # noqa: E402
from operascope.analysis import runfile_layout as L  # noqa: E402
from operascope.config.loader import preset_path  # noqa: E402

HOUR_S = 3600.0
GOAL_MB_PER_H = 2.0
RIGS = {"default": None, "emulated": "emulated"}
#: Rig-time frame rates: the lowest each camera accepts (the FLIR driver refuses < 1 Hz, as the camera does).
FRAME_RATE_HZ = {"default": 0.1, "emulated": 1.0}


def rss_mb() -> float:
    """Resident set size of this process (MB) from /proc/self/status."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def fault_schedule(hours: float) -> list[dict]:
    """Faults spread over the run (virtual seconds); a fixed pattern repeated every 40 virtual minutes."""
    faults = []
    period_s = 2400.0
    for k in range(int(hours * HOUR_S // period_s)):
        t0 = 300.0 + k * period_s
        faults += [
            {"device": "camera", "kind": "device_lost", "at_s": t0, "duration_s": 20.0 + 10.0 * (k % 5)},
            {"device": "camera", "kind": "timeout", "at_s": t0 + 400.0, "count": 2},
            {"device": "camera", "kind": "incomplete_frame", "at_s": t0 + 700.0, "count": 3},
            {"device": "camera", "kind": "drop_frames", "at_s": t0 + 900.0, "count": 4},
            {"device": "potentiostat", "kind": "timeout", "at_s": t0 + 1100.0, "count": 2},
            {"device": "focus_sensor", "kind": "timeout", "at_s": t0 + 1300.0, "count": 3},
            {"device": "stage", "kind": "timeout", "at_s": t0 + 1500.0, "count": 1},
        ]
        if k % 4 == 2:  # 500 s after the stage timeout: on the emulated rig its 2 wall-s TCP timeout stalls the
            # lock for ~400 rig s at speed 200, and a trip inside that stall would never be seen
            faults.append({"device": "focus_laser", "kind": "interlock_trip", "at_s": t0 + 2000.0, "duration_s": 30.0})
    return faults


#: rig seconds an operator takes to switch the focus laser back on after an interlock trip has cleared
OPERATOR_DELAY_S = 60.0
#: rig seconds between the operator's looks at the laser
OPERATOR_POLL_S = 5.0


class LaserOperator:
    """The person at the rig: after an interlock trip (laser off, interlock closed again) switches the focus
    laser back on ``delay_s`` rig seconds later, through the engine's API, as from the GUI. The lock must then
    find the line again by itself. (The laser never re-enables itself after a trip: that is the operator's call.)"""

    def __init__(self, scope: Microscope, delay_s: float = OPERATOR_DELAY_S) -> None:
        self.scope, self.delay_s = scope, delay_s
        self.switched_on = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-operator", daemon=True)

    def _run(self) -> None:
        off_since_s = None
        poll_wall_s = OPERATOR_POLL_S / self.scope.rig.clock.speed  # looks at the laser every few rig seconds
        while not self._stop.wait(poll_wall_s):
            try:
                state = self.scope.set_laser()
                now_s = self.scope.rig.clock.now_s()
            except Exception:  # noqa: BLE001 - the rig is closing or the laser link is down: look again later
                continue
            if state.enabled or not state.interlock_ok:
                off_since_s = None
            elif off_since_s is None:
                off_since_s = now_s
            elif now_s - off_since_s >= self.delay_s:
                self.scope.set_laser(on=True, origin="operator (soak)")
                self.switched_on += 1
                off_since_s = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Monitor:
    """Samples (wall s, RSS MB, threads) every ``interval_s`` until stopped."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.samples: list[tuple[float, float, int]] = []
        self._stop = threading.Event()
        self._interval_s = interval_s
        self._thread = threading.Thread(target=self._run, name="soak-monitor", daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.wait(self._interval_s):
            self.samples.append((time.monotonic() - t0, rss_mb(), threading.active_count()))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def soak(rig: str, hours: float, speed: float) -> list[tuple[str, bool]]:
    """One soak of ``hours`` virtual hours on ``rig`` ("default" or "emulated"); prints figures, returns checks."""
    duration_s = hours * HOUR_S
    faults = fault_schedule(hours)
    checks: list[tuple[str, bool]] = []
    overrides: dict = dict(speed=speed, seed=7, frame_rate_hz=FRAME_RATE_HZ[rig], c_rate=0.5, cycles=10, record_interval_s=1.0,
                           camera_lost_timeout_s=60.0, read_timeout_s=5.0, faults=faults,
                           particle_model="fem")  # the default; the emulated preset would otherwise run uniform
    source = None
    if RIGS[rig] is not None:
        source = preset_path(RIGS[rig])
        overrides["start_emulators"] = True

    threads_before = {t.name for t in threading.enumerate()}
    gc.collect()
    rss_before_open = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "soak.h5"
        scope = Microscope.from_config(source, **overrides)
        model = scope.config.simulation.particle_model
        monitor = Monitor()
        wall0 = time.monotonic()
        with scope:
            monitor.start()
            operator = LaserOperator(scope)
            operator.start()
            try:
                summary = scope.record(path, duration_s=duration_s, protocol="cycle", focus_lock=True)
            finally:
                operator.stop()
            echem_points = len(scope.echem)
        wall_s = time.monotonic() - wall0
        threads_during = max(n for _, _, n in monitor.samples) if monitor.samples else 0
        monitor.stop()
        time.sleep(0.5)
        gc.collect()
        leaked = sorted({t.name for t in threading.enumerate()} - threads_before)
        threads_after = threading.active_count()
        with h5py.File(path, "r") as f:
            b = f[L.BINNED]
            n_bins = b["frames"].shape[0]
            n_in_bin = b["n_frames_in_bin"][()]
            first_id, last_id = b["first_frame_id"][()], b["last_frame_id"][()]
            dropped_in_bin = b["dropped_in_bin"][()]
            bin_means = b["frames"][()].reshape(n_bins, -1).mean(axis=1)
            echem_t = f[L.ELECTROCHEMISTRY]["time"][()]
            focus_n = f[L.FOCUS_LOCK]["log"]["time"].shape[0]
            messages = [m.decode() for m in f[L.EVENTS]["message"][()]]
            stop_reason = f[L.ENTRY]["stop_reason"][()].decode()
        file_mb = os.path.getsize(path) / 1e6

    samples = np.array([(t, r) for t, r, _ in monitor.samples])
    run_rss = samples[:, 1]
    ref_mb = float(np.median(run_rss[: max(3, len(run_rss) // 10)]))          # first tenth of the run
    mid_mb = float(np.median(run_rss[len(run_rss) // 2 - 2: len(run_rss) // 2 + 2]))
    end_mb = float(np.median(run_rss[-max(3, len(run_rss) // 10):]))
    half_growth_mb = end_mb - mid_mb
    virtual_h = summary.duration_s / HOUR_S

    growth_per_h = (end_mb - ref_mb) / max(virtual_h, 1e-9)
    # steady state: the second half's growth rate (the first half includes warm-up: caches, allocator pools)
    steady_per_h = half_growth_mb / max(virtual_h / 2.0, 1e-9)
    print(f"== soak '{rig}' rig (particle model {model}, ROI {scope.config.acquisition.roi}, "
          f"bin {scope.config.acquisition.bin_size}, focus lock on, cycling, faults) ==")
    print(f"  {virtual_h:.2f} virtual h in {wall_s:.1f} wall s ({summary.duration_s / wall_s:.0f}x real time), "
          f"{len(faults)} faults scheduled")
    print(f"  stop reason: {summary.stop_reason}; file {file_mb:.1f} MB")
    print(f"  RSS: {rss_before_open:.0f} MB before open, reference (first tenth of the run) {ref_mb:.1f} MB, "
          f"middle {mid_mb:.1f} MB, end {end_mb:.1f} MB")
    print(f"  RSS growth: whole run {end_mb - ref_mb:+.1f} MB ({(end_mb - ref_mb) / ref_mb:+.1%} of reference), "
          f"second half {half_growth_mb:+.1f} MB ({half_growth_mb / ref_mb:+.1%}), "
          f"{growth_per_h:+.2f} MB per virtual hour over the whole run (incl. warm-up)")
    print(f"  steady-state RSS growth (second half): {steady_per_h:+.2f} MB per virtual hour = "
          f"{steady_per_h / GOAL_MB_PER_H:.2f}x the {GOAL_MB_PER_H:.0f} MB/h goal")
    print(f"  echem points in memory: {echem_points} ({(end_mb - ref_mb) * 1e6 / max(echem_points, 1):.0f} B of RSS "
          f"growth per point; a week at 1 s would hold {7 * 86400:,} points)")
    print(f"  threads: {len(threads_before)} before, up to {threads_during} during (incl. monitor), "
          f"left after close: {leaked or 'none'} (after/before = {threads_after / len(threads_before):.2f})")
    print(f"  frames: {summary.frames_in} in, {summary.frames_dropped} dropped, {n_bins} bins "
          f"({summary.partial_bins} partial); focus samples {focus_n}; echem points in file {echem_t.size}")

    span = int(last_id[-1] - first_id[0] + 1)
    print(f"  completeness: bins in file / bins recorded = {n_bins / max(summary.bins, 1):.3f}, frame ids accounted / "
          f"spanned = {(summary.frames_in + summary.frames_dropped) / max(span, 1):.3f}")
    expected_points = summary.duration_s / 1.0
    max_gap_s = float(np.max(np.diff(echem_t))) if echem_t.size > 1 else float("inf")
    trips = sum(f["kind"] == "interlock_trip" for f in faults)
    losses = sum("-> lost" in m for m in messages if m.startswith("focus lock:"))
    relocks = sum(m in ("focus lock: reacquiring -> locked", "focus lock: lost -> locked") for m in messages)
    checks += [
        ("ran the full duration", stop_reason == "duration reached" and virtual_h >= 0.99 * hours),
        ("steady-state RSS growth per virtual hour below the goal", steady_per_h < GOAL_MB_PER_H),
        ("RSS growth in the second half < 5 % of reference", half_growth_mb < 0.05 * ref_mb),
        ("no thread left after close", not leaked),
        ("every bin in the file", n_bins == summary.bins and n_in_bin.sum() == summary.frames_in),
        ("every frame id binned or counted as dropped", span == summary.frames_in + summary.frames_dropped
         and dropped_in_bin.sum() == summary.frames_dropped),
        ("every bin is an image (no empty pixels)", bool((bin_means > 10).all())),
        ("echem covers the run, no gap > 30 s", echem_t.size >= 0.95 * expected_points and max_gap_s <= 30.0),
        ("each camera loss logged, reconnected, its gap logged",
         sum(m.startswith("camera lost") for m in messages) >= sum(f["kind"] == "device_lost" for f in faults)
         and sum(m == "camera reconnected" for m in messages) >= sum(f["kind"] == "device_lost" for f in faults)
         and sum(m.startswith("camera gap") for m in messages) >= sum(f["kind"] == "device_lost" for f in faults)),
        ("each incomplete frame logged",
         sum(m.startswith("incomplete frame discarded") for m in messages)
         == sum(f["count"] for f in faults if f["kind"] == "incomplete_frame")),
        ("the focus lock rode out every timeout, lost the line at each interlock trip and re-locked: no lock fault, "
         "unlocked < 2 % of the run", not summary.focus_faults and summary.focus_unlocked_s < 0.02 * summary.duration_s
         and losses >= trips and relocks >= losses),
        ("each potentiostat timeout survived and logged",
         sum(m.startswith("potentiostat timed out") for m in messages)
         == sum(f["count"] for f in faults if f["device"] == "potentiostat")),
    ]
    print(f"  laser interlock trips {trips}, switched back on by the operator {operator.switched_on} "
          f"({OPERATOR_DELAY_S:.0f} s after each cleared); lock lost the line {losses}x, re-locked {relocks}x")
    print(f"  echem max gap {max_gap_s:.1f} s; focus lock unlocked {summary.focus_unlocked_s:.0f} s "
          f"({summary.focus_unlocked_s / max(summary.duration_s, 1e-9):.2%} of the run), faults: "
          f"{'; '.join(summary.focus_faults) or 'none'}")
    problems = [m for m in messages if "error" in m.lower() or "fault" in m.lower()]
    if problems:
        print(f"  {len(problems)} error/fault events; last: " + " | ".join(problems[-3:]))
    for name, ok in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")
    return [(f"{rig}: {name}", ok) for name, ok in checks]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0, help="virtual hours per soak (default 8)")
    parser.add_argument("--speed", type=float, default=200.0, help="rig seconds per wall second (default 200)")
    parser.add_argument("--rig", choices=[*RIGS, "both"], default="both", help="which soak(s) to run (default both)")
    args = parser.parse_args()
    checks: list[tuple[str, bool]] = []
    for rig in RIGS if args.rig == "both" else [args.rig]:
        checks += soak(rig, args.hours, args.speed)
    failed = [name for name, ok in checks if not ok]
    print(f"soak checks: {len(checks) - len(failed)}/{len(checks)} ok" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
