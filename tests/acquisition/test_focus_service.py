"""acquisition.focus_service: the sensor tap, published profiles/samples, the laser-on rule."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.acquisition.focus_service import SensorTap
from operascope.acquisition.microscope import Microscope
from operascope.config.loader import load_config


def test_sensor_tap_passes_profiles_through_and_keeps_the_newest():
    # moved from tests/gui/test_window_with_rig.py (was gui.profile_tap.ProfileTap)
    from operascope.simulators.devices.backends import build_simulated_devices
    from operascope.simulators.world.world import World

    world = World(load_config())
    tap = SensorTap(build_simulated_devices(world)["focus_sensor"])
    assert tap.latest() == (None, 0)
    with tap:
        first = tap.read_profile(1.0)
        second = tap.read_profile(1.0)
        latest, reads = tap.latest()
        assert latest is second and reads == 2 and tap.n_pixels == first.values.size
        assert tap.info().model
    assert not tap.is_open


def test_focus_service_publishes_profiles_and_switches_the_laser_on_for_a_lock():
    with Microscope.from_config(None, speed=20, roi=(0, 0, 32, 32)) as scope:
        assert scope.latest_focus_profile() == (None, 0)
        profile = scope.read_focus_profile()
        assert isinstance(profile, np.ndarray) and profile.dtype == np.float64 and profile.size > 10
        published, reads = scope.latest_focus_profile()
        assert reads == 1 and np.array_equal(published, profile)
        assert not scope.set_laser().enabled
        samples = []
        unsubscribe = scope.subscribe_focus_samples(samples.append)
        calibration = scope.lock_focus()   # calibrates first, laser switched on at the configured power
        assert isinstance(calibration, dict) and calibration
        state = scope.set_laser()
        assert state.enabled and state.power_setpoint_w == pytest.approx(scope.config.focus_lock.laser_power_w)
        assert scope.read_focus_profile() is None          # the running lock owns the sensor
        assert scope.latest_focus_profile()[1] > 1          # ... and its profiles are published
        scope.unlock_focus()
        unsubscribe()
        assert samples and scope.focus.state == "off"
