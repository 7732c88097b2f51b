"""The typed messages producers queue for the run writer's thread (acquisition/run_writer.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from operascope.acquisition.binner import BinnedFrame
from operascope.acquisition.live_differential import DifferentialFrame
from operascope.acquisition.protocols import ProtocolStep
from operascope.devices.base import Frame


@dataclass(frozen=True)
class BinnedMsg:
    binned: BinnedFrame
    voltage_v: float
    current_a: float
    capacity_mAh_g: float
    position: str | None = None        # multi-position runs: the position's record, and the visit
    visit_index: int = -1


@dataclass(frozen=True)
class DifferentialMsg:
    diff: DifferentialFrame
    mask: np.ndarray | None
    position: str | None = None


@dataclass(frozen=True)
class RawMsg:
    frame: Frame


@dataclass(frozen=True)
class TechniqueMsg:
    step: ProtocolStep
    start_s: float


@dataclass(frozen=True)
class CalibrationMsg:
    time_s: float
    calibration: dict[str, Any]


@dataclass(frozen=True)
class DeviceLogMsg:
    time_s: float
    stage_nm: dict | None
    led: Any
    laser: Any


@dataclass(frozen=True)
class LogMsg:
    """A small log record for table ``key`` (echem, focus, events, truth)."""

    key: str
    record: Any


@dataclass(frozen=True)
class PositionsAttrMsg:
    """Rewrite an attribute of /entry/positions (e.g. the measured cycle period, at close)."""

    name: str
    value: Any


@dataclass(frozen=True)
class StopMsg:
    """End of the queue."""
