"""Helpers shared by the simulator tests: build a world, fit spots and lines on rendered data."""

from __future__ import annotations

import numpy as np
from scipy.optimize import curve_fit

from operascope.config.loader import load_config
from operascope.simulators.devices.backends import build_simulated_devices
from operascope.simulators.world.world import World


def make_world(speed: float = 1000.0, seed: int = 0, **simulation) -> World:
    """A World from the default simulated rig with simulation overrides."""
    overrides = {"simulation": {"speed": speed, "seed": seed, **simulation}}
    return World(load_config(overrides=overrides))


def open_devices(world: World) -> dict:
    """All simulated devices of ``world``, opened; LED on at the reference current."""
    devices = build_simulated_devices(world)
    for device in devices.values():
        device.open()
    devices["led"].set_current(world.sim.reference_led_current_a)
    devices["led"].enable(True)
    return devices


def _gauss2d(coords, amplitude, x0, y0, sigma, background):
    x, y = coords
    return background + amplitude * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))


def fit_spot(image: np.ndarray, x_guess: float, y_guess: float, half: int = 15) -> dict:
    """Least-squares 2-D Gaussian fit in a box around the guess (pixel units)."""
    xc, yc = int(round(x_guess)), int(round(y_guess))
    box = image[yc - half : yc + half + 1, xc - half : xc + half + 1].astype(float)
    y, x = np.mgrid[yc - half : yc + half + 1, xc - half : xc + half + 1]
    p0 = (box.max() - np.median(box), xc, yc, 3.0, np.median(box))
    params, _ = curve_fit(_gauss2d, (x.ravel(), y.ravel()), box.ravel(), p0=p0)
    amplitude, x0, y0, sigma, background = params
    return {"amplitude": amplitude, "x": x0, "y": y0, "sigma": abs(sigma), "background": background}


def fit_line_centre(profile: np.ndarray) -> float:
    """Centre (px) of a Gaussian line on a 1-D profile (least squares)."""
    x = np.arange(profile.size, dtype=float)

    def model(x, amplitude, x0, sigma, background):
        return background + amplitude * np.exp(-((x - x0) ** 2) / (2 * sigma**2))

    p0 = (profile.max() - np.median(profile), float(np.argmax(profile)), 4.0, float(np.median(profile)))
    params, _ = curve_fit(model, x, profile, p0=p0)
    return float(params[1])
