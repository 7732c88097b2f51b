"""FLIR driver points FLIR material leaves open: Mono16 alignment, IsValid on unplug, USB3 frame holding."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.devices.base import DeviceLost, OutOfRange
from operascope.devices.flir import FlirCamera
from operascope.devices.flir_pixels import Mono16Alignment
from operascope.simulators.emulators import fake_pyspin as spin
from tests.fakes.flir import FAKE, ROI, SERIAL, FastClock, PatternRenderer, assert_sdk_clean, attach




def test_auto_alignment_reads_msb_and_lsb_data_to_the_same_counts():
    counts = np.arange(0, 4096, 3, dtype=np.uint16).reshape(-1, 1)
    msb, lsb = Mono16Alignment("auto"), Mono16Alignment("auto")
    np.testing.assert_array_equal(msb.to_counts(counts << 4), counts)
    np.testing.assert_array_equal(lsb.to_counts(counts), counts)
    assert (msb.decided, lsb.decided) == ("msb", "lsb")


def test_auto_alignment_does_not_lock_on_an_ambiguous_frame():
    alignment = Mono16Alignment("auto")
    dark = np.array([[0, 16, 32]], dtype=np.uint16)  # MSB counts 0,1,2 or LSB 0,16,32: undecidable
    np.testing.assert_array_equal(alignment.to_counts(dark), [[0, 1, 2]])
    assert alignment.decided is None
    np.testing.assert_array_equal(alignment.to_counts(np.array([[5, 4095]], dtype=np.uint16)), [[5, 4095]])
    assert alignment.decided == "lsb"


def test_forced_alignment_and_bad_value(fake):
    assert Mono16Alignment("lsb").to_counts(np.array([[0xFFFF]], dtype=np.uint16))[0, 0] == 4095
    with pytest.raises(OutOfRange, match="mono16_alignment"):
        FlirCamera(serial=SERIAL, sdk_module=FAKE, mono16_alignment="middle")


def test_mono16_full_scale_reads_4095_through_the_driver(fake):
    spin.attach_camera(SERIAL, lambda roi, exposure_ms, gain_db: np.full((roi.height, roi.width), 4095, np.uint16))
    with FlirCamera(serial=SERIAL, sdk_module=FAKE) as cam:
        cam.configure(1.0, 50.0, ROI, "Mono16")
        cam.start()
        assert int(cam.read(1.0).pixels.max()) == 4095
    assert_sdk_clean()


def test_unplug_is_detected_even_if_isvalid_stays_true(fake):
    spin.set_isvalid_semantics("pointer")  # IsValid as a pure pointer check, never False on unplug
    clock = FastClock(speed=10.0)
    attach(clock=clock)
    with FlirCamera(serial=SERIAL, sdk_module=FAKE, clock=clock) as cam:
        cam.configure(2.0, 10.0, ROI, "Mono8")
        cam.start()
        cam.read(1.0)
        spin.unplug(SERIAL)
        with pytest.raises(DeviceLost):
            cam.read(1.0)
        spin.replug(SERIAL)
        cam.reconnect()
        np.testing.assert_array_equal(cam.read(1.0).pixels, PatternRenderer.pattern(ROI) >> 4)
    assert_sdk_clean()


def test_reset_under_a_streaming_driver_is_lost_not_a_generic_error(fake):
    spin.set_isvalid_semantics("pointer")
    attach()
    with FlirCamera(serial=SERIAL, sdk_module=FAKE) as cam:
        cam.configure(2.0, 50.0, ROI, "Mono8")
        cam.start()
        cam.read(1.0)
        spin.inject_error(SERIAL, spin.SPINNAKER_ERR_NOT_INITIALIZED)
        with pytest.raises(DeviceLost, match="reset or re-plugged"):
            cam.read(1.0)
    assert_sdk_clean()
