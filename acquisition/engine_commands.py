"""EngineCommands: the plain-data focus, stage, illumination and clock commands of the engine facade.

Mixed into :class:`operascope.acquisition.microscope.Microscope`; arguments and returns are plain
data (numbers, dicts, numpy arrays, dataclasses) so they can cross a process boundary.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

import numpy as np

from operascope.acquisition.echem_history import EchemSample
from operascope.devices.base import LaserState, LightState

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from operascope.acquisition.events import EventBus
    from operascope.acquisition.echem_history import EchemHistory
    from operascope.acquisition.focus_service import FocusService
    from operascope.acquisition.manual_control import ManualControl
    from operascope.acquisition.rig import Rig


class EngineCommands:
    """Commands that need an open rig (``RuntimeError`` otherwise)."""

    events: "EventBus"
    echem: "EchemHistory"
    focus: "FocusService"
    manual: "ManualControl"
    require_rig: Callable[[], "Rig"]   # provided by the facade (Microscope.require_rig)

    def clock_s(self) -> float:
        return self.require_rig().clock.now_s()

    def clock_speed(self) -> float:
        return float(self.require_rig().clock.speed)

    def echem_samples(self, start: int = 0) -> list[EchemSample]:
        return self.echem.samples(start)

    def note(self, message: str, source: str = "user", level: str = "info") -> None:
        """An operator note (or a client's warning) into the event log and a running recording."""
        self.events.emit(level, source, message)

    def calibrate_focus(self) -> dict:
        return self.focus.calibrate()

    def lock_focus(self) -> dict | None:
        return self.focus.lock_on()

    def unlock_focus(self) -> None:
        self.focus.unlock()

    def set_focus_offset_nm(self, offset_nm: float) -> None:
        self.focus.set_offset_nm(offset_nm)

    def latest_focus_profile(self) -> tuple[np.ndarray | None, int]:
        return self.focus.latest_profile()

    def read_focus_profile(self) -> np.ndarray | None:
        return self.focus.read_profile_when_idle()

    def move_stage_nm(self, targets_nm: dict[str, float], confirmed: bool = False, origin: str = "api") -> None:
        """A manual move, through the safety policy (:class:`ManualMoveRefused` unless allowed or ``confirmed``)."""
        self.manual.move_stage({axis: float(value) for axis, value in targets_nm.items()}, confirmed=confirmed,
                               origin=origin)

    def halt_stage(self) -> None:
        self.require_rig().stage.halt()

    def stage_position_nm(self) -> dict[str, float]:
        return dict(self.require_rig().stage.position_nm())

    def set_led(self, on: bool | None = None, current_a: float | None = None, origin: str = "api") -> LightState:
        """Change what is given (nothing = just read; every change is an event); returns the LED's state."""
        if current_a is not None:
            self.manual.set_led_current(float(current_a), origin=origin)
        if on is not None:
            self.manual.enable_led(bool(on), origin=origin)
        return self.require_rig().led.state()

    def set_laser(self, on: bool | None = None, power_w: float | None = None, origin: str = "api") -> LaserState:
        """Change what is given (nothing = just read; every change is an event); returns the laser's state."""
        if power_w is not None:
            self.manual.set_laser_power(float(power_w), origin=origin)
        if on is not None:
            self.manual.enable_laser(bool(on), origin=origin)
        return self.require_rig().laser.state()
