"""EngineCommands: the plain-data focus, stage, illumination and clock commands of the engine facade.

Mixed into :class:`operascope.acquisition.microscope.Microscope`; arguments and returns are plain
data (numbers, dicts, numpy arrays, dataclasses) so they can cross a process boundary.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from operascope.acquisition.echem_history import EchemSample
from operascope.devices.base import LaserState, LightState

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from operascope.acquisition.events import EventBus
    from operascope.acquisition.echem_history import EchemHistory
    from operascope.acquisition.focus_service import FocusService
    from operascope.acquisition.rig import Rig


class EngineCommands:
    """Commands that need an open rig (``RuntimeError`` otherwise)."""

    events: "EventBus"
    echem: "EchemHistory"
    focus: "FocusService"

    def require_rig(self) -> "Rig":  # provided by the facade
        raise NotImplementedError

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

    def move_stage_nm(self, targets_nm: dict[str, float]) -> None:
        self.require_rig().stage.move_to(**{axis: float(value) for axis, value in targets_nm.items()})

    def halt_stage(self) -> None:
        self.require_rig().stage.halt()

    def stage_position_nm(self) -> dict[str, float]:
        return dict(self.require_rig().stage.position_nm())

    def set_led(self, on: bool | None = None, current_a: float | None = None) -> LightState:
        """Change what is given (nothing = just read); returns the LED's state."""
        if current_a is not None:
            self.require_rig().led.set_current(float(current_a))
        if on is not None:
            self.require_rig().led.enable(bool(on))
        return self.require_rig().led.state()

    def set_laser(self, on: bool | None = None, power_w: float | None = None) -> LaserState:
        """Change what is given (nothing = just read); returns the focus laser's state."""
        if power_w is not None:
            self.require_rig().laser.set_power(float(power_w))
        if on is not None:
            self.require_rig().laser.enable(bool(on))
        return self.require_rig().laser.state()
