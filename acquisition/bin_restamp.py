"""Bin times re-done at the end of a recording with the final camera-clock estimate.

During the run each bin is stamped with the clock estimate of that moment; the first bins have only a
few (camera time, host time) pairs, all possibly read late, so their times can be seconds late. At the
end every bin's mean camera time is mapped again with the estimate from all pairs, and the bins'
voltage, current and capacity are taken again from the echem log at the new times. A multi-position run
does this for each position's binned/differential tables (``binned@A``, ``differential@A``).
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np

from operascope.acquisition.run_file import RunFile

log = logging.getLogger(__name__)


def restamp_bins(file: RunFile, t0_s: float, restamp: Callable[[float], float], bin_camera_ns: Sequence[float],
                 binned_key: str = "binned", differential_key: str = "differential") -> None:
    """Rewrite binned/differential ``time`` (s since ``t0_s``) and the bins' echem columns; no-op if unmappable.
    ``binned_key``/``differential_key``: the tables (a position's "binned@A"/"differential@A")."""
    cam = np.asarray(bin_camera_ns, dtype=float)
    if cam.size == 0 or not np.isfinite(cam).all():
        return
    times = np.array([restamp(c) for c in cam]) - t0_s
    if not np.isfinite(times).all():
        return
    old = file.column(binned_key, "time")[: times.size]
    log.info("%s times re-done with the final clock estimate: largest change %.3g s", binned_key,
             float(np.max(np.abs(old - times))) if old.size else 0.0)
    for key in (binned_key, differential_key):
        if file.has(key):
            file.overwrite_column(key, "time", times)
    _echem_at_bin_times(file, times, binned_key)


def _echem_at_bin_times(file: RunFile, times: np.ndarray, binned_key: str = "binned") -> None:
    """Voltage, current and capacity of the bins at their (re-done) times, from the file's echem log."""
    t = file.column("echem", "time") if file.has("echem") else np.empty(0)
    inside = (times >= t[0]) & (times <= t[-1]) if t.size >= 2 else np.zeros(times.size, bool)
    for name in ("voltage", "current", "capacity_mAh_g") if inside.any() else ():
        values = file.column(binned_key, name)[: times.size]
        values[inside] = np.interp(times[inside], t, file.column("echem", name))
        file.overwrite_column(binned_key, name, values)
