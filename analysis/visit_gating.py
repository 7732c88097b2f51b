"""Check a multi-position run file: did any bin hold a frame exposed before its visit's focus was back?

Needs the raw frames (``--save-raw``): each raw frame's exposure start (camera stamp, rig clock) by
frame id; each position's binned row names its first/last frame id and its visit (``visit_index``);
/entry/visits gives the visit's focus time and end. A frame counts as early when its exposure started
before the focus time (moving or refocusing), late when it started after the visit ended.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from operascope.analysis import runfile_layout as L

log = logging.getLogger(__name__)


def frames_before_focus(path: str | Path) -> dict[str, Any]:
    """{"bins", "bad_bins", "worst_s", "frames_checked", "frames_missing"} over every position's bins;
    ``worst_s``: the largest lead of a frame's exposure start before its visit's focus time (0 if none)."""
    with h5py.File(str(path), "r", locking=False) as f:
        if L.RAW not in f or L.VISITS not in f:
            raise ValueError(f"{path}: needs raw frames and /entry/visits (a multi-position run with --save-raw)")
        t0 = float(f[L.ENTRY][L.START_TIME].attrs["rig_clock_s"])
        raw = f[L.RAW]
        ids = raw["frame_id"][()]
        start_s = raw["camera_time_ns"][()] * 1e-9 - t0
        order = np.argsort(ids)
        ids, start_s = ids[order], start_s[order]
        visits = f[L.VISITS]
        focus_s, end_s = visits["focus_time"][()], visits["end_time"][()]
        names = [n.decode() for n in f[L.POSITIONS]["name"][()]]
        bins = bad = checked = missing = 0
        worst = 0.0
        for name in names:
            binned = f[L.position_group(name)]["binned"]
            first, last, visit = (binned[k][()] for k in ("first_frame_id", "last_frame_id", "visit_index"))
            for a, b, v in zip(first.tolist(), last.tolist(), visit.tolist()):
                bins += 1
                lo, hi = np.searchsorted(ids, a), np.searchsorted(ids, b, side="right")
                starts = start_s[lo:hi]
                checked += starts.size
                missing += (b - a + 1) - starts.size
                if starts.size == 0 or not 0 <= v < focus_s.size:
                    continue
                lead = float(focus_s[v] - starts.min())
                late = float(starts.max() - end_s[v]) if np.isfinite(end_s[v]) else 0.0
                if lead > 0 or late > 0:
                    bad += 1
                    worst = max(worst, lead)
                    log.warning("position %s visit %d: a binned frame exposed %.3f s before the focus was back "
                                "(or %.3f s after the visit)", name, v, lead, late)
    return {"bins": bins, "bad_bins": bad, "worst_s": worst, "frames_checked": checked, "frames_missing": missing}
