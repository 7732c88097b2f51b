"""Focus-lock benchmark: estimator precision vs cost, and the closed loop on the simulated rig.

Prints
1. for each line-position estimator (threshold centroid, Gaussian LS, phasor): precision (px
   and nm) on profiles rendered with the simulator's line model and noise, its ratio to the
   Cramér–Rao bound for that model, and the cost per profile (µs);
2. the open-loop sensor noise σ_n (nm per update, z held, lock off, drift detrended);
3. the closed-loop RMS of the TRUE defocus (World ground truth) over ``--minutes`` virtual
   minutes beside the prediction σ_n·sqrt(g/(2 − g)), and their ratio (goal ≤ 1.2, < 10 nm);
4. the loop rate achieved (virtual Hz) and the wall time per update (→ the rate the loop could
   sustain at speed 1);
5. the recovery time after a 200 nm step of the interface.

Run: ``.venv/bin/python benchmarks/bench_focus_lock.py [--minutes 10] [--speed 5] [--estimator gaussian]``
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from operascope.acquisition.focus_lock import FocusLock
from operascope.analysis.focus_signal import ESTIMATORS, background_subtract, estimate_position_px, half_max_sigma
from operascope.config.loader import load_config
from operascope.simulators.devices.backends import build_simulated_devices
from operascope.simulators.world.optics import focus_line_profile
from operascope.simulators.world.world import World


def gaussian_line_crlb_px(sigma_px: float, peak: float, noise: float) -> float:
    """Cramér–Rao bound (px) on the centre of a Gaussian line (σ px, peak counts) in white
    Gaussian noise (counts/px): σ_x ≥ (noise/peak)·sqrt(2σ/√π)."""
    return (noise / peak) * math.sqrt(2.0 * sigma_px / math.sqrt(math.pi))


def compare_estimators(sim, n_profiles: int = 2000) -> None:
    rng = np.random.default_rng(7)
    noise = sim.focus_sensor_noise * sim.focus_line_peak_counts
    centres = sim.focus_sensor_pixels / 2 + rng.uniform(-20.0, 20.0, n_profiles)
    profiles = [
        background_subtract(
            focus_line_profile(sim.focus_sensor_pixels, c, sim.focus_line_sigma_px, sim.focus_line_peak_counts,
                               sim.focus_dark_counts, noise, rng)
        )
        for c in centres
    ]
    crlb = gaussian_line_crlb_px(sim.focus_line_sigma_px, sim.focus_line_peak_counts, noise)
    slope = abs(sim.focus_slope_px_per_nm)
    print(f"1. Estimators on {n_profiles} simulated profiles (σ_line {sim.focus_line_sigma_px:g} px, "
          f"SNR {sim.focus_line_peak_counts / noise:.0f}); CRLB {crlb:.4f} px = {crlb / slope:.2f} nm")
    print(f"   {'estimator':<10} {'bias px':>9} {'std px':>9} {'std nm':>8} {'/CRLB':>7} {'µs/profile':>11}")
    for method in ESTIMATORS:
        t0 = time.perf_counter()
        # the lock passes the half-max width to the estimator; include that cost
        est = np.array([estimate_position_px(q, method, half_max_sigma(q, int(np.argmax(q)))) for q in profiles])
        cost_us = (time.perf_counter() - t0) / n_profiles * 1e6
        err = est - centres
        print(f"   {method:<10} {err.mean():>9.4f} {err.std():>9.4f} {err.std() / slope:>8.2f} "
              f"{err.std() / crlb:>7.2f} {cost_us:>11.1f}")


def open_rig(speed: float, estimator: str, seed: int):
    cfg = load_config(overrides={"simulation": {"speed": speed, "seed": seed},
                                 "focus_lock": {"estimator": estimator}})
    world = World(cfg)
    devices = build_simulated_devices(world)
    for role in ("stage", "focus_laser", "focus_sensor"):
        devices[role].open()
    devices["focus_laser"].set_power(cfg.focus_lock.laser_power_w)
    devices["focus_laser"].enable(True)
    return cfg, world, devices


def open_loop_noise_nm(lock: FocusLock, sensor, clock, slope_px_per_nm: float, n: int = 1500) -> float:
    """σ_n: std (nm) of detrended line positions with z held still, one profile per update."""
    from operascope.analysis.focus_signal import measure_profile

    times, positions = [], []
    for _ in range(n):
        profile = sensor.read_profile(1.0)
        m = measure_profile(profile.values, method=lock._config.estimator)
        if m.ok:
            times.append(profile.time_s)
            positions.append(m.position_px)
    t, x = np.asarray(times), np.asarray(positions)
    trend = np.polyval(np.polyfit(t, x, 2), t)
    return float(np.std(x - trend) / abs(slope_px_per_nm))


def processing_cost_s(sensor, z_axis, estimator: str, n: int = 300) -> float:
    """Wall seconds per update spent outside the sensor wait: gate + estimate + move + read-back."""
    from operascope.analysis.focus_signal import measure_profile

    profile = sensor.read_profile(1.0)
    z = z_axis.target_nm()
    t0 = time.perf_counter()
    for _ in range(n):
        measure_profile(profile.values, method=estimator)
        z_axis.move_to(z)
        z_axis.position_nm()
    return (time.perf_counter() - t0) / n


def sample_truth(world: World, duration_s: float, every_s: float) -> tuple[np.ndarray, np.ndarray]:
    t_end = world.clock.now_s() + duration_s
    times, defocus = [], []
    while world.clock.now_s() < t_end:
        truth = world.truth()
        times.append(truth["time_s"])
        defocus.append(truth["defocus_nm"])
        world.clock.sleep_s(every_s)
    return np.asarray(times), np.asarray(defocus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="virtual minutes of closed loop")
    parser.add_argument("--speed", type=float, default=5.0, help="virtual seconds per wall second")
    parser.add_argument("--estimator", choices=ESTIMATORS, default="gaussian")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--realtime-s", type=float, default=10.0, help="seconds of loop-rate check at speed 1")
    args = parser.parse_args()

    cfg, world, devices = open_rig(args.speed, args.estimator, args.seed)
    sim, fl = cfg.simulation, cfg.focus_lock
    compare_estimators(sim)

    clock = world.clock
    sensor, z_axis = devices["focus_sensor"], devices["stage"].axis("z")
    lock = FocusLock(sensor, z_axis, clock, fl)
    cal = lock.calibrate()
    print(f"\n   calibration: slope {cal.slope_px_per_nm:.5f} px/nm (simulator {sim.focus_slope_px_per_nm:g}), "
          f"residual {cal.residual_nm:.2f} nm RMS, R² {cal.r2:.5f}, capture range ±{cal.capture_range_nm:.0f} nm")

    sigma_n = open_loop_noise_nm(lock, sensor, clock, cal.slope_px_per_nm)
    g = fl.gain
    predicted = sigma_n * math.sqrt(g / (2.0 - g))
    print(f"2. Open-loop sensor noise σ_n = {sigma_n:.2f} nm per update (estimator {args.estimator})")

    lock.lock()
    # Emulate the image-based target refresh (physics §4.9) with ground truth: put the lock
    # point at best focus (mean defocus over 5 s), so the RMS below is about focus, not about
    # where we happened to lock after the calibration scan.
    # Two passes, as a periodic refresh would converge (the offset is applied through the
    # calibrated slope, which is ~1 % off the true one).
    for _ in range(2):
        clock.sleep_s(1.0)
        _, settled = sample_truth(world, 5.0, 0.02)
        lock.set_offset_nm(lock.offset_nm - float(settled.mean()))
    clock.sleep_s(3.0)
    iterations0, t0 = lock.loop_stats()["iterations"], clock.now_s()
    times, defocus = sample_truth(world, args.minutes * 60.0, 0.05)
    rate_hz = (lock.loop_stats()["iterations"] - iterations0) / (clock.now_s() - t0)
    rms = float(np.sqrt(np.mean(defocus**2)))
    print(f"3. Closed loop, {args.minutes:g} virtual min at speed {args.speed:g}, gain {g:g}, "
          f"drift {sim.drift_z_nm_s:g} nm/s + {sim.drift_noise_nm:g} nm noise, stage jitter {sim.stage_noise_nm:g} nm:")
    print(f"   true defocus RMS {rms:.2f} nm (std {defocus.std():.2f}, mean {defocus.mean():+.2f}, "
          f"max |d| {np.max(np.abs(defocus)):.1f} nm; DOF {sim.depth_of_field_nm:g} nm)")
    print(f"   prediction σ_n·sqrt(g/(2−g)) = {predicted:.2f} nm  →  ratio RMS/prediction = {rms / predicted:.2f} "
          f"(goal ≤ 1.2; absolute goal < 10 nm: {'met' if rms < 10 else 'NOT met'})")
    # the same loop in real time (speed 1), as on the rig
    clock.speed = 1.0
    iterations1, t1 = lock.loop_stats()["iterations"], clock.now_s()
    clock.sleep_s(args.realtime_s)
    realtime_rate_hz = (lock.loop_stats()["iterations"] - iterations1) / (clock.now_s() - t1)
    clock.speed = args.speed
    cost_s = processing_cost_s(sensor, z_axis, args.estimator)
    print(f"4. Loop rate achieved {realtime_rate_hz:.1f} Hz in real time (speed 1, {args.realtime_s:g} s) and "
          f"{rate_hz:.1f} Hz of virtual time at speed {args.speed:g} (configured {fl.rate_hz:g} Hz; overruns "
          f"{lock.loop_stats()['overruns']});\n   processing per update (measure + move + read-back) "
          f"{cost_s * 1e3:.2f} ms wall → at most {1 / cost_s:.0f} Hz at speed 1 (sensor {sim.focus_sensor_rate_hz:g} fps)")

    # 5. 200 nm step of the interface: shift the in-focus position of the world by 200 nm
    _, before = sample_truth(world, 1.0, 0.01)
    reference = float(before.mean())
    world.sim.z_focus_nm += 200.0
    t_step = clock.now_s()
    times, defocus = sample_truth(world, 2.0, 0.002)
    outside = np.nonzero(np.abs(defocus - reference) >= fl.locked_tolerance_nm)[0]
    if outside.size == 0 or outside[-1] + 1 >= times.size:
        recovery = "not recovered within 2 s" if outside.size else "step not seen"
    else:
        recovery = f"{(times[outside[-1] + 1] - t_step) * 1e3:.0f} ms"
    tau_s = -1.0 / (rate_hz * math.log(1.0 - g))
    print(f"5. Recovery after a 200 nm step: largest defocus {np.max(np.abs(defocus - reference)):.0f} nm; back within "
          f"±{fl.locked_tolerance_nm:g} nm of the pre-step mean after {recovery} (integral-loop prediction "
          f"τ·ln(200/{fl.locked_tolerance_nm:g}) = {tau_s * math.log(200 / fl.locked_tolerance_nm) * 1e3:.0f} ms at "
          f"{rate_hz:.0f} Hz, plus sensor/stage latency); state {lock.state}")
    lock.close()
    for role in ("focus_sensor", "focus_laser", "stage"):
        devices[role].close()


if __name__ == "__main__":
    main()
