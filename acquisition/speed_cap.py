"""Cap a simulated rig's ``--speed`` at what this machine can render.

The simulated camera renders every frame on the virtual clock: at ``speed`` x real time and
``frame_rate_hz`` it must render ``speed * frame_rate_hz`` frames per wall second. Beyond what the
machine renders, frames are lost as frame-id gaps (issue 16: 54-83 % dropped at ``--speed 60``). Before a
run we time the renderer on a throwaway world of the same configuration (same ROI, exposure, gain), so
the run itself is untouched, and lower the speed to a share of that rate, with one warning naming it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: Share of the measured single-thread render rate a run may use. The rest of the rig shares the machine
#: per frame too (hand-over, binning, differential, writer, world physics, protocol). Measured on the
#: 2-core dev machine, default ROI: 532 frames/s rendered; 0 of 1202 frames dropped at speed 8, 10 % at
#: speed 16, 38 % at 31.9 (10 fps) -> 0.2 (speed 10.6 there).
RENDER_SHARE = 0.2


@dataclass(frozen=True)
class SpeedCheck:
    """Requested and allowed speed (virtual s per wall s) and the render rate they come from."""

    requested: float
    allowed: float
    render_rate_hz: float
    frame_rate_hz: float

    @property
    def capped(self) -> bool:
        return self.allowed < self.requested

    def warning(self) -> str | None:
        """The one-line warning when the speed is capped, else None."""
        if not self.capped:
            return None
        return (f"--speed {self.requested:g} is beyond what this machine renders: {self.render_rate_hz:.0f} frames/s "
                f"measured, {self.frame_rate_hz:g} fps needs {self.requested * self.frame_rate_hz:.0f}; running at "
                f"the achievable speed {self.allowed:.3g} instead (lower --fps or the ROI to go faster)")


def achievable_speed(render_rate_hz: float, frame_rate_hz: float, share: float = RENDER_SHARE) -> float:
    """Highest speed at which ``share`` of ``render_rate_hz`` renders ``frame_rate_hz`` frames per virtual s."""
    if not (render_rate_hz > 0 and frame_rate_hz > 0 and 0 < share <= 1):
        raise ValueError(f"need a render rate > 0, a frame rate > 0 and 0 < share <= 1, got "
                         f"{render_rate_hz!r}, {frame_rate_hz!r}, {share!r}")
    return share * render_rate_hz / frame_rate_hz


def check_speed(requested: float, render_rate_hz: float, frame_rate_hz: float,
                share: float = RENDER_SHARE) -> SpeedCheck:
    """The speed a run may use: ``requested`` or, if that is beyond the render rate, the achievable one."""
    allowed = min(float(requested), achievable_speed(render_rate_hz, frame_rate_hz, share))
    return SpeedCheck(float(requested), allowed, float(render_rate_hz), float(frame_rate_hz))


def measure_render_rate_hz(config: Any, seconds: float = 0.4, min_frames: int = 3) -> float:
    """Frames per wall second the simulator renders for ``config``'s camera settings (one thread).

    Renders on a throwaway :class:`World` of ``config`` (at virtual time 0, so the run's world is not
    advanced or changed); at least ``min_frames`` frames, for at least ``seconds`` of wall time after one
    warm-up frame.
    """
    from operascope.devices.base import Roi
    from operascope.simulators.world.optics import SENSOR_SHAPE
    from operascope.simulators.world.world import World

    acq = config.acquisition
    world = World(config)
    roi = Roi(*acq.roi) if acq.roi is not None else Roi(0, 0, SENSOR_SHAPE[1], SENSOR_SHAPE[0])
    world.render_at(0.0, roi, acq.exposure_ms, acq.gain_db, frame_key=0)
    frames, t0 = 0, time.perf_counter()
    while frames < min_frames or time.perf_counter() - t0 < seconds:
        frames += 1
        world.render_at(0.0, roi, acq.exposure_ms, acq.gain_db, frame_key=frames)
    return frames / (time.perf_counter() - t0)


def cap_config_speed(config: Any) -> tuple[Any, SpeedCheck | None]:
    """``config`` with its simulation speed capped at the achievable one (and the check), for a fully
    simulated rig faster than real time; any other config unchanged, with None."""
    if not getattr(config, "is_fully_simulated", False) or config.simulation.speed <= 1.0:
        return config, None
    check = check_speed(config.simulation.speed, measure_render_rate_hz(config), config.acquisition.frame_rate_hz)
    log.info("render rate %.1f frames/s at %g fps: speed %g allowed (%g asked)", check.render_rate_hz,
             check.frame_rate_hz, check.allowed, check.requested)
    if not check.capped:
        return config, check
    from operascope.acquisition.settings import config_with_overrides

    return config_with_overrides(config, {"speed": check.allowed}), check
