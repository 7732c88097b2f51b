"""operascope techniques as EC-Lab techniques: parameter names, current ranges and limit words (devices.md 5)."""

from __future__ import annotations

from typing import Any

from operascope.devices.base import OCV, ConstantCurrent, ConstantVoltage, OutOfRange, Technique

#: I_Range enum value -> full-scale current (A); AUTO is not allowed in CP/CPLIMIT.
I_RANGES_A: tuple[tuple[int, float], ...] = ((4, 1e-6), (5, 1e-5), (6, 1e-4), (7, 1e-3), (8, 1e-2), (9, 1e-1), (10, 1.0))
I_RANGE_HEADROOM = 1.2
E_RANGE_5V, E_RANGE_10V = 1, 2
#: Limit words: active | logic<<1 | comparison<<2 | variable<<5 (Ewe 0, I 3; "<" 0, ">" 1).
LIMIT_EWE_ABOVE, LIMIT_EWE_BELOW, LIMIT_I_BELOW = 5, 1, 1 | (3 << 5)
EXIT_STOP = 2


def choose_i_range(current_a: float) -> int:
    """Smallest I_Range whose full scale is >= 1.2 |I|. OutOfRange above 1 A / 1.2."""
    need = I_RANGE_HEADROOM * abs(float(current_a))
    for code, full_scale in I_RANGES_A:
        if full_scale >= need:
            return code
    raise OutOfRange("potentiostat", f"|current| {abs(current_a):g} A needs a range above 1 A; allowed up to {1.0 / I_RANGE_HEADROOM:g} A")


def technique_parameters(technique: Technique, record_every_de_v: float = 0.001, bandwidth: int = 5) -> tuple[str, dict[str, Any]]:
    """(EC-lib technique name, parameter dict) for a operascope.devices.base technique."""
    if isinstance(technique, OCV):
        return "ocv", {
            "Rest_time_T": float(technique.duration_s),
            "Record_every_dE": float(record_every_de_v),
            "Record_every_dT": float(technique.record_every_s),
            "E_Range": E_RANGE_10V,
            "Bandwidth": bandwidth,
        }
    if isinstance(technique, ConstantCurrent):
        current = float(technique.current_a)
        config = LIMIT_EWE_ABOVE if current > 0 else LIMIT_EWE_BELOW if current < 0 else 0
        return "cplimit", {
            "Current_step": [current],
            "vs_initial": [False],
            "Duration_step": [float(technique.duration_s)],
            "Step_number": 0,
            "Record_every_dT": float(technique.record_every_s),
            "Record_every_dE": float(record_every_de_v),
            "Test1_Config": [config],
            "Test1_Value": [float(technique.v_limit_v)],
            "Test2_Config": [0],
            "Test2_Value": [0.0],
            "Test3_Config": [0],
            "Test3_Value": [0.0],
            "Exit_Cond": [EXIT_STOP],
            "N_Cycles": 0,
            "I_Range": choose_i_range(current) if current else I_RANGES_A[0][0],
            "E_Range": E_RANGE_10V,
            "Bandwidth": bandwidth,
        }
    if isinstance(technique, ConstantVoltage):
        return "calimit", {
            "Voltage_step": [float(technique.voltage_v)],
            "vs_initial": [False],
            "Duration_step": [float(technique.duration_s)],
            "Step_number": 0,
            "Record_every_dT": float(technique.record_every_s),
            "Record_every_dI": max(float(technique.i_limit_a) / 100.0, 1e-9),
            "Test1_Config": [LIMIT_I_BELOW if technique.i_limit_a > 0 else 0],
            "Test1_Value": [float(technique.i_limit_a)],
            "Test2_Config": [0],
            "Test2_Value": [0.0],
            "Test3_Config": [0],
            "Test3_Value": [0.0],
            "Exit_Cond": [EXIT_STOP],
            "N_Cycles": 0,
            "I_Range": I_RANGES_A[-1][0],
            "E_Range": E_RANGE_10V,
            "Bandwidth": bandwidth,
        }
    raise OutOfRange("potentiostat", f"unknown technique {technique!r}; allowed: OCV, ConstantCurrent, ConstantVoltage")
