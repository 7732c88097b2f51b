"""Electrochemistry protocols built from the potentiostat's primitive techniques.

A protocol is a sequence of :class:`ProtocolStep` (a technique plus its step index, cycle and
kind). :func:`protocol_steps` is a generator: it yields a step, receives that step's
:class:`StepOutcome` and decides the next one (e.g. GITT stops once a pulse reaches the cut-off).
Sign convention: positive current = oxidation = cathode charge (delithiation).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any, Generator

from operascope.acquisition.protocol_kinds import PROTOCOL_KINDS, ProtocolKind  # noqa: F401 - re-exported
from operascope.devices.base import OCV, ConstantCurrent, Technique

log = logging.getLogger(__name__)

#: OCV rest length when no duration is given (s): a week; the run duration ends it earlier.
OPEN_ENDED_S = 7 * 86_400.0


@dataclass(frozen=True)
class ProtocolSpec:
    """What to run. Currents follow I = c_rate x specific_capacity_mah_g x active mass.

    ``duration_s`` None = until the cut-off (or, for OCV, until the run ends). Durations in s,
    voltages in V, GITT current in mA per g of active material.
    """

    kind: str
    active_mass_mg: float = 1.0
    specific_capacity_mah_g: float = 200.0
    c_rate: float = 1.0
    v_min: float = 3.0
    v_max: float = 4.3
    duration_s: float | None = None
    cycles: int = 1
    gitt_current_ma_g: float = 10.0
    gitt_pulse_s: float = 900.0
    gitt_rest_s: float = 14_400.0
    gitt_initial_rest_s: float = 600.0
    record_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in PROTOCOL_KINDS:
            raise ValueError(f"protocol {self.kind!r} is not known; allowed: {', '.join(PROTOCOL_KINDS)}")
        if not self.v_min < self.v_max:
            raise ValueError(f"voltage cut-offs reversed: v_min ({self.v_min} V) must be below v_max ({self.v_max} V)")
        for name in ("active_mass_mg", "specific_capacity_mah_g", "c_rate", "gitt_current_ma_g", "gitt_pulse_s",
                     "record_interval_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("gitt_rest_s", "gitt_initial_rest_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"protocol duration must be > 0 s, got {self.duration_s}")
        if int(self.cycles) != self.cycles or self.cycles < 1:
            raise ValueError(f"cycles must be an integer >= 1, got {self.cycles}")

    @property
    def c_rate_current_a(self) -> float:
        """|I| of a C-rate step in A: n x Q (mAh/g) x m (g) / 1000."""
        return self.c_rate * self.specific_capacity_mah_g * self.active_mass_mg * 1e-6

    @property
    def gitt_current_a(self) -> float:
        """GITT pulse current in A: (mA/g) x m (g) / 1000."""
        return self.gitt_current_ma_g * self.active_mass_mg * 1e-6

    @property
    def cc_time_limit_s(self) -> float:
        """Safety time limit of one C-rate step: 1.2/n h (or ``duration_s`` if given)."""
        return self.duration_s if self.duration_s is not None else 1.2 * 3600.0 / self.c_rate


@dataclass(frozen=True)
class ProtocolStep:
    """One technique of a protocol. ``kind`` is "rest", "charge", "discharge", "pulse"."""

    index: int
    cycle: int
    kind: str
    technique: Technique

    def parameters_json(self) -> str:
        """The technique's parameters as JSON (for the run file's technique table)."""
        return json.dumps({"technique": type(self.technique).__name__, **asdict(self.technique)})


@dataclass(frozen=True)
class StepOutcome:
    """How a step ended: potentiostat end reason and the last measured voltage (V)."""

    end_reason: str
    last_voltage_v: float | None


def protocol_steps(spec: ProtocolSpec) -> Generator[ProtocolStep, StepOutcome, None]:
    """The steps of ``spec``; send each step's outcome to get the next step."""
    dt = spec.record_interval_s
    if spec.kind == "ocv":
        yield ProtocolStep(0, 0, "rest", OCV(spec.duration_s or OPEN_ENDED_S, dt))
        return
    if spec.kind == "charge":
        yield ProtocolStep(0, 0, "charge", ConstantCurrent(spec.c_rate_current_a, spec.v_max, spec.cc_time_limit_s, dt))
        return
    if spec.kind == "discharge":
        yield ProtocolStep(0, 0, "discharge",
                           ConstantCurrent(-spec.c_rate_current_a, spec.v_min, spec.cc_time_limit_s, dt))
        return
    if spec.kind == "cycle":
        index = 0
        for cycle in range(int(spec.cycles)):
            for kind, sign, limit in (("charge", 1.0, spec.v_max), ("discharge", -1.0, spec.v_min)):
                outcome = yield ProtocolStep(index, cycle, kind,
                                             ConstantCurrent(sign * spec.c_rate_current_a, limit,
                                                             spec.cc_time_limit_s, dt))
                index += 1
                if outcome is not None and outcome.end_reason in ("stopped", "error"):
                    return
        return
    # GITT: an initial rest (the relaxed E_0 the first pulse needs), then pulse / rest pairs until a
    # pulse reaches the upper cut-off. Steps are numbered in order; the technique table tags their kind.
    index = 0
    if spec.gitt_initial_rest_s > 0:
        outcome = yield ProtocolStep(index, 0, "rest", OCV(spec.gitt_initial_rest_s, dt))
        index += 1
        if outcome is None or outcome.end_reason != "duration":
            return
    k = 0
    while True:
        outcome = yield ProtocolStep(index, k, "pulse",
                                     ConstantCurrent(spec.gitt_current_a, spec.v_max, spec.gitt_pulse_s, min(dt, 1.0)))
        index += 1
        if outcome is None or outcome.end_reason != "duration":
            return
        reached = outcome.last_voltage_v is not None and outcome.last_voltage_v >= spec.v_max
        if spec.gitt_rest_s > 0:
            outcome = yield ProtocolStep(index, k, "rest", OCV(spec.gitt_rest_s, dt))
            index += 1
            if outcome is None or outcome.end_reason != "duration":
                return
        if reached:
            return
        k += 1


@dataclass(frozen=True)
class ProtocolRequest:
    """What the user asked for in the panel; units in the names. ``duration_s`` None = until a cut-off.

    Plain data (a client such as the GUI sends it); :func:`spec_from_config` turns it into a
    :class:`ProtocolSpec`, adding the active mass, capacity and recording interval from the config."""

    kind: str
    c_rate: float = 1.0
    v_min: float = 3.0
    v_max: float = 4.3
    duration_s: float | None = None
    cycles: int = 1
    gitt_current_ma_g: float = 10.0
    gitt_pulse_s: float = 900.0
    gitt_rest_s: float = 14_400.0

    def __post_init__(self) -> None:
        if self.kind not in PROTOCOL_KINDS:
            raise ValueError(f"protocol {self.kind!r} is not known; allowed: {', '.join(PROTOCOL_KINDS)}")
        if self.v_min >= self.v_max:
            raise ValueError(f"v_min ({self.v_min} V) must be below v_max ({self.v_max} V)")



def spec_from_config(config: Any, protocol: Any, duration_s: float | None = None) -> ProtocolSpec:
    """A :class:`ProtocolSpec` from a kind name ("charge", ...), a spec, or a request object with the
    same field names (the GUI's ProtocolRequest). Defaults come from ``config`` (a RigConfig)."""
    if isinstance(protocol, ProtocolSpec):
        return protocol
    ec = config.electrochemistry
    base: dict[str, Any] = dict(
        kind=None, active_mass_mg=config.sample.active_mass_mg,
        specific_capacity_mah_g=ec.specific_capacity_mah_g, c_rate=ec.c_rate, v_min=ec.v_min, v_max=ec.v_max,
        duration_s=None, cycles=ec.cycles, gitt_current_ma_g=ec.gitt_current_ma_g, gitt_pulse_s=ec.gitt_pulse_s,
        gitt_rest_s=ec.gitt_rest_s, gitt_initial_rest_s=ec.gitt_initial_rest_s,
        record_interval_s=ec.record_interval_s)
    if isinstance(protocol, str):
        base["kind"] = protocol
        if protocol == "ocv":
            base["duration_s"] = duration_s
    else:
        for name in base:
            if hasattr(protocol, name):
                base[name] = getattr(protocol, name)
    return ProtocolSpec(**base)
