"""One-line text of an analysis summary: a statistic the run was too short for is printed as "missing"."""

from __future__ import annotations

import math
from typing import Any, Mapping

MISSING = "missing"


def number(value: Any, fmt: str = ".2f", units: str = "") -> str:
    """``value`` formatted, or "missing" for None/NaN/non-numbers (a run too short for the statistic)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return MISSING
    if not math.isfinite(x):
        return MISSING
    return f"{x:{fmt}}{(' ' + units) if units else ''}"


def largest(values: Any) -> float | None:
    """The largest finite number of ``values`` (a list that may hold None), or None."""
    finite = [float(v) for v in (values or []) if isinstance(v, (int, float)) and math.isfinite(float(v))]
    return max(finite) if finite else None


def analyze_line(summary: Mapping[str, Any]) -> str:
    """The line ``operascope analyze`` prints after writing the report."""
    drift = summary.get("drift") or {}
    return (f"{len(summary.get('particles') or [])} particles, {summary.get('n_frames', 0)} binned frames; "
            f"drift up to {number(drift.get('max_abs_drift_nm'), '.0f', 'nm')}; fiducial scatter "
            f"{number(largest(drift.get('scatter_nm')), '.2f', 'nm')} (Cramér–Rao bound "
            f"{number(drift.get('crlb_nm'), '.2f', 'nm')})")
