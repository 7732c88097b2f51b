"""AMC100 emulator: the vendor client's user calls (names, parameter order and types of Attocube's AMC Python
client), the amc.h error numbers, integer positions (nm) and voltages (mV), sent by a raw JSON-RPC client
exactly as the vendor client sends them (bare JSON, reply lines ending in \\r\\n)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from operascope.config.loader import load_config
from operascope.devices.attocube import AttocubeStage
from operascope.simulators.devices.backends import build_simulated_devices
from operascope.simulators.emulators.amc100 import ERR_ERROR, ERR_INVALID_PARAM, ERR_NOT_CONNECTED, Amc100Server
from operascope.simulators.emulators.amc100_calls import STEP_NM
from operascope.simulators.world.world import World

AMC = "com.attocube.amc."


class VendorStyleClient:
    """Bare JSON requests with an increasing id; one reply line per request."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=2.0)
        self.buffer = b""
        self.request_id = 0

    def result(self, method: str, *params) -> list:
        message = {"jsonrpc": "2.0", "method": method, "id": self.request_id}
        if params:
            message["params"] = list(params)
        self.request_id += 1
        self.sock.sendall(json.dumps(message).encode())
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            assert chunk, "server closed the connection"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        reply = json.loads(line)
        assert reply["id"] == message["id"] and "error" not in reply, reply
        return reply["result"]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def world() -> World:
    return World(load_config(overrides={"simulation": {"stage_noise_nm": 0.0, "drift_noise_nm": 0.0,
                                                       "drift_xy_nm_s": [0.0, 0.0], "drift_z_nm_s": 0.0,
                                                       "stage_speed_nm_s": 5e7}}))


@pytest.fixture
def client(world: World):
    server = Amc100Server(build_simulated_devices(world)["stage"], "127.0.0.1", 0)
    server.start()
    amc = VendorStyleClient(server.address)
    yield amc, server
    amc.close()
    server.stop()


def settle(amc: VendorStyleClient, axis: int) -> None:
    deadline = time.monotonic() + 5.0
    while amc.result(AMC + "status.getStatusMoving", axis)[1] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_identity_calls(client) -> None:
    amc, _ = client
    code, firmware = amc.result("com.attocube.system.getFirmwareVersion")
    assert code == 0 and isinstance(firmware, str) and firmware
    assert amc.result(AMC + "control.getActorType", 1) == [0, 0]  # 0 = linear (amc.h AMC_actorLinear)
    assert amc.result(AMC + "control.getActorType", 3) == [ERR_INVALID_PARAM]


def test_positions_and_voltages_are_integers(client) -> None:
    amc, _ = client
    result = amc.result(AMC + "control.getPositionsAndVoltages")
    assert result[0] == 0 and len(result) == 7 and all(type(v) is int for v in result[1:])
    assert type(amc.result(AMC + "move.getPosition", 0)[1]) is int
    assert type(amc.result(AMC + "move.getControlTargetPosition", 0)[1]) is int
    assert type(amc.result(AMC + "control.getControlAmplitude", 0)[1]) is int  # mV
    assert amc.result(AMC + "control.setControlTargetRange", 0, 10) == [0]
    assert amc.result(AMC + "control.getControlTargetRange", 0) == [0, 10]


def test_fractions_where_the_vendor_types_integers_are_refused(client) -> None:
    amc, _ = client
    assert amc.result(AMC + "move.setControlTargetPosition", 0, 1000.5) == [ERR_INVALID_PARAM]
    assert amc.result(AMC + "control.setControlTargetRange", 0, 2.5) == [ERR_INVALID_PARAM]
    assert amc.result(AMC + "control.setControlAmplitude", 0, 30000.5) == [ERR_INVALID_PARAM]
    assert amc.result(AMC + "control.setControlOutput", 0, 1) == [ERR_INVALID_PARAM]  # a bool, not a number
    assert amc.result(AMC + "move.setNSteps", 0, False, 2.5) == [ERR_INVALID_PARAM]


def test_set_reset_zeroes_the_position_and_invalidates_the_reference(client) -> None:
    amc, _ = client
    assert amc.result(AMC + "control.setControlOutput", 0, True) == [0]
    assert amc.result(AMC + "move.setControlTargetPosition", 0, 40_000) == [0]
    assert amc.result(AMC + "control.setControlMove", 0, True) == [0]
    settle(amc, 0)
    assert abs(amc.result(AMC + "move.getPosition", 0)[1] - 40_000) <= 10
    assert amc.result(AMC + "control.searchReferencePosition", 0) == [0]
    assert amc.result(AMC + "status.getStatusReference", 0) == [0, True]
    assert amc.result(AMC + "control.setControlMove", 0, False) == [0]
    assert amc.result(AMC + "control.setReset", 0) == [0]
    assert abs(amc.result(AMC + "move.getPosition", 0)[1]) <= 10  # zero here now
    assert amc.result(AMC + "status.getStatusReference", 0) == [0, False]
    assert amc.result(AMC + "move.moveReference", 0) == [ERR_ERROR]  # needs a valid reference


def test_reference_search_and_move_to_reference(client) -> None:
    amc, _ = client
    amc.result(AMC + "control.setControlOutput", 1, True)
    amc.result(AMC + "move.setControlTargetPosition", 1, 25_000)
    amc.result(AMC + "control.setControlMove", 1, True)
    settle(amc, 1)
    amc.result(AMC + "control.setReset", 1)  # counter zero at 25 um: the mark (at 0) now reads -25 um
    assert amc.result(AMC + "control.searchReferencePosition", 1) == [0]
    code, reference = amc.result(AMC + "control.getReferencePosition", 1)
    assert code == 0 and type(reference) is int and abs(reference + 25_000) <= 10
    assert amc.result(AMC + "move.moveReference", 1) == [0]
    settle(amc, 1)
    assert abs(amc.result(AMC + "move.getPosition", 1)[1] - reference) <= 10


def test_n_steps_and_single_step(client) -> None:
    amc, _ = client
    assert amc.result(AMC + "move.setNSteps", 2, False, 4) == [ERR_ERROR]  # output off: nothing moves
    amc.result(AMC + "control.setControlOutput", 2, True)
    start = amc.result(AMC + "move.getPosition", 2)[1]
    assert amc.result(AMC + "move.setNSteps", 2, False, 4) == [0]
    settle(amc, 2)
    assert amc.result(AMC + "move.getNSteps", 2) == [0, 4]
    assert abs(amc.result(AMC + "move.getPosition", 2)[1] - (start + 4 * STEP_NM)) <= 2
    assert amc.result(AMC + "move.setSingleStep", 2, True) == [0]
    settle(amc, 2)
    assert abs(amc.result(AMC + "move.getPosition", 2)[1] - (start + 3 * STEP_NM)) <= 2


def test_continuous_move_stops_at_the_end_of_travel(client, world: World) -> None:
    amc, _ = client
    amc.result(AMC + "control.setControlOutput", 0, True)
    assert amc.result(AMC + "move.setControlContinuousFwd", 0, True) == [0]
    assert amc.result(AMC + "move.getControlContinuousFwd", 0) == [0, True]
    assert amc.result(AMC + "move.getControlContinuousBkwd", 0) == [0, False]
    deadline = time.monotonic() + 5.0
    while not amc.result(AMC + "status.getStatusEotFwd", 0)[1]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert amc.result(AMC + "status.getStatusEot", 0) == [0, True]
    assert amc.result(AMC + "status.getStatusEotBkwd", 0) == [0, False]
    assert abs(amc.result(AMC + "move.getPosition", 0)[1] - world.stage_limits_nm("x")[1]) <= 2
    assert amc.result(AMC + "move.getControlContinuousFwd", 0) == [0, False]
    assert amc.result(AMC + "move.setControlContinuousBkwd", 0, False) == [0]  # false stops every movement


def test_error_numbers_and_texts_are_the_vendor_header_ones(client) -> None:
    amc, server = client
    server.disconnect_positioner(1)
    assert amc.result(AMC + "move.getPosition", 1) == [ERR_NOT_CONNECTED]
    assert (ERR_ERROR, ERR_NOT_CONNECTED, ERR_INVALID_PARAM) == (-1, -2, -9)  # amc.h NCB_* values
    assert amc.result("com.attocube.system.errorNumberToString", 1, -9) == [0, "Parameter out of range"]
    assert amc.result("com.attocube.system.errorNumberToString", 0, -2) == [0, "NCB_NotConnected"]


def test_driver_sends_integer_targets_and_range(client) -> None:
    _, server = client
    host, port = server.address
    sent: list = []
    original = server._dispatch

    def record(request):
        sent.append(request)
        return original(request)

    server._dispatch = record
    with AttocubeStage(host=host, port=port, timeout_s=0.5, output_settle_s=0.0, target_range_nm=10.4) as stage:
        stage.axis("x").move_to(1234.6)
        assert stage.info().firmware
    by_method = {}
    for request in sent:
        by_method.setdefault(request["method"].rsplit(".", 1)[1], []).append(request.get("params"))
    assert all(type(p[1]) is int for p in by_method["setControlTargetRange"]) and by_method["setControlTargetRange"][0][1] == 10
    assert all(type(p[1]) is int for p in by_method["setControlTargetPosition"])
    assert [0, 1235] in by_method["setControlTargetPosition"]
