"""The travel window follows slow drift within the drift budget; faster excursions still hit the edge."""

from __future__ import annotations

import math

import pytest

from operascope.acquisition.focus_window import RECENTRE_FRACTION, WEEK_S, TravelWindow

SOFT = (-12_500_000.0, 12_500_000.0)


def window(budget: float = 0.25, origin: float = 0.0, soft=SOFT) -> TravelWindow:
    return TravelWindow(origin_nm=origin, since_s=0.0, window_nm=5000.0, drift_budget_nm_s=budget,
                        soft_limits_nm=soft, margin_nm=100.0)


def test_slow_drift_recentres_and_a_week_of_default_drift_fits():
    w = window()
    z, recentred = 0.0, []
    for t in range(0, int(WEEK_S) + 1, 100):        # 0.05 nm/s, one check per 100 s
        z = 0.05 * t
        low, high = w.limits_nm()
        assert low <= z <= high, (t, z, low, high)
        note = w.maybe_recentre(z, float(t))
        if note:
            recentred.append(note)
    assert w.recentred == len(recentred) == math.floor(0.05 * WEEK_S / (RECENTRE_FRACTION * 5000.0))
    assert "within the drift budget 0.25 nm/s" in recentred[0]


def test_fast_excursion_is_not_followed_and_a_zero_budget_is_a_fixed_window():
    w = window()
    assert w.maybe_recentre(4500.0, 10.0) is None          # 450 nm/s: a runaway, not drift
    assert w.limits_nm() == (-5000.0, 5000.0)
    assert window(budget=0.0).maybe_recentre(4500.0, 1e9) is None
    assert w.maybe_recentre(3000.0, 1e6) is None            # not near the edge yet


def test_never_beyond_the_soft_limits_and_a_warning_when_a_week_would_reach_them():
    w = window(origin=1_000_000.0, soft=(-1_000_000.0, 1_100_000.0))
    assert w.limits_nm() == (995_000.0, 1_000_000.0 - 0.0 + 5000.0)
    assert w.maybe_recentre(1_099_950.0, 1e9) is None       # beyond soft limit minus margin: refused
    text = w.week_warning()
    assert text is not None and "before a week" in text
    assert w.seconds_to_soft_limit() == pytest.approx((100_000.0 - 100.0 - 5000.0) / 0.25)
    assert window().week_warning() is None
    assert "151 µm a week" in window().describe()
