"""Cycling: capacity per cycle and rate capability from echem arrays with known answers."""

import numpy as np
import pytest

from operascope.analysis.cycling import capacity_per_cycle, infer_cycles, rate_capability


def _cycles(rates_mA_g, mass_mg=5.0, fade=0.98, dt=5.0):
    """Charge then discharge at each rate, 200 mAh/g nominal, discharge fading by ``fade`` per cycle."""
    t, i, cyc = [], [], []
    now = 0.0
    for k, rate in enumerate(rates_mA_g):
        current = rate * 1e-3 * mass_mg * 1e-3  # A
        for sign, capacity in ((1, 200.0), (-1, 200.0 * fade**k)):
            duration = capacity / rate * 3600.0
            n = int(round(duration / dt))
            t.extend(now + dt * np.arange(n))
            i.extend(np.full(n, sign * current))
            cyc.extend(np.full(n, k))
            now += n * dt
    return np.array(t), np.array(i), np.array(cyc)


def test_capacity_per_cycle_with_and_without_cycle_column():
    t, i, cyc = _cycles([50.0, 50.0, 50.0])
    for cycles in (capacity_per_cycle(t, i, 5.0, cyc), capacity_per_cycle(t, i, 5.0)):
        assert [c.cycle for c in cycles] == [0, 1, 2]
        for k, c in enumerate(cycles):
            assert c.charge_mAh_g == pytest.approx(200.0, rel=0.01)
            assert c.discharge_mAh_g == pytest.approx(200.0 * 0.98**k, rel=0.01)
            assert c.discharge_current_mA_g == pytest.approx(50.0, rel=1e-6)
            assert c.coulombic_efficiency == pytest.approx(0.98**k, rel=0.01)
    assert list(np.unique(infer_cycles(i))) == [0, 1, 2]


def test_rate_capability_groups_cycles_by_rate():
    t, i, cyc = _cycles([50.0, 52.0, 200.0, 400.0, 400.0], fade=1.0)
    points = rate_capability(capacity_per_cycle(t, i, 5.0, cyc))
    assert [p.n_cycles for p in points] == [2, 1, 2]
    assert [p.rate_mA_g for p in points] == pytest.approx([51.0, 200.0, 400.0], rel=1e-6)
    assert [p.c_rate for p in points] == pytest.approx([0.255, 1.0, 2.0], rel=1e-6)
    with pytest.raises(ValueError, match="active_mass_mg"):
        capacity_per_cycle(t, i, 0.0)
