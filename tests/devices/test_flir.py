"""FLIR camera driver (devices/flir.py) against the fake PySpin emulator (simulators/fake_pyspin.py)."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.devices.base import (
    CameraSettings,
    DeviceInfo,
    DeviceLost,
    DeviceTimeout,
    IncompleteFrame,
    OutOfRange,
    Roi,
)
from operascope.devices.flir import FlirCamera
from operascope.simulators.emulators import fake_pyspin as spin

from tests.fakes.flir import FAKE, ROI, SERIAL, FastClock, PatternRenderer, assert_sdk_clean, attach  # noqa: F401




@pytest.mark.parametrize("frame_rate_nodes", ["GEN2", "SFNC"])
def test_configure_writes_in_safe_order_and_reads_back(fake, frame_rate_nodes):
    attach(frame_rate_nodes=frame_rate_nodes)
    with FlirCamera(serial=SERIAL, sdk_module=FAKE, buffer_count=7) as cam:
        spin.clear_write_log(SERIAL)
        settings = cam.configure(2.5, 50.0, ROI, "Mono16", 3.0)
        assert settings == CameraSettings(exposure_ms=2.5, frame_rate_hz=50.0, roi=ROI, pixel_format="Mono16", gain_db=3.0)
        assert cam.settings() == settings
        log = spin.write_log(SERIAL)
        names = [name for name, _ in log]
        rate_enable = ["AcquisitionFrameRateAuto", "AcquisitionFrameRateEnabled"] if frame_rate_nodes == "GEN2" else ["AcquisitionFrameRateEnable"]
        expected = ["PixelFormat", "Width", "OffsetX", "Height", "OffsetY", "AcquisitionMode", *rate_enable,
                    "AcquisitionFrameRate", "ExposureAuto", "ExposureTime", "GainAuto", "Gain", "GammaEnable",
                    "StreamBufferHandlingMode", "StreamBufferCountMode", "StreamBufferCountManual"]
        assert names == expected
        values = dict(log)
        assert values["ExposureAuto"] == "Off" and values["GainAuto"] == "Off" and values["GammaEnable"] is False
        assert values["StreamBufferCountManual"] == 7 and values["StreamBufferHandlingMode"] == "OldestFirst"
        if frame_rate_nodes == "GEN2":
            assert values["AcquisitionFrameRateAuto"] == "Off" and values["AcquisitionFrameRateEnabled"] is True
        info = cam.info()
        assert info == DeviceInfo(model=spin.GS3_MODEL, serial=SERIAL, firmware="fake-2.0", driver="flir")
        assert cam.sensor_shape == (1200, 1920)
    assert_sdk_clean()


def test_roi_moves_shrink_before_offset_and_offset_before_grow(fake):
    attach()
    with FlirCamera(serial=SERIAL, sdk_module=FAKE) as cam:
        cam.configure(1.0, 20.0, Roi(1800, 1100, 120, 100), "Mono8")  # small ROI in the far corner
        spin.clear_write_log(SERIAL)
        settings = cam.configure(1.0, 20.0, Roi(0, 0, 1920, 1200), "Mono8")  # grow back: offsets first
        assert settings.roi == Roi(0, 0, 1920, 1200)
        names = [n for n, _ in spin.write_log(SERIAL)]
        assert names.index("OffsetX") < names.index("Width") and names.index("OffsetY") < names.index("Height")


def test_frames_carry_ids_timestamps_and_the_rendered_pixels(fake):
    clock = FastClock(speed=4.0)
    renderer = attach(clock=clock)
    with FlirCamera(serial=SERIAL, sdk_module=FAKE, clock=clock) as cam:
        cam.configure(4.0, 100.0, ROI, "Mono16", 6.0)
        cam.start()
        frames = [cam.read(1.0) for _ in range(5)]
        cam.stop()
    assert [f.frame_id for f in frames] == list(range(5))
    stamps = np.array([f.camera_time_ns for f in frames], dtype=np.int64)
    np.testing.assert_allclose(np.diff(stamps), 10_000_000, atol=1)  # 100 Hz on the camera clock
    assert all(np.diff([f.host_time_s for f in frames]) >= 0)
    for frame in frames:
        assert frame.pixels.dtype == np.uint16 and frame.pixels.shape == (32, 64)
        np.testing.assert_array_equal(frame.pixels, PatternRenderer.pattern(ROI))
    assert {call for call in renderer.calls} == {(ROI, 4.0, 6.0)}


@pytest.mark.parametrize("pixel_format", ["Mono12Packed", "Mono12p", "Mono16"])
def test_twelve_bit_formats_give_exact_counts(fake, pixel_format):
    attach()
    with FlirCamera(serial=SERIAL, sdk_module=FAKE) as cam:
        cam.configure(1.0, 200.0, ROI, pixel_format)
        cam.start()
        frame = cam.read(1.0)
    expected = PatternRenderer.pattern(ROI)
    assert expected.max() > 4000 and np.any(expected % 16)  # the check uses the low bits too
    np.testing.assert_array_equal(frame.pixels, expected)


def test_mono8_gives_the_top_eight_bits_as_eight_bit_values(fake):
    attach()
    with FlirCamera(serial=SERIAL, sdk_module=FAKE) as cam:
        cam.configure(1.0, 200.0, ROI, "Mono8")
        cam.start()
        frame = cam.read(1.0)
    np.testing.assert_array_equal(frame.pixels, PatternRenderer.pattern(ROI) >> 4)
    assert frame.pixels.dtype == np.uint16


def test_fake_packs_mono12_in_the_vendor_byte_layouts():
    counts = np.array([[0xABC, 0x123]], dtype=np.uint16)
    assert spin.pack_pixels(counts, "Mono12Packed").tolist() == [[0xAB, 0x3C, 0x12]]  # IIDC
    assert spin.pack_pixels(counts, "Mono12p").tolist() == [[0xBC, 0x3A, 0x12]]  # PFNC
    assert spin.pack_pixels(counts, "Mono16").tolist() == [[0xABC0, 0x1230]]  # MSB-aligned


def test_oldest_first_keeps_the_backlog_and_newest_only_the_latest(fake):
    clock = FastClock(speed=10.0)
    attach(clock=clock, camera_memory_bytes=0)  # no frame memory in the camera: a full pool drops at once
    with FlirCamera(serial=SERIAL, sdk_module=FAKE, clock=clock, buffer_handling="OldestFirst", buffer_count=4) as cam:
        cam.configure(1.0, 100.0, ROI, "Mono8")
        cam.start()
        clock.sleep_s(0.2)  # ~20 exposures into 4 buffers
        ids = [cam.read(1.0).frame_id for _ in range(5)]
        assert ids[:4] == [0, 1, 2, 3]
        assert ids[4] > 4  # the pool was full: later exposures were dropped, the ID jumps
        assert cam.stats.dropped_frames == ids[4] - 4
    spin.reset()
    attach(clock=clock)
    with FlirCamera(serial=SERIAL, sdk_module=FAKE, clock=clock, buffer_handling="NewestOnly", buffer_count=4) as cam:
        cam.configure(1.0, 100.0, ROI, "Mono8")
        cam.start()
        first = cam.read(1.0)
        clock.sleep_s(0.2)  # ~20 exposures, only the newest is kept
        second = cam.read(1.0)
        assert second.frame_id - first.frame_id >= 15
        assert cam.stats.dropped_frames == second.frame_id - first.frame_id - 1
        assert spin.stream_stats(SERIAL)["queued"] <= 1


def test_a_full_host_pool_makes_the_usb3_camera_hold_frames_not_drop_them(fake):
    clock = FastClock(speed=10.0)
    attach(clock=clock)  # default: the camera's frame memory holds what the host cannot take yet
    with FlirCamera(serial=SERIAL, sdk_module=FAKE, clock=clock, buffer_handling="OldestFirst", buffer_count=4) as cam:
        cam.configure(1.0, 100.0, ROI, "Mono8")
        cam.start()
        clock.sleep_s(0.2)  # ~20 exposures, 4 host buffers
        first = cam.read(1.0).frame_id
        assert spin.stream_stats(SERIAL)["held_in_camera"] > 0  # the backlog waits in the camera
        ids = [first] + [cam.read(1.0).frame_id for _ in range(11)]
        assert ids == list(range(12))  # nothing lost: held frames follow in order
        assert cam.stats.dropped_frames == 0


def test_configure_while_streaming_stops_reconfigures_and_resumes(fake):
    attach()
    with FlirCamera(serial=SERIAL, sdk_module=FAKE) as cam:
        cam.configure(1.0, 200.0, ROI, "Mono16")
        cam.start()
        first = cam.read(1.0)
        settings = cam.configure(2.0, 100.0, Roi(0, 0, 32, 16), "Mono8")
        assert cam.is_streaming and settings.roi == Roi(0, 0, 32, 16) and settings.pixel_format == "Mono8"
        frame = cam.read(1.0)
    assert frame.pixels.shape == (16, 32)
    assert frame.frame_id == first.frame_id + 1  # IDs continue across the restart


def test_open_by_index_picks_that_camera(fake):
    attach("111")
    attach("222")
    with FlirCamera(index=1, sdk_module=FAKE) as cam:
        assert cam.info().serial == "222"
    assert_sdk_clean()


# ----------------------------------------------------------------------------- failures


def test_grab_timeout_is_typed_and_k_in_a_row_means_lost(fake):
    clock = FastClock(speed=20.0)
    attach(clock=clock)
    with FlirCamera(serial=SERIAL, sdk_module=FAKE, clock=clock, consecutive_timeouts_lost=3) as cam:
        cam.configure(1.0, 100.0, ROI, "Mono8")
        cam.start()
        cam.read(1.0)
        spin.stall(SERIAL, 5.0)
        for _ in range(2):
            with pytest.raises(DeviceTimeout, match="no frame within"):
                cam.read(0.1)
        cam.read(10.0)  # the stall ends: a frame resets the count
        spin.stall(SERIAL, 100.0)
        for _ in range(2):
            with pytest.raises(DeviceTimeout):
                cam.read(0.1)
        with pytest.raises(DeviceLost, match="3 grab timeouts in a row"):
            cam.read(0.1)
        assert cam.stats.timeouts == 5
        with pytest.raises(DeviceLost, match="reconnect"):
            cam.read(0.1)  # stays lost until reconnect()
    assert_sdk_clean()


def test_incomplete_frames_are_counted_released_and_never_returned(fake):
    attach()
    with FlirCamera(serial=SERIAL, sdk_module=FAKE, buffer_count=3) as cam:
        cam.configure(1.0, 200.0, ROI, "Mono16")
        cam.start()
        assert cam.read(1.0).frame_id == 0
        spin.inject_incomplete(SERIAL, 2)
        for _ in range(2):
            with pytest.raises(IncompleteFrame, match="missing packets"):
                cam.read(1.0)
            assert spin.stream_stats(SERIAL)["outstanding"] == 0
        good = cam.read(1.0)
        assert cam.stats.incomplete_frames == 2
        assert good.frame_id >= 3  # the two incomplete IDs are a gap, not data
        np.testing.assert_array_equal(good.pixels, PatternRenderer.pattern(ROI))


def test_every_image_is_released_so_a_small_pool_never_stalls(fake):
    attach()
    with FlirCamera(serial=SERIAL, sdk_module=FAKE, buffer_count=2) as cam:
        cam.configure(1.0, 400.0, ROI, "Mono12Packed")
        cam.start()
        spin.inject_incomplete(SERIAL, 3)
        complete = 0
        for _ in range(25):
            try:
                cam.read(0.5)
                complete += 1
            except IncompleteFrame:
                pass
            assert spin.stream_stats(SERIAL)["outstanding"] == 0
        assert complete >= 22


def test_fake_pool_runs_dry_when_images_are_not_released(fake):
    attach(camera_memory_bytes=0)  # no camera frame memory: exposures meeting a dry pool are lost
    system = spin.System.GetInstance()
    cams = system.GetCameras()
    cam = cams.GetBySerial(SERIAL)
    cam.Init()
    nodemap = cam.GetNodeMap()  # node access works after Init
    spin.CIntegerPtr(nodemap.GetNode("Width")).SetValue(64)
    spin.CIntegerPtr(nodemap.GetNode("Height")).SetValue(32)
    stream = cam.GetTLStreamNodeMap()
    mode = spin.CEnumerationPtr(stream.GetNode("StreamBufferCountMode"))
    mode.SetIntValue(mode.GetEntryByName("Manual").GetValue())
    spin.CIntegerPtr(stream.GetNode("StreamBufferCountManual")).SetValue(2)
    cam.BeginAcquisition()
    held = [cam.GetNextImage(1000), cam.GetNextImage(1000)]
    with pytest.raises(spin.SpinnakerException) as err:
        cam.GetNextImage(100)  # frames keep coming but no buffer is free
    assert err.value.errorcode == spin.SPINNAKER_ERR_TIMEOUT
    held[0].Release()
    assert cam.GetNextImage(1000).GetFrameID() > held[1].GetFrameID() + 1  # dry-pool exposures were dropped


def test_unplug_mid_stream_is_lost_and_replug_reconnects_with_a_frame_gap(fake):
    clock = FastClock(speed=10.0)
    attach(clock=clock)
    removed = []

    class Handler(spin.InterfaceEventHandler):
        def OnDeviceRemoval(self, camera):  # noqa: N802
            removed.append(camera.IsValid())

    handler = Handler()
    system = spin.System.GetInstance()
    system.RegisterEventHandler(handler)
    with FlirCamera(serial=SERIAL, sdk_module=FAKE, clock=clock) as cam:
        settings = cam.configure(2.0, 10.0, ROI, "Mono12Packed", 1.5)
        cam.start()
        last = [cam.read(1.0) for _ in range(3)][-1]
        spin.unplug(SERIAL)
        assert removed == [False]
        with pytest.raises(DeviceLost, match="unplugged"):
            cam.read(1.0)
        with pytest.raises(DeviceLost, match="no camera with serial"):
            cam.reconnect()  # still absent
        assert not spin.is_initialised(SERIAL)
        clock.sleep_s(1.0)
        spin.replug(SERIAL)
        cam.reconnect()
        assert cam.is_streaming and cam.settings() == settings  # settings re-applied after power-up defaults
        frame = cam.read(1.0)
        gap = cam.stats.last_reconnect_gap_frames
        assert gap >= 9  # away >= 1 s at 10 Hz
        assert frame.frame_id == last.frame_id + 1 + gap
        assert cam.stats.reconnects == 1 and cam.stats.frames_lost_to_reconnect == gap
        np.testing.assert_array_equal(frame.pixels, PatternRenderer.pattern(ROI))
    system.UnregisterEventHandler(handler)
    system.ReleaseInstance()
    assert_sdk_clean()


def test_fake_refuses_writes_while_streaming_and_access_before_init(fake):
    attach()
    system = spin.System.GetInstance()
    cams = system.GetCameras()
    cam = cams.GetByIndex(0)
    with pytest.raises(spin.SpinnakerException) as err:
        cam.GetNodeMap()
    assert err.value.errorcode == spin.SPINNAKER_ERR_NOT_INITIALIZED
    serial = spin.CStringPtr(cam.GetTLDeviceNodeMap().GetNode("DeviceSerialNumber")).GetValue()
    assert serial == SERIAL  # the TL device node map is readable before Init
    cam.Init()
    nodemap = cam.GetNodeMap()
    assert not spin.IsAvailable(nodemap.GetNode("AcquisitionFrameRateEnable"))  # GEN2 camera
    exposure = spin.CFloatPtr(nodemap.GetNode("ExposureTime"))
    assert not spin.IsWritable(exposure)  # ExposureAuto is Continuous at power-up
    cam.BeginAcquisition()
    pixel_format = spin.CEnumerationPtr(nodemap.GetNode("PixelFormat"))
    width = spin.CIntegerPtr(nodemap.GetNode("Width"))
    assert not spin.IsWritable(pixel_format) and not spin.IsWritable(width)
    for write in (lambda: pixel_format.SetIntValue(spin.PixelFormat_Mono16), lambda: width.SetValue(64)):
        with pytest.raises(spin.SpinnakerException) as err:
            write()
        assert err.value.errorcode == spin.GENICAM_ERR_ACCESS_DENIED
    cam.EndAcquisition()
    width.SetValue(64)
    assert width.GetValue() == 64
    cam.DeInit()
    with pytest.raises(spin.SpinnakerException) as err:
        width.GetValue()
    assert err.value.errorcode == spin.SPINNAKER_ERR_NOT_INITIALIZED


def test_fake_clamps_exposure_to_the_frame_period(fake):
    attach()
    system = spin.System.GetInstance()
    cam = system.GetCameras().GetByIndex(0)
    cam.Init()
    nodes = cam.GetNodeMap()
    spin.CEnumerationPtr(nodes.GetNode("ExposureAuto")).SetIntValue(0)
    spin.CEnumerationPtr(nodes.GetNode("AcquisitionFrameRateAuto")).SetIntValue(0)
    spin.CBooleanPtr(nodes.GetNode("AcquisitionFrameRateEnabled")).SetValue(True)
    rate = spin.CFloatPtr(nodes.GetNode("AcquisitionFrameRate"))
    exposure = spin.CFloatPtr(nodes.GetNode("ExposureTime"))
    rate.SetValue(10.0)
    exposure.SetValue(90_000.0)
    rate.SetValue(20.0)
    assert exposure.GetValue() == pytest.approx(50_000.0) and exposure.GetMax() == pytest.approx(50_000.0)
    with pytest.raises(spin.SpinnakerException) as err:
        exposure.SetValue(60_000.0)
    assert err.value.errorcode == spin.GENICAM_ERR_OUT_OF_RANGE


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(exposure_ms=200.0, frame_rate_hz=10.0), "exposure_ms"),
        (dict(exposure_ms=-1.0, frame_rate_hz=10.0), "exposure_ms"),
        (dict(exposure_ms=float("nan"), frame_rate_hz=10.0), "exposure_ms"),
        (dict(exposure_ms=1.0, frame_rate_hz=0.0), "frame_rate_hz"),
        (dict(exposure_ms=1.0, frame_rate_hz=10.0, gain_db=60.0), "gain_db"),
        (dict(exposure_ms=1.0, frame_rate_hz=10.0, pixel_format="Mono10"), "pixel_format"),
        (dict(exposure_ms=1.0, frame_rate_hz=10.0, roi=Roi(0, 0, 321, 32)), "multiple of 4"),
        (dict(exposure_ms=1.0, frame_rate_hz=10.0, roi=Roi(1900, 0, 64, 32)), "inside the 1920x1200 sensor"),
    ],
)
def test_out_of_range_settings_are_refused_before_anything_is_sent(fake, kwargs, message):
    attach()
    with FlirCamera(serial=SERIAL, sdk_module=FAKE) as cam:
        before = cam.settings()
        spin.clear_write_log(SERIAL)
        with pytest.raises(OutOfRange, match=message):
            cam.configure(**kwargs)
        assert spin.write_log(SERIAL) == []
        assert cam.settings() == before


def test_frame_rate_above_the_camera_maximum_is_refused(fake):
    attach()
    with FlirCamera(serial=SERIAL, sdk_module=FAKE) as cam:
        with pytest.raises(OutOfRange, match=r"outside \[1, 83\.\d+\] Hz for Mono16 at 1920x1200"):
            cam.configure(1.0, 150.0, None, "Mono16")
        assert "AcquisitionFrameRate" not in [n for n, _ in spin.write_log(SERIAL)]
