"""How fast this machine can run the simulated rig: the achievable ``--speed`` and the cap with a warning.

The simulated camera renders every frame on this CPU; asking for more rig seconds per wall second than it
renders makes it skip frames (counted as "simulator behind", never as camera drops), so a run asked at
such a speed is capped: ``operascope acquire`` warns and names the speed this machine sustains.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from typing import Any

log = logging.getLogger(__name__)

#: Share of one core the render may take (the binner, differential and writer threads need the rest; measured
#: on the 2-core CI machine, default ROI at 10 Hz: 0.6 dropped 14 % of frames, 0.3 dropped 0.5 %).
RENDER_SHARE = 0.3
#: Frames rendered to measure (after one warm-up frame).
MEASURED_FRAMES = 5


def render_seconds_per_frame(config: Any, frames: int = MEASURED_FRAMES) -> float:
    """Median wall seconds to render one camera frame of ``config``'s ROI on a throwaway world."""
    from operascope.devices.base import Roi
    from operascope.simulators.world.optics import SENSOR_SHAPE
    from operascope.simulators.world.world import World

    acq = config.acquisition
    world = World(config)
    roi = Roi(*acq.roi) if acq.roi is not None else Roi(0, 0, SENSOR_SHAPE[1], SENSOR_SHAPE[0])
    world.set_led(enabled=True)
    period_s = 1.0 / acq.frame_rate_hz
    times = []
    for k in range(frames + 1):
        start = time.perf_counter()
        world.render_at(k * period_s, roi, acq.exposure_ms, acq.gain_db, frame_key=k)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def achievable_speed(config: Any, frames: int = MEASURED_FRAMES) -> float:
    """Rig seconds per wall second this machine renders at the configured frame rate (2 significant digits)."""
    per_frame_s = render_seconds_per_frame(config, frames)
    speed = RENDER_SHARE / (per_frame_s * config.acquisition.frame_rate_hz)
    return float(f"{speed:.2g}")


def cap_speed(config: Any) -> tuple[Any, str | None]:
    """``config`` with its simulation speed capped to the achievable one, and the warning (None: no cap)."""
    if not getattr(config, "is_fully_simulated", False) or config.simulation.speed <= 1.0:
        return config, None   # real hardware, or real time: nothing to cap
    from operascope.simulators.devices.camera import max_frame_rate_hz
    from operascope.simulators.world.optics import SENSOR_SHAPE

    acq = config.acquisition
    roi_height_px = acq.roi[3] if acq.roi is not None else SENSOR_SHAPE[0]
    if acq.frame_rate_hz > max_frame_rate_hz(roi_height_px, acq.pixel_format):
        return config, None   # the camera refuses this rate when the rig opens, with its own message
    asked = float(config.simulation.speed)
    possible = achievable_speed(config)
    if asked <= possible:
        log.info("--speed %g: this machine renders up to ~%g at %g Hz", asked, possible, config.acquisition.frame_rate_hz)
        return config, None
    from operascope.acquisition.settings import config_with_overrides

    message = (f"--speed {asked:g} is more than this machine renders at {config.acquisition.frame_rate_hz:g} Hz "
               f"and this ROI: running at --speed {possible:g} instead (lower --fps or the ROI to go faster)")
    return config_with_overrides(config, {"speed": possible}), message


def capped_speed_or_warn(config: Any) -> Any:
    """:func:`cap_speed`, with the warning in the log and on stderr (``operascope acquire``)."""
    config, warning = cap_speed(config)
    if warning:
        from operascope.acquisition.logs import SHOWN_TO_USER

        log.warning(warning, extra=SHOWN_TO_USER)
        print(f"operascope: warning: {warning}", file=sys.stderr, flush=True)
    return config
