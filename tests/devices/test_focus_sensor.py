"""Line focus sensor (devices/focus_sensor.py) on the fake PySpin camera."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.devices.base import DeviceInfo, DeviceLost, DeviceTimeout, FocusSensor, MissingVendorLibrary, OutOfRange, Profile, Roi
from operascope.devices.flir import FlirCamera
from operascope.devices.focus_sensor import FlirLineSensor
from operascope.simulators.emulators import fake_pyspin as spin
from tests.fakes.flir import FAKE, FastClock, PatternRenderer, assert_sdk_clean

SERIAL = "19000001"
ROI = (16, 8, 96, 40)  # x, y, width, height




def sensor(**kw) -> FlirLineSensor:
    args = dict(serial=SERIAL, roi=ROI, exposure_ms=1.0, frame_rate_hz=200.0, sdk_module=FAKE)
    args.update(kw)
    return FlirLineSensor(**args)


@pytest.mark.parametrize("profile_axis, summed_axis", [(1, 0), (0, 1)])
def test_profile_is_the_roi_summed_along_the_line(fake, profile_axis, summed_axis):
    renderer = PatternRenderer()
    spin.attach_camera(SERIAL, renderer)
    with sensor(profile_axis=profile_axis) as line:
        profile = line.read_profile(1.0)
        assert line.n_pixels == (96 if profile_axis == 1 else 40)
        assert line.info() == DeviceInfo(model=spin.GS3_MODEL, serial=SERIAL, firmware="fake-2.0", driver="flir_line")
    expected = PatternRenderer.pattern(Roi(*ROI)).sum(axis=summed_axis, dtype=np.float64)
    assert profile.values.dtype == np.float64 and profile.values.shape == (line.n_pixels,)
    np.testing.assert_array_equal(profile.values, expected)
    assert {call[0] for call in renderer.calls} == {Roi(*ROI)}
    assert_sdk_clean()


def test_camera_runs_newest_only_so_each_profile_is_the_latest(fake):
    clock = FastClock(speed=10.0)
    spin.attach_camera(SERIAL, PatternRenderer(), clock=clock)
    with sensor(clock=clock, frame_rate_hz=100.0) as line:
        first = line.read_profile(1.0)
        clock.sleep_s(0.3)  # 30 exposures
        second = line.read_profile(1.0)
        assert second.time_s - first.time_s >= 0.3
        assert line.stats.dropped_frames >= 20  # older exposures were overwritten, not queued
        assert spin.stream_stats(SERIAL)["queued"] <= 1


class GaussianLine(FocusSensor):
    """A tiny FocusSensor backend: a Gaussian line whose centre the test sets (px)."""

    def __init__(self, n_pixels: int = 256) -> None:
        self._n = n_pixels
        self._open = False
        self.centre_px = 100.0

    def open(self):
        self._open = True

    def close(self):
        self._open = False

    def info(self):
        return DeviceInfo("gaussian line", "0")

    @property
    def is_open(self):
        return self._open

    @property
    def n_pixels(self):
        return self._n

    def read_profile(self, timeout_s=1.0):
        x = np.arange(self._n)
        return Profile(100.0 + 60_000.0 * np.exp(-0.5 * ((x - self.centre_px) / 4.0) ** 2), 0.0)


def test_line_frame_source_round_trips_a_focus_sensor_backend(fake):
    backend = GaussianLine()
    spin.attach_camera(SERIAL, spin.LineFrameSource(backend, profile_axis=1))
    with sensor(roi=(0, 0, 256, 32)) as line:
        backend.centre_px = 120.0
        profile = line.read_profile(1.0)
        truth = backend.read_profile().values
        np.testing.assert_allclose(profile.values, truth, atol=32 * 0.5 + 1e-9)  # 12-bit rounding per row
        assert int(np.argmax(profile.values)) == 120
        backend.centre_px = 80.0
        assert int(np.argmax(line.read_profile(1.0).values)) == 80


def test_incomplete_frames_are_skipped_within_the_timeout(fake):
    spin.attach_camera(SERIAL, PatternRenderer())
    with sensor(frame_rate_hz=20.0) as line:  # slow enough that no newer frame overwrites a marked one
        line.read_profile(1.0)
        spin.inject_incomplete(SERIAL, 2)
        profile = line.read_profile(1.0)
        np.testing.assert_array_equal(profile.values, PatternRenderer.pattern(Roi(*ROI)).sum(axis=0))
        assert line.stats.incomplete_frames == 2


def test_timeout_unplug_and_automatic_reconnect(fake):
    clock = FastClock(speed=10.0)
    spin.attach_camera(SERIAL, PatternRenderer(), clock=clock)
    with sensor(clock=clock, frame_rate_hz=50.0) as line:
        line.read_profile(1.0)
        spin.stall(SERIAL, 5.0)
        with pytest.raises(DeviceTimeout):
            line.read_profile(0.1)
        spin.unplug(SERIAL)
        with pytest.raises(DeviceLost):
            line.read_profile(0.5)
        with pytest.raises(DeviceLost, match="next reconnect attempt in"):
            line.read_profile(0.5)  # no reconnect storm: one attempt per interval
        clock.sleep_s(1.0)
        with pytest.raises(DeviceLost, match="no camera with serial"):
            line.read_profile(0.5)  # the reconnect attempt finds nothing yet
        spin.replug(SERIAL)
        clock.sleep_s(1.0)
        profile = line.read_profile(1.0)  # reconnects, re-applies ROI and streams again
        assert profile.values.shape == (96,)
        assert line.stats.reconnects == 1
        spin.unplug(SERIAL)
        with pytest.raises(DeviceLost):
            line.read_profile(0.5)
        spin.replug(SERIAL)
        line.reconnect()  # explicit, as the focus lock does: no waiting for the interval
        assert line.read_profile(1.0).values.shape == (96,)
        assert line.stats.reconnects == 2
    assert_sdk_clean()


def test_imaging_camera_and_focus_sensor_share_the_sdk(fake):
    spin.attach_camera("A", PatternRenderer())
    spin.attach_camera("B", PatternRenderer())
    camera = FlirCamera(index=0, sdk_module=FAKE)
    line = FlirLineSensor(index=1, roi=ROI, frame_rate_hz=200.0, sdk_module=FAKE)
    with camera, line:
        camera.configure(1.0, 100.0, Roi(0, 0, 64, 32), "Mono16")
        camera.start()
        assert camera.read(1.0).pixels.shape == (32, 64)
        assert line.read_profile(1.0).values.shape == (96,)
        assert line.info().serial == "B" and camera.info().serial == "A"
    assert not spin.is_initialised("A") and not spin.is_initialised("B")
    assert_sdk_clean()


def test_roi_the_camera_cannot_do_is_refused_and_nothing_stays_open(fake):
    spin.attach_camera(SERIAL, PatternRenderer())
    with pytest.raises(OutOfRange, match="multiple of 4"):
        sensor(roi=(0, 0, 130, 32)).open()
    assert not spin.is_initialised(SERIAL)
    assert_sdk_clean()


def test_bad_arguments_and_missing_sdk(fake):
    with pytest.raises(OutOfRange, match="profile_axis"):
        FlirLineSensor(profile_axis=2)
    with pytest.raises(OutOfRange, match="roi"):
        FlirLineSensor(roi=(0, 0, 128))
    with pytest.raises(OutOfRange, match="exposure_ms"):
        FlirLineSensor(exposure_ms=0.0)
    with pytest.raises(MissingVendorLibrary, match="spinnaker_python"):
        FlirLineSensor(sdk_module="operascope_no_such_sdk").open()


def test_line_sensor_on_the_simulated_world_finds_the_line_where_the_world_puts_it(fake):
    from operascope.config.loader import load_config
    from operascope.simulators.world.world import World

    world = World(load_config(None))
    world.clock.speed = 50.0
    world.set_laser(enabled=True, power_w=0.005)
    spin.attach_world(world)
    with FlirLineSensor(index=1, roi=(0, 0, 256, 32), frame_rate_hz=100.0, sdk_module=FAKE, clock=world.clock) as line:
        profile = line.read_profile(2.0)
        assert line.info().serial == "EMU-FOCUS-1" and line.n_pixels == 256
    centre_px = world.focus_line_centre_px()
    weights = np.clip(profile.values - 0.5 * profile.values.max(), 0, None)
    estimate_px = float((weights * np.arange(256)).sum() / weights.sum())
    assert abs(estimate_px - centre_px) < 1.5
    assert_sdk_clean()


def test_constructed_from_its_config_section_as_the_rig_factory_does(fake):
    from operascope.config.schema import FlirLineSensorConfig

    spin.attach_camera("A", PatternRenderer())
    spin.attach_camera("B", PatternRenderer())
    section = FlirLineSensorConfig(driver="flir_line", sdk_module=FAKE)  # defaults: index 1, 128 x 256 ROI
    with FlirLineSensor(**section.model_dump(exclude={"driver"})) as line:
        profile = line.read_profile(1.0)
        assert line.info().serial == "B"
    np.testing.assert_array_equal(profile.values, PatternRenderer.pattern(Roi(0, 0, 128, 256)).sum(axis=0))
    assert_sdk_clean()
