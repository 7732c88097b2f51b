"""GITT: split a titration into pulses and rests, extract ΔE_s and ΔE_t, and apply the
Weppner–Huggins equation (paper Eq. 1)::

    D = 4 / (pi tau) * (m V_m / (M S))^2 * (ΔE_s / ΔE_t)^2      valid for tau << L^2 / D

With S = m * S_BET the geometric factor is L = V_m / (M S_BET) (0.349 µm for the defaults).
Current sign: positive = charge (delithiation), as logged by the potentiostat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from operascope.analysis.materials import FARADAY_C_MOL, theta_from_ocv

#: ΔE_s/ΔE_t above which tau << L²/D fails (sphere: tau D / R² > 0.01; reference section 5).
VALIDITY_RATIO_LIMIT = 0.27


@dataclass(frozen=True)
class GittSegment:
    """Sample index ranges [start, stop) of one pulse and the rests around it."""

    rest_before: tuple[int, int]
    pulse: tuple[int, int]
    rest_after: tuple[int, int]


@dataclass(frozen=True)
class GittPulse:
    """ΔE extraction and Weppner–Huggins D for one pulse. Voltages in V, times in s."""

    index: int
    segment: GittSegment
    start_s: float
    duration_s: float
    current_a: float
    e0_v: float                 # relaxed voltage before the pulse
    ir_step_v: float            # first pulse sample minus e0
    delta_e_t_v: float          # transient change without the IR step (slope of E vs sqrt(t) * sqrt(tau))
    delta_e_s_v: float          # steady-state change (relaxed after - relaxed before)
    sqrt_fit_r2: float
    relaxed: bool               # |dE/dt| < 1 mV/h at the end of the following rest
    d_equation_cm2_s: float
    charge_mid_c: float         # charge passed from the start of the data to the pulse midpoint
    flags: tuple[str, ...] = field(default_factory=tuple)
    d_relaxation_cm2_s: float = float("nan")   # Kang & Chueh relaxation fit (semi-infinite, see below)
    relaxation_fit_r2: float = float("nan")

    @property
    def ratio(self) -> float:
        """|ΔE_s / ΔE_t|; tau << L²/D needs this well below 0.89 (flagged above 0.27)."""
        return abs(self.delta_e_s_v / self.delta_e_t_v) if self.delta_e_t_v else float("nan")


def diffusion_length_cm(bet_m2_g: float, molar_mass_g_mol: float, molar_volume_cm3_mol: float) -> float:
    """L = m V_m / (M S) with S = m * S_BET (cm): volume per surface area of the particles."""
    for name, value in (("bet_m2_g", bet_m2_g), ("molar_mass_g_mol", molar_mass_g_mol),
                        ("molar_volume_cm3_mol", molar_volume_cm3_mol)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value}")
    return molar_volume_cm3_mol / (molar_mass_g_mol * bet_m2_g * 1e4)


def weppner_huggins_d_cm2_s(
    delta_e_s_v: float, delta_e_t_v: float, tau_s: float, length_cm: float
) -> float:
    """Paper Eq. 1: D = 4/(pi tau) * L² * (ΔE_s/ΔE_t)² in cm²/s (L in cm, tau in s)."""
    if tau_s <= 0 or length_cm <= 0:
        raise ValueError(f"tau_s and length_cm must be > 0, got {tau_s}, {length_cm}")
    if not delta_e_t_v:
        return float("nan")
    return 4.0 / (math.pi * tau_s) * length_cm**2 * (delta_e_s_v / delta_e_t_v) ** 2


def relaxation_slope(t_r_s: np.ndarray, voltage_v: np.ndarray, tau_s: float) -> tuple[float, float, float]:
    """Fit V(t_r) = V0 + m (sqrt(t_r + tau) - sqrt(t_r)) to a rest after a pulse of length tau.

    Returns (m in V/sqrt(s), V0 in V, R²). Kang & Chueh, J. Electrochem. Soc. 168, 120504 (2021).
    """
    t_r = np.asarray(t_r_s, dtype=float)
    v = np.asarray(voltage_v, dtype=float)
    if t_r.size < 3 or tau_s <= 0:
        return float("nan"), float("nan"), float("nan")
    basis = np.sqrt(t_r + tau_s) - np.sqrt(np.maximum(t_r, 0.0))
    a = np.column_stack([np.ones_like(basis), basis])
    (v0, slope), *_ = np.linalg.lstsq(a, v, rcond=None)
    residual = v - a @ np.array([v0, slope])
    ss_tot = float(np.sum((v - v.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / ss_tot if ss_tot > 0 else float("nan")
    return float(slope), float(v0), r2


def relaxation_d_cm2_s(slope_v_sqrt_s: float, delta_e_s_v: float, tau_s: float, length_cm: float) -> float:
    """D from the relaxation slope: (4/pi) (L ΔE_s / (tau m))², i.e. Eq. 1 with ΔE_t = m sqrt(tau).

    This is D = (4/pi) (I V_m (dU/dθ) / (F S m))² with dU/dθ = ΔE_s / Δθ from Coulomb counting.
    """
    if not slope_v_sqrt_s or not np.isfinite(slope_v_sqrt_s) or tau_s <= 0:
        return float("nan")
    return 4.0 / math.pi * (length_cm * delta_e_s_v / (tau_s * slope_v_sqrt_s)) ** 2


# ------------------------------------------------------------------------------ segmentation


def _runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(value, start, stop) of consecutive equal values."""
    if labels.size == 0:
        return []
    edges = np.nonzero(np.diff(labels))[0] + 1
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [labels.size]])
    return [(int(labels[a]), int(a), int(b)) for a, b in zip(starts, stops)]


def segment_gitt(
    time_s: np.ndarray, current_a: np.ndarray, step: np.ndarray | None = None
) -> list[GittSegment]:
    """Find every pulse that has a rest before and after it.

    With ``step`` (protocol step index per sample) segments follow the steps; otherwise samples are
    classed by current: on = |I| > I_set/2, rest = |I| < I_set/100 (I_set = typical pulse current),
    anything between is a transition and belongs to neither.
    """
    t = np.asarray(time_s, dtype=float)
    i = np.asarray(current_a, dtype=float)
    if t.ndim != 1 or t.shape != i.shape:
        raise ValueError(f"time and current must be 1-D of equal length, got {t.shape}, {i.shape}")
    if t.size < 3:
        return []
    magnitude = np.abs(i)
    peak = magnitude.max()
    if peak == 0:
        return []
    i_set = float(np.median(magnitude[magnitude > 0.1 * peak]))
    if step is not None:
        steps = np.asarray(step)
        if steps.shape != t.shape:
            raise ValueError(f"step must match time in length, got {steps.shape} vs {t.shape}")
        runs = []
        for value, a, b in _runs(steps.astype(np.int64)):
            level = float(np.median(magnitude[a:b]))
            kind = 1 if level > 0.5 * i_set else (0 if level < 0.02 * i_set else -1)
            runs.append((kind, a, b))
    else:
        state = np.where(magnitude > 0.5 * i_set, 1, np.where(magnitude < 0.01 * i_set, 0, -1))
        runs = [r for r in _runs(state) if r[0] != -1]  # transition samples belong to neither
    segments = []
    for k in range(1, len(runs) - 1):
        kind, a, b = runs[k]
        if kind != 1:
            continue
        before, after = runs[k - 1], runs[k + 1]
        if before[0] == 0 and after[0] == 0:
            segments.append(GittSegment((before[1], before[2]), (a, b), (after[1], after[2])))
    return segments


# ------------------------------------------------------------------------------ extraction


def _relaxed_voltage(t: np.ndarray, v: np.ndarray, window_s: float = 10.0) -> tuple[float, bool, str]:
    """Relaxed voltage at the end of a rest: (E, relaxed?, how).

    Relaxed when |dE/dt| < 1 mV/h over the last 10 % of the rest; otherwise E∞ from a fit of
    E = E∞ + A / sqrt(t_r) on the second half of the rest.
    """
    end = t[-1]
    tail = t >= end - window_s
    e_tail = float(np.mean(v[tail]))
    if t.size < 6 or end - t[0] <= 0:
        return e_tail, False, "short rest"
    last = t >= end - 0.1 * (end - t[0])
    if last.sum() >= 3 and np.ptp(t[last]) > 0:
        slope_v_per_h = float(np.polyfit(t[last], v[last], 1)[0]) * 3600.0
    else:
        slope_v_per_h = float("inf")
    if abs(slope_v_per_h) < 1e-3:
        return e_tail, True, "relaxed"
    t_r = t - t[0]
    half = t_r >= 0.5 * t_r[-1]
    x = 1.0 / np.sqrt(np.maximum(t_r[half], 1e-9))
    if half.sum() >= 3 and np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, v[half], 1)
        return float(intercept), False, "extrapolated E_inf + A/sqrt(t)"
    return e_tail, False, "not relaxed"


def analyse_pulse(
    index: int,
    segment: GittSegment,
    time_s: np.ndarray,
    voltage_v: np.ndarray,
    current_a: np.ndarray,
    length_cm: float,
    charge_c: np.ndarray,
    exclude_fraction: float = 0.05,
    nominal_duration_s: float | None = None,
    relaxation_window_s: float | None = None,
) -> GittPulse:
    """ΔE_s, ΔE_t and Weppner–Huggins D of one pulse (see module docstring).

    The first ``exclude_fraction`` of the pulse (and its first sample, the IR step) is left out of
    the E vs sqrt(t) fit. ``charge_c`` is the cumulative charge per sample (C). The relaxation
    method fits the first ``relaxation_window_s`` of the rest (default: the pulse length).
    """
    t, v, i = time_s, voltage_v, current_a
    b0, b1 = segment.rest_before
    p0, p1 = segment.pulse
    a0, a1 = segment.rest_after
    flags: list[str] = []
    t_on = float(t[p0])
    t_off = float(t[a0]) if a0 < t.size else float(t[p1 - 1])
    tau = t_off - t_on
    current = float(np.mean(i[p0:p1]))
    rest_t = t[b0:b1]
    window = rest_t >= rest_t[-1] - 10.0
    e0 = float(np.mean(v[b0:b1][window]))
    ir = float(v[p0] - e0)
    tp = t[p0:p1] - t_on
    vp = v[p0:p1]
    use = (tp >= exclude_fraction * tau) & (tp > 0)
    if use.sum() >= 3:
        x = np.sqrt(tp[use])
        slope, intercept = np.polyfit(x, vp[use], 1)
        fitted = intercept + slope * x
        ss_res = float(np.sum((vp[use] - fitted) ** 2))
        ss_tot = float(np.sum((vp[use] - vp[use].mean()) ** 2))
        r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
        delta_t = float(slope * math.sqrt(tau))
    else:
        r2 = float("nan")
        delta_t = float(vp[-1] - vp[0])
        flags.append("too_few_pulse_samples")
    e_after, relaxed, how = _relaxed_voltage(t[a0:a1], v[a0:a1])
    # Relaxation method on the first tau of the rest (semi-infinite regime, as for Eq. 1).
    t_rest = t[a0:a1] - t_off
    early = (t_rest > 0) & (t_rest <= (relaxation_window_s if relaxation_window_s else tau))
    m_relax, _v0, r2_relax = relaxation_slope(t_rest[early], v[a0:a1][early], tau)
    delta_s = e_after - e0
    if not relaxed:
        flags.append("rest_not_relaxed" if how != "extrapolated E_inf + A/sqrt(t)" else "rest_extrapolated")
    if not (np.isfinite(r2) and r2 > 0.99):
        flags.append("sqrt_t_fit_r2_below_0.99")
    d_wh = weppner_huggins_d_cm2_s(delta_s, delta_t, tau, length_cm) if tau > 0 else float("nan")
    ratio = abs(delta_s / delta_t) if delta_t else float("inf")
    if ratio > VALIDITY_RATIO_LIMIT:
        flags.append("tau_not_small_vs_L2_over_D")
    if nominal_duration_s and abs(tau - nominal_duration_s) > 0.02 * nominal_duration_s:
        flags.append("duration_off_nominal")
    mid = 0.5 * (t_on + t_off)
    q_mid = float(np.interp(mid, t, charge_c))
    return GittPulse(
        index=index, segment=segment, start_s=t_on, duration_s=tau, current_a=current, e0_v=e0, ir_step_v=ir,
        delta_e_t_v=delta_t, delta_e_s_v=delta_s, sqrt_fit_r2=r2, relaxed=relaxed, d_equation_cm2_s=d_wh,
        charge_mid_c=q_mid, flags=tuple(flags),
        d_relaxation_cm2_s=relaxation_d_cm2_s(m_relax, delta_s, tau, length_cm), relaxation_fit_r2=r2_relax,
    )


def cumulative_charge_c(time_s: np.ndarray, current_a: np.ndarray) -> np.ndarray:
    """Charge passed since the first sample (C), trapezoidal integration of the current."""
    t = np.asarray(time_s, dtype=float)
    i = np.asarray(current_a, dtype=float)
    out = np.zeros_like(t)
    if t.size > 1:
        out[1:] = np.cumsum(0.5 * (i[1:] + i[:-1]) * np.diff(t))
    return out


def lithium_content(
    charge_c: float | np.ndarray, active_mass_g: float, molar_mass_g_mol: float, x_start: float
) -> float | np.ndarray:
    """Li per formula unit after passing ``charge_c`` (positive charge removes Li)."""
    if active_mass_g <= 0:
        raise ValueError(f"active mass must be > 0 g, got {active_mass_g}")
    moles = active_mass_g / molar_mass_g_mol
    return x_start - np.asarray(charge_c) / (FARADAY_C_MOL * moles)


def initial_lithium_content(voltage_v: float) -> float:
    """Li content from the open-circuit voltage (Chen2020 OCV inverted); a default when unknown."""
    if not (3.0 <= voltage_v <= 4.6):
        raise ValueError(f"initial OCV {voltage_v:.3f} V is outside 3.0-4.6 V; give x_start explicitly")
    return theta_from_ocv(voltage_v)


def analyse_gitt(
    time_s: np.ndarray,
    voltage_v: np.ndarray,
    current_a: np.ndarray,
    step: np.ndarray | None = None,
    bet_m2_g: float = 0.6,
    molar_mass_g_mol: float = 97.46,
    molar_volume_cm3_mol: float = 20.39,
    exclude_fraction: float = 0.05,
) -> list[GittPulse]:
    """Segment and analyse a whole titration with the Weppner–Huggins equation."""
    t = np.asarray(time_s, dtype=float)
    v = np.asarray(voltage_v, dtype=float)
    i = np.asarray(current_a, dtype=float)
    if not (t.shape == v.shape == i.shape) or t.ndim != 1:
        raise ValueError(f"time, voltage, current must be 1-D of equal length: {t.shape}, {v.shape}, {i.shape}")
    if t.size and np.any(np.diff(t) < 0):
        raise ValueError("time must be non-decreasing")
    length = diffusion_length_cm(bet_m2_g, molar_mass_g_mol, molar_volume_cm3_mol)
    segments = segment_gitt(t, i, step)
    if not segments:
        return []
    durations = [t[s.rest_after[0]] - t[s.pulse[0]] for s in segments]
    nominal = float(np.median(durations))
    charge = cumulative_charge_c(t, i)
    return [
        analyse_pulse(k, s, t, v, i, length, charge, exclude_fraction, nominal) for k, s in enumerate(segments)
    ]

