"""The real easy-biologic package over the fake EC-Lab library: the fake refuses what the DLL/ctypes refuse, and the
driver copes with what the vendor layer really does (issue 13)."""

from __future__ import annotations

import ctypes
import math
import time

import numpy as np
import pytest

from operascope.devices.base import OCV, ConstantCurrent, DeviceError, OutOfRange
from operascope.devices.biologic import BiologicPotentiostat, ec_error_code
from operascope.simulators.emulators import fake_eclib
from operascope.simulators.world.world import World

from tests.fakes.biologic import FAKE, attached_channel, fast_world, make_driver, read_until_stopped  # noqa: F401


@pytest.fixture
def world() -> World:
    return fast_world()


@pytest.fixture
def address(world: World):
    yield from attached_channel(world, channel=1, prefix="VENDOR")


def make(address: str, world: World, **kw) -> BiologicPotentiostat:
    return make_driver(address, world, kw.pop("channel", 1), kw.pop("timeout_s", 2.5), **kw)


drain = read_until_stopped


def test_open_ocv_cplimit_read_stop_runs_through_the_real_easy_biologic(address: str, world: World) -> None:
    module = fake_eclib.load_vendor_module()
    assert module.__name__ == "easy_biologic" and "site-packages" in module.__file__  # the PyPI package itself
    assert isinstance(getattr(module.lib.ec_lib, "__dll"), fake_eclib.FakeWinDLL)
    with make(address, world) as pot:
        assert pot._module is module and pot.info().model == "VMP300" and pot.info().firmware == "1140"
        pot.start(OCV(duration_s=5.0, record_every_s=1.0))
        ocv = drain(pot)
        assert len(ocv) == 6 and all(3.0 < p.voltage_v < 4.5 for p in ocv)
        pot.start(ConstantCurrent(current_a=1e-3, v_limit_v=4.3, duration_s=3600.0, record_every_s=5.0), step=1)
        time.sleep(0.1)
        points = pot.read_new()
        assert points and all(p.current_a == pytest.approx(1e-3, rel=1e-6) and p.step == 1 for p in points)
        pot.stop()
        assert not pot.is_running() and pot.end_reason() == "stopped"
    names = [name for name, _ in fake_eclib.loaded_techniques(address)]
    assert names == ["ocv", "cplimit"] and fake_eclib.open_connections(address) == 0


def test_a_float_timeout_is_refused_where_the_lab_pc_refuses_it(address: str, world: World) -> None:
    module = fake_eclib.load_vendor_module()
    with pytest.raises(TypeError, match="float"):  # easy-biologic packs c_uint8(timeout)
        module.BiologicDevice(address, timeout=5.0, populate_info=False).connect()
    ec_lib = module.lib.ec_lib
    idn, info = ctypes.c_int32(), ec_lib.DeviceInfo()
    address_buffer = ctypes.create_string_buffer(address.encode())
    with pytest.raises(ctypes.ArgumentError, match="c_uint8"):  # the header types it uint8
        ec_lib.BL_Connect(ctypes.byref(address_buffer), ctypes.c_int32(5), ctypes.byref(idn), ctypes.byref(info))
    with make(address, world) as pot:  # the driver sends whole seconds
        assert pot.timeout_s == 3
    with pytest.raises(OutOfRange, match="timeout_s"):
        make(address, world, timeout_s=300.0)


def test_wrong_parameter_types_and_unknown_techniques_are_refused(address: str, world: World) -> None:
    module = fake_eclib.load_vendor_module()
    device = module.BiologicDevice(address, timeout=2, populate_info=False)
    device.connect()
    try:
        with pytest.raises(module.lib.ec_errors.EcError, match=r"\(-4\)"):  # Rest_time_T is a single, not an int
            device.load_technique(1, "ocv", {"Rest_time_T": 10, "Record_every_dE": 0.01, "Record_every_dT": 1.0, "E_Range": 2})
        with pytest.raises(module.lib.ec_errors.EcError, match=r"\(-400\)"):
            device.load_technique(1, "nosuch", {"E_Range": 2})
        with pytest.raises(module.lib.ec_errors.EcError, match=r"\(-4\)"):  # case-sensitive names
            device.load_technique(1, "ocv", {"rest_time_t": 10.0, "Record_every_dE": 0.01, "Record_every_dT": 1.0, "E_Range": 2})
    finally:
        device.disconnect()


def test_firmware_load_failure_is_reported_at_open_not_later(address: str, world: World) -> None:
    fake_eclib.fail_firmware_load(address)
    with pytest.raises(DeviceError, match="no firmware loaded on channel 1.*EC-Lab"):
        make(address, world).open()
    assert fake_eclib.open_connections(address) == 0
    fake_eclib.fail_firmware_load(address, False)
    fake_eclib.fail_next(address, "BL_LoadFirmware", -9)  # easy-biologic 0.4 fails on err.value here
    with pytest.raises(DeviceError, match="firmware failed .*-9"):
        make(address, world).open()
    with make(address, world) as pot:
        assert pot.is_open


def test_a_nan_start_time_is_taken_as_zero_like_easy_biologic(address: str, world: World) -> None:
    fake_eclib.set_start_time_nan(address)
    with make(address, world) as pot:
        pot.start(OCV(duration_s=4.0, record_every_s=1.0))
        times = np.array([p.time_s for p in drain(pot)])
    assert len(times) == 5 and all(math.isfinite(t) for t in times) and np.allclose(np.diff(times), 1.0, atol=1e-4)


def test_error_codes_are_read_from_the_vendor_exception_text() -> None:
    module = fake_eclib.load_vendor_module()
    error = module.lib.ec_errors.EcError(-308)
    assert not hasattr(error, "value") and ec_error_code(error) == -308
    with pytest.raises(ValueError, match="Unknown error value"):  # the vendor table refuses invented numbers
        module.lib.ec_errors.EcError(-99)
