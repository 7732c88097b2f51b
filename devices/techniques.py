"""Electrochemistry techniques as data (what a potentiostat channel runs) and the points it returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class OCV:
    """Open-circuit rest for ``duration_s``."""

    duration_s: float
    record_every_s: float = 1.0


@dataclass(frozen=True)
class ConstantCurrent:
    """Constant current (A; positive = oxidation = cathode charge) until ``duration_s``
    or until the voltage crosses ``v_limit_v`` (upward when charging, downward when
    discharging)."""

    current_a: float
    v_limit_v: float
    duration_s: float
    record_every_s: float = 1.0


@dataclass(frozen=True)
class ConstantVoltage:
    """Hold ``voltage_v`` until ``duration_s`` or until |I| falls below ``i_limit_a``."""

    voltage_v: float
    i_limit_a: float
    duration_s: float
    record_every_s: float = 1.0


Technique = OCV | ConstantCurrent | ConstantVoltage


@dataclass(frozen=True)
class EchemPoint:
    """One electrochemistry sample on the rig clock."""

    time_s: float
    voltage_v: float
    current_a: float
    step: int = 0
    cycle: int = 0


EndReason = Literal["running", "duration", "limit", "stopped", "error"]
