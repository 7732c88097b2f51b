"""Biologic VMP300 driver (devices/biologic.py) through the REAL easy-biologic package over the fake EC-Lab library
(simulators/emulators/fake_eclib.py) at the ctypes boundary."""

from __future__ import annotations

import time

import numpy as np
import pytest

from operascope.config.schema import BiologicConfig
from operascope.devices.base import OCV, ConstantCurrent, DeviceError, DeviceLost, DeviceTimeout, MissingVendorLibrary, NotOpen, OutOfRange
from operascope.devices.biologic import BiologicPotentiostat, choose_i_range, technique_parameters
from operascope.simulators.emulators import fake_eclib
from operascope.simulators.devices.backends import build_simulated_devices
from operascope.simulators.world.world import World

from tests.fakes.biologic import FAKE, attached_channel, fast_world, make_driver, read_until_stopped  # noqa: F401


@pytest.fixture
def world() -> World:
    return fast_world()


@pytest.fixture
def address(world: World):
    yield from attached_channel(world, channel=2, prefix="TEST")


def make(address: str, world: World, **kw) -> BiologicPotentiostat:
    return make_driver(address, world, kw.pop("channel", 2), kw.pop("timeout_s", 1.0), **kw)


wait_until_stopped = read_until_stopped


def test_i_range_and_parameters() -> None:
    assert choose_i_range(150e-6) == 7  # 1.8e-4 A needs the 1 mA range
    assert choose_i_range(-2e-3) == 8
    assert choose_i_range(0.09) == 10  # 0.108 A > 100 mA range
    with pytest.raises(OutOfRange):
        choose_i_range(0.9)
    name, params = technique_parameters(ConstantCurrent(-1e-4, 3.0, 60.0, 2.0))
    assert name == "cplimit" and params["Test1_Config"] == [1] and params["Test1_Value"] == [3.0]
    assert params["Current_step"] == [-1e-4] and params["Duration_step"] == [60.0] and params["Exit_Cond"] == [2]
    assert params["I_Range"] == 7 and params["Record_every_dT"] == 2.0  # 1.2e-4 A > the 100 uA range


def test_ocv_points_time_reconstruction_and_close(address: str, world: World) -> None:
    config = BiologicConfig(driver="biologic", address=address, channel=2, library=FAKE, timeout_s=1.0)
    pot = BiologicPotentiostat(**config.model_dump(exclude={"driver"}), clock=world.clock)
    with pot:
        assert pot.info().model == "VMP300" and pot.info().serial == address
        pot.start(OCV(duration_s=20.0, record_every_s=1.0), step=3, cycle=1)
        t_start = world.clock.now_s()
        assert pot.is_running() and pot.end_reason() == "running"
        points = wait_until_stopped(pot)
        assert pot.end_reason() == "duration"
        name, params = fake_eclib.loaded_techniques(address)[-1]
        assert name == "ocv" and params["Rest_time_T"] == 20.0 and params["Record_every_dT"] == 1.0
        times = np.array([p.time_s for p in points])
        assert len(points) == 21 and np.allclose(np.diff(times), 1.0, atol=1e-4)
        assert abs(times[0] - t_start) < 0.5  # on the rig (world) clock
        assert all(3.0 < p.voltage_v < 4.5 and p.current_a == 0.0 and (p.step, p.cycle) == (3, 1) for p in points)
    assert not pot.is_open and fake_eclib.open_connections(address) == 0
    with pytest.raises(NotOpen):
        pot.read_new()


def test_high_word_of_the_time_counter_is_used(world: World) -> None:
    address = f"TEST-VMP300-TIME-{id(world)}"
    fake_eclib.attach(address, build_simulated_devices(world)["potentiostat"], channel=2, clock=world.clock, time_base_s=1e-9)
    try:
        with make(address, world) as pot:
            pot.start(OCV(duration_s=12.0, record_every_s=2.0))
            times = np.array([p.time_s for p in wait_until_stopped(pot)])
        assert len(times) == 7 and np.allclose(np.diff(times), 2.0, atol=1e-4)  # 12 s = 1.2e10 ticks > 2**32
    finally:
        fake_eclib.detach(address)


def test_charge_until_voltage_limit_with_cplimit(address: str, world: World) -> None:
    world.clock.speed = 3000.0
    with make(address, world) as pot:
        pot.start(ConstantCurrent(current_a=2e-3, v_limit_v=4.3, duration_s=7200.0, record_every_s=10.0))
        points = wait_until_stopped(pot, timeout_s=10.0)
        assert pot.end_reason() == "limit"
        name, params = fake_eclib.loaded_techniques(address)[-1]
        assert name == "cplimit" and params["Test1_Config"] == 5 and params["I_Range"] == 8  # decoded from the EccParams
        assert points[-1].voltage_v >= 4.29 and all(p.current_a == pytest.approx(2e-3, rel=1e-6) for p in points[1:])
        assert points[-1].time_s - points[0].time_s < 7000.0
        volts = np.array([p.voltage_v for p in points])
        assert np.all(np.diff(volts[1:]) > -1e-3)  # charging raises the voltage


def test_many_points_arrive_in_several_get_data_chunks(address: str, world: World) -> None:
    with make(address, world) as pot:
        pot.start(ConstantCurrent(current_a=-1e-5, v_limit_v=3.0, duration_s=30.0, record_every_s=0.05))
        points = wait_until_stopped(pot)
        assert len(points) == 601  # > 200 rows of 5 words: several 1000-word chunks
        assert np.allclose(np.diff([p.time_s for p in points]), 0.05, atol=1e-4)
        assert pot.end_reason() == "duration"


def test_out_of_range_refused_before_sending(address: str, world: World) -> None:
    with make(address, world, max_current_a=0.01) as pot:
        before = len(fake_eclib.loaded_techniques(address))
        for bad in (ConstantCurrent(0.02, 4.3, 10.0), ConstantCurrent(1e-3, 11.0, 10.0), OCV(duration_s=-1.0), OCV(10.0, float("nan"))):
            with pytest.raises(OutOfRange):
                pot.start(bad)
        assert len(fake_eclib.loaded_techniques(address)) == before


def test_running_channel_refuses_a_new_technique_and_stop(address: str, world: World) -> None:
    with make(address, world) as pot:
        pot.start(OCV(duration_s=3600.0))
        with pytest.raises(DeviceError, match="running"):
            pot.start(OCV(duration_s=10.0))
        pot.stop()
        assert not pot.is_running() and pot.end_reason() == "stopped"
        assert world.potentiostat_status() == (False, "stopped")  # the cell really stopped


def test_communication_timeout_then_recovers_without_losing_points(address: str, world: World) -> None:
    with make(address, world) as pot:
        pot.start(OCV(duration_s=10.0, record_every_s=1.0))
        fake_eclib.fail_next(address, "BL_GetData", -200)
        with pytest.raises(DeviceTimeout, match="communication"):
            pot.read_new()
        assert len(wait_until_stopped(pot)) == 11


def test_unplugged_mid_stream_and_back(address: str, world: World) -> None:
    pot = make(address, world)
    pot.open()
    pot.start(OCV(duration_s=3600.0))
    fake_eclib.unplug(address)
    with pytest.raises(DeviceLost, match="lost"):
        pot.read_new()
    assert not pot.is_open and fake_eclib.open_connections(address) == 0  # handle disconnected and dropped
    with pytest.raises(DeviceLost, match="reconnect"):
        pot.is_running()
    with pytest.raises(DeviceLost):
        pot.reconnect()
    with pytest.raises(DeviceLost, match="reconnect"):   # a failed reconnect leaves it lost, not merely closed
        pot.read_new()
    fake_eclib.replug(address)
    pot.reconnect()
    assert pot.end_reason() == "error"
    pot.stop()
    pot.close()


def test_world_link_loss(address: str, world: World) -> None:
    with make(address, world) as pot:
        pot.start(OCV(duration_s=3600.0))
        world.inject_fault("potentiostat", "link_loss", duration_s=50.0)  # virtual s: 0.125 s wall at speed 400
        with pytest.raises((DeviceLost, DeviceTimeout)):
            pot.read_new()
        with pytest.raises(DeviceLost):
            pot.read_new()
        time.sleep(0.2)
        pot.reconnect()
        assert not pot.is_running() and pot.end_reason() == "error"


def test_garbled_data_block(address: str, world: World, monkeypatch) -> None:
    get_data = fake_eclib.load_vendor_module().lib.ec_lib.BL_GetData
    real = get_data._implementation

    def garbled(idn, ch, data_ref, info_ref, values_ref):
        code = real(idn, ch, data_ref, info_ref, values_ref)
        info_ref._obj.NbRows, info_ref._obj.NbCols = 400, 3  # 1200 words claimed; the buffer holds 1000
        return code

    with make(address, world) as pot:
        pot.start(OCV(duration_s=3600.0, record_every_s=1.0))
        monkeypatch.setattr(get_data, "_implementation", garbled)
        with pytest.raises(DeviceError, match="words"):
            pot.read_new()
        monkeypatch.setattr(get_data, "_implementation", real)
        pot.stop()
    assert fake_eclib.open_connections(address) == 0


def test_missing_library_is_a_clear_error(address: str, world: World) -> None:
    with pytest.raises(MissingVendorLibrary, match="easy-biologic"):
        make(address, world, library="easy_biologic_not_installed").open()
    with pytest.raises(MissingVendorLibrary, match="not easy-biologic"):
        make(address, world, library="json").open()


def test_unplugged_channel_or_address(address: str, world: World) -> None:
    pot = make(address, world, channel=0)
    with pytest.raises(OutOfRange, match="channel 0"):
        pot.open()
    assert not pot.is_open and fake_eclib.open_connections(address) == 0
    with pytest.raises(DeviceLost):
        make("NO-SUCH-VMP", world).open()
