"""FLIR camera driver (devices/flir.py) against the fake PySpin: opening errors, SDK errors, unplug, world faults, config."""

from __future__ import annotations

import time

import numpy as np
import pytest

from operascope.devices.base import (
    Camera,
    CameraSettings,
    DeviceError,
    DeviceInfo,
    DeviceLost,
    DeviceTimeout,
    Frame,
    IncompleteFrame,
    MissingVendorLibrary,
    OutOfRange,
    Roi,
)
from operascope.devices.flir import FlirCamera
from operascope.simulators.emulators import fake_pyspin as spin

from tests.fakes.flir import FAKE, ROI, SERIAL, assert_sdk_clean, attach  # noqa: F401




def test_wrong_serial_camera_in_use_and_leaks_leave_nothing_open(fake):
    attach()
    with pytest.raises(DeviceLost, match=rf"no camera with serial 'nope' \(present: \['{SERIAL}'\]\)"):
        FlirCamera(serial="nope", sdk_module=FAKE).open()
    assert_sdk_clean()
    with pytest.raises(DeviceLost, match="index 3"):
        FlirCamera(index=3, sdk_module=FAKE).open()
    assert_sdk_clean()
    spin.set_in_use(SERIAL)
    with pytest.raises(DeviceError, match="another program holds the camera"):
        FlirCamera(serial=SERIAL, sdk_module=FAKE).open()
    assert_sdk_clean()
    # the fake's leak check can fail: a surviving camera reference blocks ReleaseInstance
    system = spin.System.GetInstance()
    cams = system.GetCameras()
    with pytest.raises(spin.SpinnakerException) as err:
        system.ReleaseInstance()
    assert err.value.errorcode == spin.SPINNAKER_ERR_RESOURCE_IN_USE
    cams.Clear()
    system.ReleaseInstance()


def test_close_after_streaming_deinitialises_and_releases_the_system(fake):
    attach()
    cam = FlirCamera(serial=SERIAL, sdk_module=FAKE)
    cam.open()
    cam.configure(1.0, 200.0, ROI, "Mono16")
    cam.start()
    cam.read(1.0)
    assert spin.is_initialised(SERIAL)
    cam.close()
    cam.close()  # idempotent
    assert not cam.is_open and not spin.is_initialised(SERIAL)
    assert_sdk_clean()


def test_missing_sdk_names_the_flir_wheel(fake):
    for module in ("operascope_no_such_sdk", "PySpin"):
        try:
            __import__(module)
        except ImportError:
            pass
        else:  # pragma: no cover - only on a machine with the real SDK
            continue
        with pytest.raises(MissingVendorLibrary) as err:
            FlirCamera(sdk_module=module).open()
        text = str(err.value)
        assert "spinnaker_python" in text and "pip install PySpin" not in text and "never install it" in text
    with pytest.raises(MissingVendorLibrary, match="exact case"):
        FlirCamera(sdk_module="pyspin").open()
    with pytest.raises(MissingVendorLibrary, match="not FLIR's Spinnaker binding"):
        FlirCamera(sdk_module="json").open()


def test_bad_constructor_arguments_are_named(fake):
    with pytest.raises(OutOfRange, match="buffer_handling"):
        FlirCamera(buffer_handling="Newest")
    with pytest.raises(OutOfRange, match="buffer_count"):
        FlirCamera(buffer_count=0)
    with pytest.raises(OutOfRange, match="consecutive_timeouts_lost"):
        FlirCamera(consecutive_timeouts_lost=0)


# ----------------------------------------------------------------------------- frame sources


class TinyCamera(Camera):
    """A minimal operascope.devices.base.Camera backend: frames of a constant that counts up."""

    def __init__(self) -> None:
        self._open = False
        self._streaming = False
        self._settings = CameraSettings(1.0, 10.0, Roi(0, 0, 1920, 1200), "Mono16", 0.0)
        self._count = 0

    def open(self):
        self._open = True

    def close(self):
        self._open = False

    def info(self):
        return DeviceInfo("tiny", "0")

    @property
    def is_open(self):
        return self._open

    @property
    def sensor_shape(self):
        return (1200, 1920)

    def configure(self, exposure_ms, frame_rate_hz, roi=None, pixel_format="Mono16", gain_db=0.0):
        self._settings = CameraSettings(exposure_ms, frame_rate_hz, roi, pixel_format, gain_db)
        return self._settings

    def settings(self):
        return self._settings

    def start(self):
        self._streaming = True

    def stop(self):
        self._streaming = False

    @property
    def is_streaming(self):
        return self._streaming

    def read(self, timeout_s=1.0):
        self._count += 1
        roi = self._settings.roi
        value = int(self._settings.exposure_ms * 100) + self._count
        return Frame(np.full((roi.height, roi.width), value, np.uint16), self._count, 0, 0.0)


def test_fake_camera_can_be_fed_by_any_camera_backend(fake):
    backend = TinyCamera()
    spin.attach_camera(SERIAL, backend)
    with FlirCamera(serial=SERIAL, sdk_module=FAKE) as cam:
        cam.configure(3.0, 100.0, ROI, "Mono12p")
        cam.start()
        first, second = cam.read(1.0), cam.read(1.0)
    assert backend.settings().roi == ROI and backend.settings().exposure_ms == 3.0
    assert first.pixels.shape == (32, 64)
    assert int(first.pixels[0, 0]) == 301 and int(second.pixels[0, 0]) == 302


def test_fake_camera_fed_by_the_simulated_world_sees_the_led(fake):
    from operascope.config.loader import load_config
    from operascope.simulators.world.world import World

    world = World(load_config(None))
    world.clock.speed = 50.0
    spin.attach_world(world)
    roi = Roi(64, 64, 128, 96)
    with FlirCamera(index=0, sdk_module=FAKE, clock=world.clock) as cam:
        cam.configure(2.5, 10.0, roi, "Mono12Packed")
        cam.start()
        world.set_led(enabled=False)
        dark = cam.read(2.0)
        world.set_led(enabled=True, current_a=0.5)
        lit = cam.read(2.0)
        assert cam.info().serial == "EMU-CAM-0"
    assert lit.pixels.shape == (96, 128) and lit.pixels.max() <= 4095
    assert lit.frame_id == dark.frame_id + 1
    assert lit.pixels.mean() > 20 * max(dark.pixels.mean(), 1.0)  # the world's LED lights the frame
    assert_sdk_clean()


def test_sdk_error_replies_are_typed_and_an_io_error_recovers_by_reconnect(fake):
    attach()
    with FlirCamera(serial=SERIAL, sdk_module=FAKE) as cam:
        cam.configure(1.0, 200.0, ROI, "Mono16")
        cam.start()
        cam.read(1.0)
        spin.inject_error(SERIAL, spin.SPINNAKER_ERR_INVALID_BUFFER)
        with pytest.raises(DeviceError, match=r"\[-1013\]") as err:
            cam.read(1.0)
        assert not isinstance(err.value, (DeviceTimeout, DeviceLost))
        cam.read(1.0)  # a one-off error reply does not end the stream
        spin.inject_error(SERIAL, spin.SPINNAKER_ERR_IO)
        with pytest.raises(DeviceLost):
            cam.read(1.0)
        cam.reconnect()  # the camera is still there: recovery works at once
        assert cam.is_streaming and cam.read(1.0).pixels.shape == (32, 64)
    assert_sdk_clean()


def test_drops_in_transport_show_as_frame_id_gaps(fake):
    attach()
    with FlirCamera(serial=SERIAL, sdk_module=FAKE) as cam:
        cam.configure(1.0, 200.0, ROI, "Mono8")
        cam.start()
        first = cam.read(1.0)
        spin.drop_frames(SERIAL, 3)
        second = cam.read(1.0)
    assert second.frame_id == first.frame_id + 4
    assert cam.stats.dropped_frames == 3


def test_unplugged_before_configure_is_reported_as_lost(fake):
    attach()
    with FlirCamera(serial=SERIAL, sdk_module=FAKE) as cam:
        spin.unplug(SERIAL)
        with pytest.raises(DeviceLost):
            cam.configure(1.0, 10.0, ROI, "Mono16")
        with pytest.raises(DeviceLost):
            cam.settings()
        with pytest.raises(DeviceLost):
            cam.start()
        cam.stop()  # idempotent, never raises
    assert_sdk_clean()


def test_unplug_wakes_a_reader_blocked_in_another_thread(fake):
    import threading

    attach()
    outcome: list[BaseException] = []
    with FlirCamera(serial=SERIAL, sdk_module=FAKE) as cam:
        cam.configure(1.0, 100.0, ROI, "Mono8")
        cam.start()
        cam.read(1.0)
        spin.stall(SERIAL, 60.0)

        def reader() -> None:
            try:
                cam.read(5.0)
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                outcome.append(exc)

        thread = threading.Thread(target=reader)
        started = time.monotonic()
        thread.start()
        time.sleep(0.05)
        spin.unplug(SERIAL)
        thread.join(2.0)
        assert not thread.is_alive() and time.monotonic() - started < 1.0
        outcome_types = [type(e) for e in outcome]
        outcome.clear()  # drop the traceback before the leak check
    assert outcome_types == [DeviceLost]
    assert_sdk_clean()


def test_faults_injected_in_the_simulated_world_reach_the_driver(fake):
    from operascope.config.loader import load_config
    from operascope.simulators.world.world import World

    world = World(load_config(None))
    world.clock.speed = 50.0
    spin.attach_world(world)
    with FlirCamera(index=0, sdk_module=FAKE, clock=world.clock) as cam:
        cam.configure(1.0, 20.0, Roi(0, 0, 64, 32), "Mono16")
        cam.start()
        outcomes = [cam.read(2.0).frame_id]
        world.inject_fault("camera", "incomplete_frame", count=2)
        for _ in range(24):  # frames queued before the injection (< 20 buffers) arrive intact
            try:
                outcomes.append(cam.read(2.0).frame_id)
            except IncompleteFrame:
                outcomes.append("incomplete")
        assert outcomes.count("incomplete") == 2 and cam.stats.incomplete_frames == 2
        first_bad = outcomes.index("incomplete")
        assert outcomes[first_bad + 1] == "incomplete" and outcomes[first_bad + 2] == outcomes[first_bad - 1] + 3
        world.inject_fault("camera", "device_lost", duration_s=20.0)
        with pytest.raises(DeviceLost):
            cam.read(2.0)
        with pytest.raises(DeviceLost, match="no camera with serial"):
            cam.reconnect()  # the world keeps it away for 20 s
        world.clock.sleep_s(20.0)
        cam.reconnect()
        frame = cam.read(2.0)
        assert cam.stats.last_reconnect_gap_frames >= 20 * 20 - 1
        assert frame.pixels.shape == (32, 64)
    assert_sdk_clean()


def test_constructed_from_its_config_section_as_the_rig_factory_does(fake):
    from operascope.config.schema import FlirCameraConfig

    attach()
    section = FlirCameraConfig(driver="flir", serial=SERIAL, sdk_module=FAKE, buffer_handling="NewestOnly", buffer_count=5)
    with FlirCamera(**section.model_dump(exclude={"driver"})) as cam:
        assert cam.info().serial == SERIAL
        assert dict(spin.write_log(SERIAL))["StreamBufferHandlingMode"] == "NewestOnly"
        assert dict(spin.write_log(SERIAL))["StreamBufferCountManual"] == 5
    assert_sdk_clean()
