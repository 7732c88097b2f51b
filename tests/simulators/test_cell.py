"""Half-cell model and simulated potentiostat: charge balance, cut-offs, GITT-like transients."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.analysis.materials import THEORETICAL_CAPACITY_MAH_G, diffusivity_oregan2022, docv_dtheta_chen2020, ocv_chen2020
from operascope.devices.base import OCV, ConstantCurrent, ConstantVoltage, OutOfRange
from operascope.simulators.world.cell import SphericalDiffusionCell
from tests.fakes.sim_world import make_world, open_devices

MASS_G = 1e-3
ONE_C_A = 0.2 * MASS_G  # 200 mA/g
CAPACITY_C_PER_G = THEORETICAL_CAPACITY_MAH_G * 3.6


def _series(points):
    return np.array([p.time_s for p in points]), np.array([p.voltage_v for p in points]), np.array([p.current_a for p in points])


def test_theta_follows_the_charge_passed():
    cell = SphericalDiffusionCell(active_mass_g=MASS_G, initial_theta=0.95)
    cell.start(ConstantCurrent(current_a=ONE_C_A, v_limit_v=4.5, duration_s=600.0))
    cell.advance_to(600.0)
    assert cell.end_reason == "duration"
    expected_drop = ONE_C_A * 600.0 / (MASS_G * CAPACITY_C_PER_G)  # 0.727 per hour at 1C
    assert 0.95 - cell.mean_theta() == pytest.approx(expected_drop, rel=1e-6)
    assert expected_drop == pytest.approx(0.727 / 6, rel=0.01)
    assert cell.state().charge_mah_g == pytest.approx(200.0 / 6, rel=1e-6)


def test_points_do_not_depend_on_polling():
    technique = ConstantCurrent(current_a=ONE_C_A, v_limit_v=4.5, duration_s=30.0, record_every_s=2.0)
    coarse = SphericalDiffusionCell(active_mass_g=MASS_G)
    coarse.start(technique)
    coarse.advance_to(40.0)
    fine = SphericalDiffusionCell(active_mass_g=MASS_G)
    fine.start(technique)
    for t in np.arange(0.013, 40.0, 0.037):
        fine.advance_to(float(t))
    fine.advance_to(40.0)
    a, b = coarse.take_points(), fine.take_points()
    assert [p.time_s for p in a] == pytest.approx([p.time_s for p in b])
    assert [p.voltage_v for p in a] == pytest.approx([p.voltage_v for p in b], abs=1e-9)
    assert np.allclose(np.diff([p.time_s for p in a]), 2.0)
    assert len(a) == 16  # t = 0, 2, ..., 30


def test_current_pulse_shows_ir_step_and_sqrt_t_rise_then_relaxes():
    cell = SphericalDiffusionCell(active_mass_g=MASS_G, resistance_ohm=50.0, radius_um=1.0)
    cell.start(OCV(duration_s=10.0, record_every_s=1.0))
    cell.advance_to(10.0)
    v_rest = _series(cell.take_points())[1][-1]
    current = ONE_C_A
    cell.start(ConstantCurrent(current_a=current, v_limit_v=4.5, duration_s=150.0, record_every_s=0.25))
    cell.advance_to(160.0)  # exactly the end of the pulse
    t, v, _ = _series(cell.take_points())
    t = t - t[0]
    # IR step at the pulse start (plus < 0.3 mV from the half-shell surface extrapolation)
    assert v[0] - v_rest == pytest.approx(current * 50.0, abs=3e-4)
    # diffusion overpotential: the rise minus the equilibrium shift of the mean θ
    rate = current / (MASS_G * CAPACITY_C_PER_G)
    eta = v - v[0] - (ocv_chen2020(0.95 - rate * t) - ocv_chen2020(0.95))
    at = {s: eta[np.argmin(np.abs(t - s))] for s in (0.5, 1.0, 2.0, 4.0)}
    assert at[0.5] > 0
    # early times (√(Dt) << R): η ∝ √t, so 4x the time gives 2x the overpotential
    assert at[2.0] / at[0.5] == pytest.approx(2.0, rel=0.1)
    assert at[4.0] / at[1.0] == pytest.approx(2.0, rel=0.1)
    # late times: the sphere's steady profile, θ_mean − θ_surface = rate·R²/(15 D)
    theta_end = 0.95 - rate * t[-1]
    steady_v = -docv_dtheta_chen2020(theta_end) * rate * (1e-6) ** 2 / (15 * diffusivity_oregan2022(theta_end))
    assert eta[-1] == pytest.approx(steady_v, rel=0.08)
    # rest: IR step back down, then a monotonic relaxation to OCV(θ_mean)
    v_end_pulse = v[-1]
    cell.start(OCV(duration_s=1200.0, record_every_s=1.0))
    cell.advance_to(1360.0)
    tr, vr, ir = _series(cell.take_points())
    assert np.all(ir == 0.0)
    assert v_end_pulse - vr[0] == pytest.approx(current * 50.0, abs=3e-4)
    assert np.all(np.diff(vr) <= 1e-12)
    final_ocv = ocv_chen2020(cell.mean_theta())
    assert vr[0] - final_ocv > 1e-3
    assert abs(vr[-1] - final_ocv) < 0.02 * (vr[0] - final_ocv)


def test_cc_charge_stops_at_the_cut_off():
    world = make_world(speed=5000.0)
    potentiostat = open_devices(world)["potentiostat"]
    potentiostat.start(ConstantCurrent(current_a=5 * ONE_C_A, v_limit_v=4.2, duration_s=3600.0, record_every_s=5.0), step=3, cycle=1)
    points = []
    while potentiostat.is_running():
        world.clock.sleep_s(50.0)
        points += potentiostat.read_new()
    points += potentiostat.read_new()
    assert potentiostat.end_reason() == "limit"
    t, v, i = _series(points)
    assert np.all(v[:-1] < 4.2)
    assert v[-1] == pytest.approx(4.2, abs=0.005)
    assert t[-1] - t[0] < 3600.0 * 0.3  # stopped well before the duration
    assert np.all(np.diff(v) > 0)  # charging raises the voltage
    assert {p.step for p in points} == {3} and {p.cycle for p in points} == {1}
    assert world.truth()["cell_current_a"] == 0.0
    assert world.truth()["soc"] > 0.7


def test_cc_discharge_stops_at_the_lower_cut_off():
    cell = SphericalDiffusionCell(active_mass_g=MASS_G, initial_theta=0.5, max_step_s=2.0)
    cell.start(ConstantCurrent(current_a=-2 * ONE_C_A, v_limit_v=3.6, duration_s=7200.0, record_every_s=10.0))
    cell.advance_to(7200.0)
    t, v, _ = _series(cell.take_points())
    assert cell.end_reason == "limit"
    assert v[-1] == pytest.approx(3.6, abs=0.005) and np.all(v[:-1] > 3.6)
    assert cell.mean_theta() > 0.5


def test_constant_voltage_hold_decays_current_to_the_limit():
    cell = SphericalDiffusionCell(active_mass_g=MASS_G, initial_theta=0.95, max_step_s=5.0)
    cell.start(ConstantVoltage(voltage_v=3.75, i_limit_a=0.05 * ONE_C_A, duration_s=36_000.0, record_every_s=10.0))
    cell.advance_to(36_000.0)
    t, v, i = _series(cell.take_points())
    assert cell.end_reason == "limit"
    assert np.allclose(v[1:], 3.75, atol=1e-6)
    assert i[1] > 0 and np.all(np.diff(i[1:]) <= 1e-12)
    assert abs(i[-1]) < 0.05 * ONE_C_A * 1.05
    assert ocv_chen2020(cell.mean_theta()) == pytest.approx(3.75, abs=0.01)


def test_potentiostat_refuses_bad_techniques():
    world = make_world()
    potentiostat = open_devices(world)["potentiostat"]
    with pytest.raises(OutOfRange, match="current_a"):
        potentiostat.start(ConstantCurrent(current_a=5.0, v_limit_v=4.3, duration_s=10.0))
    with pytest.raises(OutOfRange, match="duration_s"):
        potentiostat.start(OCV(duration_s=-1.0))
    with pytest.raises(OutOfRange, match="record_every_s"):
        potentiostat.start(OCV(duration_s=10.0, record_every_s=0.0))
    assert not potentiostat.is_running()


def test_particles_follow_the_cell_charge():
    world = make_world(speed=5000.0)
    potentiostat = open_devices(world)["potentiostat"]
    potentiostat.start(ConstantCurrent(current_a=2 * ONE_C_A, v_limit_v=4.5, duration_s=900.0, record_every_s=30.0))
    while potentiostat.is_running():
        world.clock.sleep_s(100.0)
    world.clock.sleep_s(5.0)
    truth = world.truth()
    expected = 0.95 - 2 * ONE_C_A * 900.0 / (MASS_G * CAPACITY_C_PER_G)
    assert truth["cell_theta_mean"] == pytest.approx(expected, abs=1e-6)
    assert truth["particle_theta"] == pytest.approx([expected] * 3, abs=1e-6)
    assert truth["soc"] == pytest.approx(2 * 900.0 / 3600.0, rel=1e-3)


def _cycle_world(c_rate: float, n_cycles: int):
    """Charge/discharge ``n_cycles`` times at ``c_rate`` through the simulated potentiostat; points, θ seen."""
    world = make_world(speed=5000.0)
    potentiostat = open_devices(world)["potentiostat"]
    points, thetas, charges = [], [], []
    for cycle in range(n_cycles):
        for sign, limit in ((1, 4.3), (-1, 3.0)):
            potentiostat.start(ConstantCurrent(current_a=sign * c_rate * ONE_C_A, v_limit_v=limit, duration_s=1.2 * 3600 / c_rate,
                                               record_every_s=2.0), step=1 if sign > 0 else 2, cycle=cycle)
            while potentiostat.is_running():
                world.clock.sleep_s(20.0)
                points += potentiostat.read_new()
                thetas.append(world.truth()["cell_theta_mean"])
                charges.append(world.cell.state().charge_mah_g)
            points += potentiostat.read_new()
            assert potentiostat.end_reason() == "limit", (cycle, sign)
    return points, np.array(thetas), np.array(charges)


def test_five_c_cycling_stays_in_range_and_meets_both_cut_offs():
    from operascope.analysis.cycling import capacity_per_cycle

    points, thetas, charges = _cycle_world(5.0, 2)
    t, v, i = _series(points)
    cycles = capacity_per_cycle(t, i, MASS_G * 1e3, np.array([p.cycle for p in points]))
    efficiencies = [c.discharge_mAh_g / c.charge_mAh_g for c in cycles]
    print(f"5C x2: theta {thetas.min():.4f}..{thetas.max():.4f}, V {v.min():.4f}..{v.max():.4f}, "
          f"CE {', '.join(f'{e:.5f}' for e in efficiencies)}, min charge count {charges.min():.3f} mAh/g")
    assert 0.0 <= thetas.min() and thetas.max() <= 0.95 + 1e-6
    assert v.min() == pytest.approx(3.0, abs=0.003) and v.max() == pytest.approx(4.3, abs=0.003)
    assert len(cycles) == 2
    # CE <= 100 % (steady cycles sit at 100 % within the cut-off resolution, 2 mV of a 3 V cut-off)
    assert all(e <= 1.0 + 1e-4 for e in efficiencies) and efficiencies[0] < 0.99
    assert charges.min() >= -1e-6  # the electrode never takes more Li than the pristine state at 5C
    assert all(c.discharge_mAh_g > 100.0 for c in cycles)


@pytest.mark.parametrize("c_rate", [0.2, 20.0])
def test_discharge_reaches_the_lower_cut_off_at_any_rate(c_rate):
    cell = SphericalDiffusionCell(active_mass_g=MASS_G, initial_theta=0.6, max_theta=0.955, max_step_s=5.0)
    cell.start(ConstantCurrent(current_a=-c_rate * ONE_C_A, v_limit_v=3.0, duration_s=2 * 3600.0 / c_rate, record_every_s=5.0))
    cell.advance_to(2 * 3600.0 / c_rate)
    _t, v, _i = _series(cell.take_points())
    assert cell.end_reason == "limit"
    assert v[-1] == pytest.approx(3.0, abs=0.003) and np.all(v[:-1] > 3.0)
    assert 0.6 < cell.mean_theta() <= 0.955
    assert cell.edge_voltage_v(0.5) == 0.0 and cell.edge_voltage_v(0.9545) < -0.1 and cell.edge_voltage_v(0.0005) > 0.1


def test_a_step_requested_late_starts_where_the_last_ended_and_a_forgotten_hold_ends_by_itself():
    wall = [0.0]
    cell = SphericalDiffusionCell(active_mass_g=MASS_G, initial_theta=0.95)
    cell.bound_holds(lambda: wall[0], max_hold_wall_s=5.0)
    cell.chain_steps(True)
    cell.start(ConstantCurrent(current_a=2e-4, v_limit_v=4.5, duration_s=30.0, record_every_s=10.0))
    cell.advance_to(500.0)
    assert not cell.is_running and cell.end_reason == "duration"
    assert cell.holding and cell.time_s == pytest.approx(30.0)     # held at the end, not rested on to 500 s
    cell.take_points()
    cell.start(OCV(duration_s=20.0, record_every_s=10.0))           # the runner's late request
    assert cell.technique_start_s == pytest.approx(30.0)
    assert cell.take_points()[0].time_s == pytest.approx(30.0)
    cell.advance_to(500.0)
    assert cell.holding and cell.time_s == pytest.approx(50.0)
    wall[0] = 6.0                                                   # nobody asks for a next step
    cell.advance_to(500.0)
    assert not cell.holding and cell.time_s == pytest.approx(500.0)


def test_outside_a_protocol_sequence_the_cell_rests_on_after_a_technique():
    cell = SphericalDiffusionCell(active_mass_g=MASS_G, initial_theta=0.95)
    cell.start(OCV(duration_s=30.0, record_every_s=10.0))
    cell.advance_to(200.0)
    assert not cell.holding and cell.time_s == pytest.approx(200.0)
