"""Sample z moves relative to the cover-glass interface (swelling ∝ SOC + creep); drift presets."""

from __future__ import annotations

import pytest

from operascope.config.loader import load_config
from operascope.devices.base import ConstantCurrent
from tests.fakes.sim_world import make_world, open_devices


def test_drift_presets_fill_the_default_and_an_explicit_value_wins():
    assert load_config().simulation.drift_z_nm_s == pytest.approx(0.05)
    assert load_config(overrides={"simulation": {"drift_preset": "stress"}}).simulation.drift_z_nm_s == pytest.approx(3.0)
    assert load_config(overrides={"simulation": {"drift_preset": "stress", "drift_z_nm_s": 1.5}}).simulation.drift_z_nm_s == 1.5


def test_swelling_moves_the_sample_but_not_the_interface():
    world = make_world(speed=5000.0, drift_z_nm_s=0.0, drift_noise_nm=0.0, stage_noise_nm=0.0,
                       swelling_nm_per_soc=200.0, swelling_creep_nm_s=0.01)
    potentiostat = open_devices(world)["potentiostat"]
    start = world.truth()
    line_start = world.focus_line_centre_px()
    potentiostat.start(ConstantCurrent(current_a=2e-4, v_limit_v=4.3, duration_s=1800.0, record_every_s=10.0))
    while potentiostat.is_running():
        world.clock.sleep_s(100.0)
    end = world.truth()
    expected = 200.0 * end["soc"] + 0.01 * end["time_s"]
    assert end["soc"] > 0.3
    assert end["sample_z_rel_interface_nm"] == pytest.approx(expected, rel=1e-3)
    # the interface (what the focus sensor sees) has not moved; the sample (what the camera sees) has
    assert end["interface_defocus_nm"] == pytest.approx(start["interface_defocus_nm"], abs=1e-6)
    assert world.focus_line_centre_px() == pytest.approx(line_start, abs=1e-9)
    assert end["defocus_nm"] == pytest.approx(start["defocus_nm"] - (expected - start["sample_z_rel_interface_nm"]), abs=0.5)


def test_swelling_off_by_default():
    world = make_world()
    truth = world.truth()
    assert truth["sample_z_rel_interface_nm"] == 0.0 and truth["defocus_nm"] == truth["interface_defocus_nm"]
