"""The focus lock's travel window, sized for week-long runs by a drift budget (Qt-free, no I/O).

The window (lock origin ± ``window_nm``, inside the stage soft limits minus a margin) exists so a
lock that follows the wrong thing (a ghost reflection, a slope error, a failed stage) stops within
a few µm. A week of slow thermal drift moves focus much further than that (0.05 nm/s is 30 µm a
week), so the window follows slow drift: once the commanded z is ``RECENTRE_FRACTION`` of the way
to an edge while the lock is ``locked``, the window is re-centred on z — but only if the mean rate
since the last (re-)centring is within ``drift_budget_nm_s``. A faster excursion still reaches the
edge and faults, exactly as a fixed window would. The rig's z is one closed-loop stick-slip
positioner with 25 mm travel (no separate coarse stage), so re-centring moves nothing: it only
moves the allowed range, and every re-centring is an event.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from operascope.acquisition.focus_control import travel_limits

log = logging.getLogger(__name__)

__all__ = ["RECENTRE_FRACTION", "WEEK_S", "TravelWindow"]

#: Re-centre once the lock has used this fraction of the half-window.
RECENTRE_FRACTION = 0.8
#: The run length the window is checked against when the lock engages (rig seconds).
WEEK_S = 7 * 86_400.0


@dataclass
class TravelWindow:
    """Where the lock may put z: origin ± window_nm, inside soft limits minus margin; see the module docstring."""

    origin_nm: float
    since_s: float
    window_nm: float
    drift_budget_nm_s: float
    soft_limits_nm: tuple[float, float]
    margin_nm: float
    recentred: int = 0

    def limits_nm(self) -> tuple[float, float]:
        """(low, high) allowed z targets now (nm)."""
        return travel_limits(self.origin_nm, self.window_nm, self.soft_limits_nm, self.margin_nm)

    def maybe_recentre(self, z_nm: float, now_s: float) -> str | None:
        """Re-centre on ``z_nm`` if it is near an edge and got there within the drift budget; the event text, else None."""
        offset_nm = z_nm - self.origin_nm
        if self.drift_budget_nm_s <= 0 or abs(offset_nm) < RECENTRE_FRACTION * self.window_nm:
            return None
        elapsed_s = now_s - self.since_s
        rate_nm_s = abs(offset_nm) / elapsed_s if elapsed_s > 0 else math.inf
        if rate_nm_s > self.drift_budget_nm_s:
            return None
        low, high = self.soft_limits_nm
        if not low + self.margin_nm <= z_nm <= high - self.margin_nm:
            return None
        previous = self.origin_nm
        self.origin_nm, self.since_s = float(z_nm), float(now_s)
        self.recentred += 1
        return (f"travel window re-centred on z {z_nm:.0f} nm (was {previous:.0f} nm): the lock followed "
                f"{offset_nm:+.0f} nm in {elapsed_s / 3600:.2f} h = {rate_nm_s:.3f} nm/s, within the drift budget "
                f"{self.drift_budget_nm_s:g} nm/s (re-centring #{self.recentred})")

    def seconds_to_soft_limit(self) -> float:
        """Rig seconds of drift at the budget rate before the window meets a soft limit (inf without a budget)."""
        low, high = self.soft_limits_nm
        room_nm = min(self.origin_nm - (low + self.margin_nm), (high - self.margin_nm) - self.origin_nm) - self.window_nm
        if self.drift_budget_nm_s <= 0:
            return math.inf
        return max(room_nm, 0.0) / self.drift_budget_nm_s

    def describe(self) -> str:
        """One line for the lock's event log."""
        low, high = self.limits_nm()
        if self.drift_budget_nm_s <= 0:
            return f"travel window [{low:.0f}, {high:.0f}] nm, fixed (drift_budget_nm_s = 0)"
        week_um = self.drift_budget_nm_s * WEEK_S / 1000.0
        return (f"travel window [{low:.0f}, {high:.0f}] nm, re-centred on slow drift up to "
                f"{self.drift_budget_nm_s:g} nm/s ({week_um:.0f} µm a week)")

    def week_warning(self) -> str | None:
        """A warning when drift at the budget rate would reach the stage soft limits within a week."""
        seconds = self.seconds_to_soft_limit()
        if seconds >= WEEK_S:
            return None
        low, high = self.soft_limits_nm
        return (f"drift at the budget {self.drift_budget_nm_s:g} nm/s would reach the z soft limits "
                f"[{low:.0f}, {high:.0f}] nm (minus {self.margin_nm:.0f} nm) after {seconds / 3600:.1f} h, "
                f"before a week: centre z in its travel for long runs")
