"""Attocube AMC100 driver (devices/attocube.py) against the JSON-RPC emulator (simulators/amc100.py)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from operascope.config.loader import ConfigError, load_config
from operascope.config.schema import AttocubeStageConfig
from operascope.devices.attocube import AttocubeError, AttocubeStage
from operascope.devices.base import DeviceError, DeviceLost, DeviceTimeout, EndOfTravel, NotOpen, OutOfRange
from operascope.simulators.emulators.amc100 import ERR_NOT_CONNECTED, Amc100Server
from operascope.simulators.devices.backends import build_simulated_devices
from operascope.simulators.world.world import World

AMC = "com.attocube.amc."


@pytest.fixture
def world() -> World:
    return World(load_config(overrides={"simulation": {"stage_noise_nm": 0.5, "drift_noise_nm": 0.0, "stage_speed_nm_s": 5e7}}))


@pytest.fixture
def server(world: World):
    srv = Amc100Server(build_simulated_devices(world)["stage"], "127.0.0.1", 0)
    srv.start()
    yield srv
    srv.stop()


def make_stage(server: Amc100Server, **kw) -> AttocubeStage:
    host, port = server.address
    options = dict(host=host, port=port, timeout_s=0.5, output_settle_s=0.0, target_range_nm=10.0)
    options.update(kw)
    return AttocubeStage(**options)


def wait_for(predicate, timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# --------------------------------------------------------------------------- a vendor-style raw client


class RawAmcClient:
    """Like the vendor's Python client: bare JSON out (no terminator), reads ``\\r\\n`` lines."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=2.0)
        self.buffer = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_reply(self) -> dict:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            assert chunk, "server closed the connection"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return json.loads(line)

    def request(self, method: str, params: list | None = None, request_id: int = 1) -> dict:
        message = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params:
            message["params"] = params
        self.send_raw(json.dumps(message).encode())
        return self.read_reply()

    def close(self) -> None:
        self.sock.close()


def test_raw_vendor_style_client_drives_the_emulated_stage(server: Amc100Server, world: World) -> None:
    client = RawAmcClient(server.address)
    try:
        assert client.request(AMC + "description.getDeviceType", request_id=3) == {"jsonrpc": "2.0", "result": [0, "AMC100"], "id": 3}
        assert client.request(AMC + "control.setControlOutput", [2, True], 4)["result"] == [0]
        assert client.request(AMC + "move.setControlTargetPosition", [2, 20_000.0], 5)["result"] == [0]
        assert client.request(AMC + "control.setControlMove", [2, True], 6)["result"] == [0]
        assert wait_for(lambda: client.request(AMC + "status.getStatusTargetRange", [2], 7)["result"] == [0, True])
        error_number, position = client.request(AMC + "move.getPosition", [2], 8)["result"]
        assert error_number == 0 and abs(position - 20_000.0) < 10.0
        assert abs(world.stage_position_nm("z") - 20_000.0) < 10.0  # the simulated world moved
        # two requests in one packet, then one request split over two packets
        first = json.dumps({"jsonrpc": "2.0", "method": AMC + "move.getPosition", "params": [0], "id": 10})
        second = json.dumps({"jsonrpc": "2.0", "method": "com.attocube.system.getSerialNumber", "id": 11})
        client.send_raw((first + second).encode())
        assert [client.read_reply()["id"], client.read_reply()["id"]] == [10, 11]
        client.send_raw(first[:17].encode())
        time.sleep(0.05)
        client.send_raw(first[17:].encode() + b"\r\n")
        assert client.read_reply()["id"] == 10
        # unknown method: a JSON-RPC error object; garbage: a parse error; the link survives both
        unknown = client.request("com.attocube.amc.nothing.here", [0], 12)
        assert unknown["id"] == 12 and unknown["error"]["code"] == -32601
        client.send_raw(b"not json at all")
        assert client.read_reply()["error"]["code"] == -32700
        assert client.request(AMC + "status.getStatusConnected", [1], 13)["result"] == [0, True]
    finally:
        client.close()


# --------------------------------------------------------------------------- happy path


def test_open_move_read_close(server: Amc100Server, world: World) -> None:
    config = AttocubeStageConfig(driver="attocube", host=server.address[0], port=server.address[1], timeout_s=0.5, output_settle_s=0.0)
    stage = AttocubeStage(**config.model_dump(exclude={"driver"}))
    with stage:
        assert stage.info().model.startswith("AMC100") and stage.info().serial == server.serial_number
        assert all(axis.output for axis in server.axes) and all(axis.move for axis in server.axes)
        stage.move_to(x=-3_000.0, z=1_500.0)
        z = stage.axis("z")
        assert z.target_nm() == 1_500.0
        settled = z.wait_settled(timeout_s=2.0, poll_s=0.01)
        assert abs(settled - 1_500.0) < 10.0
        stage.axis("x").wait_settled(timeout_s=2.0, poll_s=0.01)
        positions = stage.position_nm()  # one getPositionsAndVoltages call for all axes
        assert server.request_log[-1] == AMC + "control.getPositionsAndVoltages"
        assert abs(positions["x"] + 3_000.0) < 10.0 and abs(positions["z"] - 1_500.0) < 10.0
        assert abs(world.stage_position_nm("x") + 3_000.0) < 10.0
        assert server.axes[0].target_range_nm == 10.0
        status = z.status()
        assert status.connected and status.output_on and status.in_target_range and not status.end_of_travel_forward
    assert not stage.is_connected
    assert not any(axis.output for axis in server.axes)  # outputs switched off on close
    assert wait_for(lambda: not server._clients)
    with pytest.raises(NotOpen):
        stage.axis("z").position_nm()


def test_out_of_range_target_refused_before_sending(server: Amc100Server) -> None:
    with make_stage(server, limits_nm={"x": (-1000.0, 1000.0), "y": (-1000.0, 1000.0), "z": (-1000.0, 1000.0)}) as stage:
        sent_before = server.request_count
        with pytest.raises(OutOfRange, match="outside the soft limits"):
            stage.move_to(x=0.0, z=5_000.0)
        with pytest.raises(OutOfRange):
            stage.axis("y").move_to(float("nan"))
        assert server.request_count == sent_before


# --------------------------------------------------------------------------- failure paths


def test_error_number_is_translated_to_text(server: Amc100Server) -> None:
    with make_stage(server) as stage:
        server.fail_next(AMC + "move.getPosition", ERR_NOT_CONNECTED)
        with pytest.raises(AttocubeError) as info:
            stage.axis("y").position_nm()
        assert info.value.error_number == ERR_NOT_CONNECTED
        assert "No active connection to device" in str(info.value) and "getPosition" in str(info.value)  # amc.h text of -2
        assert isinstance(stage.axis("y").position_nm(), float)  # next call fine


def test_disconnected_positioner(server: Amc100Server) -> None:
    server.disconnect_positioner(2)
    stage = make_stage(server)
    with pytest.raises(DeviceLost, match="axis 2"):
        stage.open()
    assert not stage.is_open and not stage.is_connected
    assert wait_for(lambda: not server._clients)  # the socket was closed on the controller side too
    server.disconnect_positioner(2, connected=True)
    with stage:
        server.disconnect_positioner(1)
        with pytest.raises(AttocubeError, match="No active connection to device"):  # amc.h text of -2
            stage.axis("y").move_to(100.0)
        stage.move_to(z=300.0)  # the axes whose positioners are connected keep working
        assert abs(stage.axis("z").wait_settled(2.0, poll_s=0.01) - 300.0) < 10.0


def test_slow_reply_times_out_then_recovers(server: Amc100Server) -> None:
    with make_stage(server, timeout_s=0.15) as stage:
        server.reply_delay_s = 1.0
        t0 = time.monotonic()
        with pytest.raises(DeviceTimeout, match="getPosition"):
            stage.axis("x").position_nm()
        assert time.monotonic() - t0 < 0.9
        server.reply_delay_s = 0.0
        time.sleep(1.0)  # the late reply arrives and must be discarded by id
        stage.move_to(x=700.0)
        assert abs(stage.axis("x").wait_settled(2.0, poll_s=0.01) - 700.0) < 10.0


def test_garbled_reply_is_an_error_and_the_link_recovers(server: Amc100Server) -> None:
    with make_stage(server) as stage:
        server.garble_next()
        with pytest.raises(DeviceError, match="garbled"):
            stage.axis("x").position_nm()
        assert isinstance(stage.axis("x").position_nm(), float)


def test_socket_drop_mid_stream_and_back(server: Amc100Server) -> None:
    with make_stage(server) as stage:
        stage.axis("x").position_nm()
        server.drop_connections(refuse_s=1.0)
        with pytest.raises(DeviceLost):
            stage.axis("x").position_nm()
        assert not stage.is_connected
        with pytest.raises(DeviceLost):  # still refused: one reconnect attempt, then a clear error
            stage.axis("x").position_nm()
        time.sleep(1.0)
        stage.move_to(z=-800.0)  # reconnects by itself
        assert stage.is_connected
        assert abs(stage.axis("z").wait_settled(2.0, poll_s=0.01) + 800.0) < 10.0


def test_world_link_loss_drops_the_socket_until_the_controller_is_back(server: Amc100Server, world: World) -> None:
    with make_stage(server) as stage:
        world.inject_fault("stage", "device_lost", duration_s=0.3)
        with pytest.raises(DeviceLost):
            stage.axis("z").position_nm()
        assert not stage.is_connected
        time.sleep(0.35)
        stage.reconnect()
        assert isinstance(stage.axis("z").position_nm(), float)


def test_end_of_travel(server: Amc100Server, world: World) -> None:
    wide = {a: (-20_000_000.0, 20_000_000.0) for a in "xyz"}
    with make_stage(server, limits_nm=wide) as stage:
        world.inject_fault("stage", "end_of_travel")
        stage.axis("y").move_to(2_000.0)
        with pytest.raises(EndOfTravel, match="forward"):
            stage.axis("y").is_moving()
        # a target beyond the physical travel (but inside the driver's wider limits)
        stage.axis("x").move_to(-12_600_000.0)
        with pytest.raises(EndOfTravel, match="backward"):
            stage.axis("x").wait_settled(timeout_s=60.0, poll_s=0.01)


def test_nobody_listening_is_device_lost(server: Amc100Server) -> None:
    host, port = server.address
    server.stop()
    stage = AttocubeStage(host=host, port=port, timeout_s=0.3, output_settle_s=0.0)
    with pytest.raises(DeviceLost, match=f"{port}"):
        stage.open()
    assert not stage.is_connected


def test_bad_axis_map_rejected() -> None:
    with pytest.raises(OutOfRange, match="axis_map"):
        AttocubeStage(axis_map={"x": 0, "q": 1})
    with pytest.raises(OutOfRange, match="distinct"):
        AttocubeStage(axis_map={"x": 0, "y": 0})
    with pytest.raises(OutOfRange, match="low < high"):
        AttocubeStage(limits_nm={"z": (5.0, -5.0)})
    with pytest.raises(ConfigError, match="distinct controller axis"):  # caught when the config is loaded
        load_config(overrides={"devices": {"stage": {"driver": "attocube", "axis_map": {"x": 0, "y": 0, "z": 2}}}})
