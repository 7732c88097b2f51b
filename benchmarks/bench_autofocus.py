"""Autofocus benchmark on the simulated rig (ground truth from World.truth()).

For several seeds and start offsets (the sample's focus ``z_focus_nm`` away from the stage's start),
and for both fine metrics (fiducial width², high-pass variance), prints
* the autofocus time on the rig clock (virtual s) and the wall time it took at ``--speed``,
* the TRUE sample defocus after it, as nm and as a ratio to the depth of field (DOF), beside the
  fit's own 1-σ estimate of the vertex,
* the reference: the defocus the lock would hold without autofocus (= the start offset).

Run: ``.venv/bin/python benchmarks/bench_autofocus.py [--speed 100] [--seeds 1 2 3 4 5]``
"""

from __future__ import annotations

import argparse

import numpy as np

from operascope.acquisition.autofocus import AutofocusSettings, CameraFrameSource, run_autofocus
from operascope.config.loader import load_config
from operascope.devices.base import Roi
from operascope.simulators.devices.backends import build_simulated_devices
from operascope.simulators.world.world import World


def one_run(seed: int, start_offset_nm: float, metric: str, speed: float, roi: Roi) -> dict:
    cfg = load_config(overrides={"simulation": {"speed": speed, "seed": seed, "z_focus_nm": start_offset_nm,
                                                "particle_model": "uniform"}})
    world = World(cfg)
    devices = build_simulated_devices(world)
    for role in ("camera", "stage", "led"):
        devices[role].open()
    try:
        devices["led"].set_current(cfg.acquisition.led_current_a)
        devices["led"].enable(True)
        devices["camera"].configure(cfg.acquisition.exposure_ms, cfg.acquisition.frame_rate_hz, roi, "Mono16", 0.0)
        result = run_autofocus(devices["stage"].axis("z"), world.clock, CameraFrameSource(devices["camera"]),
                               AutofocusSettings(metric=metric))
        truth = world.truth()
    finally:
        for device in devices.values():
            device.close()
    return {"virtual_s": result.duration_s, "wall_s": result.wall_s, "defocus_nm": truth["defocus_nm"],
            "sigma_nm": result.fit.z0_sigma_nm, "dof_nm": cfg.simulation.depth_of_field_nm, "planes": result.planes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=100.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--offsets", type=float, nargs="+", default=[-900.0, 350.0, 1200.0])
    args = parser.parse_args()
    roi = Roi(0, 150, 128, 128)
    print(f"speed {args.speed:g}x, ROI {roi.width}x{roi.height} px, seeds {args.seeds}, start offsets {args.offsets} nm")
    print(f"{'metric':9s} {'virtual s':>10s} {'wall s':>8s} {'|defocus| nm':>13s} {'RMS nm':>7s} {'RMS/DOF':>8s} "
          f"{'fit σ nm':>9s} {'RMS/σ':>6s} {'no-AF RMS/DOF':>14s}")
    for metric in ("fiducial", "variance"):
        runs = [one_run(seed, offset, metric, args.speed, roi) for seed in args.seeds for offset in args.offsets]
        defocus = np.array([r["defocus_nm"] for r in runs])
        dof = runs[0]["dof_nm"]
        rms = float(np.sqrt(np.mean(defocus ** 2)))
        sigma = float(np.nanmedian([r["sigma_nm"] for r in runs]))
        no_af = float(np.sqrt(np.mean(np.square(args.offsets))))
        print(f"{metric:9s} {np.mean([r['virtual_s'] for r in runs]):10.1f} {np.mean([r['wall_s'] for r in runs]):8.2f} "
              f"{np.max(np.abs(defocus)):13.1f} {rms:7.1f} {rms / dof:8.3f} {sigma:9.1f} {rms / sigma:6.1f} "
              f"{no_af / dof:14.2f}")
    print("virtual/wall s: mean per autofocus; |defocus|: worst true defocus after autofocus; RMS/DOF: ratio to the "
          "depth of field; no-AF: the defocus a lock engaged at the start z would hold.")


if __name__ == "__main__":
    main()
