"""Cycling: capacity per cycle (cyclability) and capacity against rate (rate capability).

Current sign: positive = charge (delithiation of the cathode), negative = discharge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from operascope.analysis.materials import SPECIFIC_CAPACITY_MAH_G


@dataclass(frozen=True)
class CycleCapacity:
    """Charge and discharge capacity of one cycle (mAh/g) and the mean currents (mA/g)."""

    cycle: int
    charge_mAh_g: float
    discharge_mAh_g: float
    charge_current_mA_g: float
    discharge_current_mA_g: float

    @property
    def coulombic_efficiency(self) -> float:
        """Discharge / charge capacity (NaN without charge)."""
        return self.discharge_mAh_g / self.charge_mAh_g if self.charge_mAh_g > 0 else float("nan")


@dataclass(frozen=True)
class RatePoint:
    """Mean discharge capacity of the cycles run at one rate."""

    rate_mA_g: float
    c_rate: float
    n_cycles: int
    discharge_mAh_g: float
    discharge_std_mAh_g: float
    charge_mAh_g: float


def infer_cycles(current_a: np.ndarray, threshold_a: float | None = None) -> np.ndarray:
    """Cycle index per sample when the log has none: a new cycle starts at each discharge->charge turn."""
    i = np.asarray(current_a, dtype=float)
    thr = threshold_a if threshold_a is not None else 0.01 * (np.abs(i).max() if i.size else 0.0)
    sign = np.where(i > thr, 1, np.where(i < -thr, -1, 0))
    cycle = np.zeros(i.size, dtype=int)
    current_cycle, last = 0, 0
    for k, s in enumerate(sign):
        if s == 1 and last == -1:
            current_cycle += 1
        if s != 0:
            last = s
        cycle[k] = current_cycle
    return cycle


def capacity_per_cycle(
    time_s: np.ndarray, current_a: np.ndarray, active_mass_mg: float, cycle: np.ndarray | None = None
) -> list[CycleCapacity]:
    """Integrate positive and negative current within each cycle (mAh/g of active material)."""
    t = np.asarray(time_s, dtype=float)
    i = np.asarray(current_a, dtype=float)
    if t.shape != i.shape or t.ndim != 1:
        raise ValueError(f"time and current must be 1-D of equal length, got {t.shape}, {i.shape}")
    if not (active_mass_mg > 0):
        raise ValueError(f"active_mass_mg must be > 0, got {active_mass_mg}")
    cyc = infer_cycles(i) if cycle is None else np.asarray(cycle).astype(int)
    if cyc.shape != t.shape:
        raise ValueError(f"cycle must match time in length, got {cyc.shape} vs {t.shape}")
    if t.size < 2:
        return []
    dt = np.diff(t)
    i_mid = 0.5 * (i[1:] + i[:-1])
    c_mid = cyc[1:]
    mass_g = active_mass_mg * 1e-3
    out = []
    for c in np.unique(c_mid):
        sel = c_mid == c
        pos = np.clip(i_mid[sel], 0, None)
        neg = np.clip(-i_mid[sel], 0, None)
        q_charge = float(np.sum(pos * dt[sel])) / 3.6 / mass_g
        q_dis = float(np.sum(neg * dt[sel])) / 3.6 / mass_g
        t_charge = float(np.sum(dt[sel][pos > 0]))
        t_dis = float(np.sum(dt[sel][neg > 0]))
        i_charge = float(np.sum(pos * dt[sel]) / t_charge) * 1e3 / mass_g if t_charge > 0 else 0.0
        i_dis = float(np.sum(neg * dt[sel]) / t_dis) * 1e3 / mass_g if t_dis > 0 else 0.0
        out.append(CycleCapacity(int(c), q_charge, q_dis, i_charge, i_dis))
    return out


def rate_capability(
    cycles: list[CycleCapacity], relative_tolerance: float = 0.1, nominal_capacity_mAh_g: float = SPECIFIC_CAPACITY_MAH_G
) -> list[RatePoint]:
    """Group cycles by discharge current (within ``relative_tolerance``) and average their capacity."""
    if not (0 < relative_tolerance < 1):
        raise ValueError(f"relative_tolerance must be in (0, 1), got {relative_tolerance}")
    groups: list[list[CycleCapacity]] = []
    for c in sorted((c for c in cycles if c.discharge_current_mA_g > 0), key=lambda c: c.discharge_current_mA_g):
        if groups and abs(c.discharge_current_mA_g - groups[-1][0].discharge_current_mA_g) <= (
            relative_tolerance * groups[-1][0].discharge_current_mA_g
        ):
            groups[-1].append(c)
        else:
            groups.append([c])
    points = []
    for g in groups:
        rate = float(np.mean([c.discharge_current_mA_g for c in g]))
        dis = np.array([c.discharge_mAh_g for c in g])
        points.append(RatePoint(rate, rate / nominal_capacity_mAh_g, len(g), float(dis.mean()), float(dis.std()),
                                float(np.mean([c.charge_mAh_g for c in g]))))
    return points
