"""Simulator throughput: how fast the virtual camera renders, against what the experiment needs.

Prints, for a full 1920x1200 frame, a 512x512 ROI and the default 320x288 ROI:
  * render time per frame (world.render: scene snapshot + optics + noise + 12-bit ADC),
  * frames per wall second, and the ratio to the 10 Hz the experiment needs (the speed-up a
    simulated run can have before the camera starts dropping frames),
  * the streaming rate actually delivered by SimulatedCamera.read() at a high clock speed.
Also the half-cell model: virtual seconds of 1C charge simulated per wall second.

Run: .venv/bin/python benchmarks/bench_simulator.py
"""

from __future__ import annotations

import time

from operascope.config.loader import load_config
from operascope.devices.base import ConstantCurrent, Roi
from operascope.simulators.devices.backends import build_simulated_devices
from operascope.simulators.world.cell import SphericalDiffusionCell
from operascope.simulators.world.world import World

EXPERIMENT_FPS = 10.0


def _world(speed: float) -> tuple[World, dict]:
    world = World(load_config(overrides={"simulation": {"speed": speed}}))
    devices = build_simulated_devices(world)
    for device in devices.values():
        device.open()
    devices["led"].set_current(0.5)
    devices["led"].enable(True)
    return world, devices


def bench_render(roi: Roi, min_seconds: float = 1.5) -> float:
    """Frames per wall second of world.render for ``roi``."""
    world, _ = _world(speed=1.0)
    world.render(roi, 2.5)  # warm caches
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        world.render(roi, 2.5)
        n += 1
    return n / (time.perf_counter() - start)


def bench_stream(roi: Roi, speed: float, seconds: float = 1.5) -> tuple[float, int, int]:
    """(frames delivered per wall s, frames delivered, frames dropped) of SimulatedCamera.read."""
    world, devices = _world(speed=speed)
    camera = devices["camera"]
    camera.configure(exposure_ms=2.5, frame_rate_hz=EXPERIMENT_FPS, roi=roi)
    camera.start()
    first = camera.read()
    n, last_id, start = 0, first.frame_id, time.perf_counter()
    while time.perf_counter() - start < seconds:
        last_id = camera.read().frame_id
        n += 1
    elapsed = time.perf_counter() - start
    return n / elapsed, n, (last_id - first.frame_id) - n


def bench_cell(virtual_s: float = 3000.0) -> float:
    """Virtual seconds of a 1C charge per wall second (default 40-shell sphere)."""
    cell = SphericalDiffusionCell(active_mass_g=1e-3)
    cell.start(ConstantCurrent(current_a=2e-4, v_limit_v=4.5, duration_s=virtual_s, record_every_s=1.0))
    start = time.perf_counter()
    cell.advance_to(virtual_s)
    return virtual_s / (time.perf_counter() - start)


def main() -> None:
    print(f"{'ROI':>12} {'ms/frame':>9} {'frames/s':>9} {'x 10 Hz':>8}")
    for label, roi in (
        ("1920x1200", Roi(0, 0, 1920, 1200)),
        ("512x512", Roi(0, 0, 512, 512)),
        ("320x288", Roi(0, 0, 320, 288)),
    ):
        fps = bench_render(roi)
        print(f"{label:>12} {1000.0 / fps:9.2f} {fps:9.1f} {fps / EXPERIMENT_FPS:8.1f}")
    print()
    print("streaming through SimulatedCamera.read() at 10 Hz virtual (320x288):")
    print(f"{'speed':>8} {'delivered/s':>12} {'needed/s':>9} {'ratio':>6} {'dropped':>8}")
    for speed in (10.0, 60.0, 200.0):
        rate, n, dropped = bench_stream(Roi(0, 0, 320, 288), speed)
        needed = speed * EXPERIMENT_FPS
        print(f"{speed:8.0f} {rate:12.1f} {needed:9.0f} {rate / needed:6.2f} {dropped:8d}")
    print()
    cell_rate = bench_cell()
    print(f"half cell (40 shells, 1C charge): {cell_rate:,.0f} virtual s per wall s (x{cell_rate / 60:.0f} of speed 60)")


if __name__ == "__main__":
    main()
