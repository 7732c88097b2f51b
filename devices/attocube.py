"""Attocube ECSx5050 stack on an AMC100 controller: JSON-RPC over TCP (devices.md section 2.1).

Framing as the vendor's client: a request is bare JSON (no terminator), a reply is JSON
followed by ``\\r\\n``; ``result[0]`` is the controller's error number (0 = OK), values follow.
Non-zero error numbers are translated with ``com.attocube.system.errorNumberToString`` and
raised as :class:`AttocubeError`. Positions and targets are nm (double).

:class:`AttocubeStage` is a :class:`operascope.devices.base.Stage` with one :class:`AttocubeAxis`
(:class:`operascope.devices.base.Positioner`) per axis. A dropped link is :class:`DeviceLost`; the next
call reconnects once (re-enabling the outputs, with every closed-loop move off so a target the
controller kept from before the loss is never driven to) before giving up.
"""

from __future__ import annotations

import itertools
import json
import math
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from operascope.devices.base import (
    StageAxis,
    AXES,
    DeviceError,
    DeviceInfo,
    DeviceLost,
    DeviceTimeout,
    EndOfTravel,
    NotOpen,
    OutOfRange,
    Positioner,
    Stage,
)

AMC = "com.attocube.amc."
TERMINATOR = b"\r\n"
#: Moving status of ``status.getStatusMoving``.
MOVING_IDLE, MOVING_MOVING, MOVING_PENDING = 0, 1, 2
_MAX_REPLY_BYTES = 1 << 20


class AttocubeError(DeviceError):
    """The controller answered with a non-zero error number (or a JSON-RPC error object)."""

    def __init__(self, device: str, error_number: int, text: str, method: str) -> None:
        super().__init__(device, f"{method} failed with controller error {error_number} ({text})")
        self.error_number = error_number
        self.text = text
        self.method = method


@dataclass(frozen=True)
class AxisStatus:
    """Status flags of one axis as reported by the controller."""

    connected: bool
    output_on: bool
    moving: int
    in_target_range: bool
    end_of_travel_forward: bool
    end_of_travel_backward: bool


class JsonRpcLink:
    """One TCP connection to an AMC100, speaking its JSON-RPC dialect. Thread-safe.

    ``call`` sends a request and returns ``result[1:]`` (the values after the error number).
    Timeouts raise DeviceTimeout (the link stays usable; late replies are discarded by id);
    a closed or reset connection raises DeviceLost and closes the socket.
    """

    def __init__(self, device: str, host: str, port: int, timeout_s: float) -> None:
        self.device = device
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    @property
    def is_connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        """Open the TCP connection. DeviceLost if nobody answers on host:port."""
        with self._lock:
            self.close()
            try:
                self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            except OSError as exc:
                self._sock = None
                raise DeviceLost(
                    self.device, f"cannot connect to the AMC100 at {self.host}:{self.port} ({exc}); check the address, cable and power"
                ) from None
            self._sock.settimeout(self.timeout_s)
            self._buffer.clear()

    def close(self) -> None:
        """Close the socket (idempotent)."""
        with self._lock:
            if self._sock is not None:
                try:
                    self._sock.close()
                finally:
                    self._sock = None
                    self._buffer.clear()

    def call(self, method: str, params: list[Any] | None = None, translate_errors: bool = True) -> list[Any]:
        """Send ``method(params)``; return the values after the error number.

        Raises AttocubeError for a non-zero error number or a JSON-RPC error object,
        DeviceTimeout, DeviceLost, or DeviceError for a garbled reply.
        """
        with self._lock:
            if self._sock is None:
                raise DeviceLost(self.device, "not connected to the AMC100; call reconnect()")
            request_id = next(self._ids)
            request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id, "api": 2}
            if params:
                request["params"] = list(params)
            self._send(json.dumps(request).encode("utf-8"))
            deadline = time.monotonic() + self.timeout_s
            while True:
                reply = self._read_reply(deadline, method)
                if reply.get("id") == request_id:
                    break
                if reply.get("id") is None and "error" in reply:
                    break  # parse error of our request: the controller could not read the id
            return self._result(reply, method, translate_errors)

    def _send(self, data: bytes) -> None:
        try:
            assert self._sock is not None
            self._sock.sendall(data)
        except OSError as exc:
            self.close()
            raise DeviceLost(self.device, f"link to the AMC100 dropped while sending ({exc}); call reconnect()") from None

    def _read_line(self, deadline: float, method: str) -> bytes:
        while True:
            end = self._buffer.find(TERMINATOR)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + len(TERMINATOR)]
                return line
            if len(self._buffer) > _MAX_REPLY_BYTES:
                self._buffer.clear()
                raise DeviceError(self.device, f"reply to {method} exceeds {_MAX_REPLY_BYTES} bytes without a terminator")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceTimeout(self.device, f"no reply to {method} within {self.timeout_s:g} s; check the controller")
            assert self._sock is not None
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout:
                raise DeviceTimeout(self.device, f"no reply to {method} within {self.timeout_s:g} s; check the controller") from None
            except OSError as exc:
                self.close()
                raise DeviceLost(self.device, f"link to the AMC100 dropped ({exc}); call reconnect()") from None
            if not chunk:
                self.close()
                raise DeviceLost(self.device, "the AMC100 closed the connection; call reconnect()")
            self._buffer.extend(chunk)

    def _read_reply(self, deadline: float, method: str) -> dict[str, Any]:
        line = self._read_line(deadline, method)
        try:
            reply = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise DeviceError(self.device, f"garbled reply to {method}: {line[:80]!r}") from None
        if not isinstance(reply, dict):
            raise DeviceError(self.device, f"garbled reply to {method}: not a JSON object: {line[:80]!r}")
        return reply

    def _result(self, reply: dict[str, Any], method: str, translate_errors: bool) -> list[Any]:
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {"message": str(reply["error"])}
            raise AttocubeError(self.device, int(error.get("code", -1)), str(error.get("message", "")), method)
        result = reply.get("result")
        if not isinstance(result, list) or not result or not isinstance(result[0], int):
            raise DeviceError(self.device, f"garbled reply to {method}: result {result!r} has no error number first")
        if result[0] != 0:
            text = self._error_text(result[0]) if translate_errors else f"error {result[0]}"
            raise AttocubeError(self.device, result[0], text, method)
        return result[1:]

    def _error_text(self, error_number: int) -> str:
        """Friendly text of an error number (lang 1); the bare number if that fails too."""
        try:
            values = self.call("com.attocube.system.errorNumberToString", [1, error_number], translate_errors=False)
            return str(values[0]) if values else f"error {error_number}"
        except DeviceError:
            return f"error {error_number} (no text available)"


class AttocubeAxis(StageAxis):
    """One closed-loop axis (positions in nm) of an :class:`AttocubeStage`."""

    def __init__(self, stage: "AttocubeStage", axis_name: str, axis_index: int, limits_nm: tuple[float, float]) -> None:
        self._stage = stage
        self.axis_name = axis_name
        self.axis_index = axis_index
        self._limits_nm = (float(limits_nm[0]), float(limits_nm[1]))
        self._target_nm = 0.0
        self._move_enabled = False  # closed-loop move known to be on at the controller
        self.name = f"stage.{axis_name}"

    @property
    def limits_nm(self) -> tuple[float, float]:
        return self._limits_nm

    def _call(self, method: str, *params: Any) -> list[Any]:
        self._require_open()
        return self._stage.call(method, [self.axis_index, *params])

    def position_nm(self) -> float:
        return float(self._call(AMC + "move.getPosition")[0])

    def target_nm(self) -> float:
        return self._target_nm

    def move_to(self, target_nm: float) -> None:
        """Set the closed-loop target (nm) and enable the move. OutOfRange before sending."""
        self._require_open()
        self.check_target(target_nm)
        target = int(round(target_nm))  # the vendor API types positions as integer nm (amc.h: Int32)
        self._call(AMC + "move.setControlTargetPosition", target)
        self._target_nm = float(target)
        if not self._move_enabled:
            self._call(AMC + "control.setControlMove", True)
            self._move_enabled = True

    def is_moving(self) -> bool:
        """True while travelling. EndOfTravel at an end switch; DeviceError if the output is off."""
        moving = int(self._call(AMC + "status.getStatusMoving")[0])
        if moving == MOVING_PENDING:
            raise DeviceError(self.name, "move pending but the output stage is off; re-open the stage to enable it")
        self._raise_if_end_of_travel()
        return moving == MOVING_MOVING

    def _raise_if_end_of_travel(self) -> None:
        forward = bool(self._call(AMC + "status.getStatusEotFwd")[0])
        backward = bool(self._call(AMC + "status.getStatusEotBkwd")[0])
        if forward or backward:
            where = "forward" if forward else "backward"
            raise EndOfTravel(self.name, f"{where} end of travel reached; move the axis back inside its range")

    def in_target_range(self) -> bool:
        """True when the position is within the target range of the target."""
        return bool(self._call(AMC + "status.getStatusTargetRange")[0])

    def halt(self) -> None:
        """Stop the closed-loop move where the axis is."""
        self._move_enabled = False
        self._call(AMC + "control.setControlMove", False)
        try:
            self._target_nm = self.position_nm()
        except DeviceError:
            pass

    def status(self) -> AxisStatus:
        """All status flags of this axis."""
        return AxisStatus(
            connected=bool(self._call(AMC + "status.getStatusConnected")[0]),
            output_on=bool(self._call(AMC + "control.getControlOutput")[0]),
            moving=int(self._call(AMC + "status.getStatusMoving")[0]),
            in_target_range=self.in_target_range(),
            end_of_travel_forward=bool(self._call(AMC + "status.getStatusEotFwd")[0]),
            end_of_travel_backward=bool(self._call(AMC + "status.getStatusEotBkwd")[0]),
        )

    def _enable(self, target_range_nm: float) -> None:
        """Check the positioner, stop any closed-loop move the controller still holds, switch the output on.

        The closed-loop move goes off first: after a lost link the controller may still hold the
        target of a command the caller saw fail, and switching the output on would drive there.
        """
        self._move_enabled = False  # off after (re)connecting: the next move_to switches it on
        if not bool(self._stage.call(AMC + "status.getStatusConnected", [self.axis_index])[0]):
            raise DeviceLost(self.name, f"no positioner connected on controller axis {self.axis_index}; check the cable")
        self._stage.call(AMC + "control.setControlMove", [self.axis_index, False])
        self._stage.call(AMC + "control.setControlOutput", [self.axis_index, True])
        # integer nm, as the vendor API types the range; at least 1 nm
        self._stage.call(AMC + "control.setControlTargetRange", [self.axis_index, max(1, int(round(target_range_nm)))])

    def _hold_here(self) -> None:
        position = int(round(float(self._stage.call(AMC + "move.getPosition", [self.axis_index])[0])))
        self._stage.call(AMC + "move.setControlTargetPosition", [self.axis_index, position])
        self._stage.call(AMC + "control.setControlMove", [self.axis_index, True])
        self._move_enabled = True
        self._target_nm = float(position)


class AttocubeStage(Stage):
    """An XYZ stack on an AMC100 (host:port, TCP JSON-RPC). Constructed from AttocubeStageConfig fields."""

    def __init__(
        self,
        host: str = "192.168.1.1",
        port: int = 9090,
        timeout_s: float = 2.0,
        axis_map: dict[str, int] | None = None,
        target_range_nm: float = 10.0,
        limits_nm: dict[str, tuple[float, float]] | None = None,
        output_settle_s: float = 1.0,
    ) -> None:
        axis_map = dict(axis_map or {"x": 0, "y": 1, "z": 2})
        unknown = sorted(set(axis_map) - set(AXES))
        if unknown:
            raise OutOfRange(self.name, f"axis_map names {unknown} are not axes; allowed: {', '.join(AXES)}")
        if any(not (0 <= i <= 2) for i in axis_map.values()) or len(set(axis_map.values())) != len(axis_map):
            raise OutOfRange(self.name, f"axis_map {axis_map} must map each axis to a distinct controller axis 0..2")
        limits_nm = dict(limits_nm or {})
        for name, (low, high) in limits_nm.items():
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise OutOfRange(self.name, f"limits_nm[{name!r}] = ({low}, {high}) must be finite with low < high (nm)")
        self.target_range_nm = float(target_range_nm)
        self.output_settle_s = float(output_settle_s)
        self._link = JsonRpcLink(self.name, host, int(port), float(timeout_s))
        self._axes = {
            name: AttocubeAxis(self, name, index, limits_nm.get(name, (-12_500_000.0, 12_500_000.0)))
            for name, index in axis_map.items()
        }
        self._open = False
        self._info: DeviceInfo | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ link

    def call(self, method: str, params: list[Any] | None = None) -> list[Any]:
        """One JSON-RPC call; reconnects once first if the link had dropped."""
        with self._lock:
            if not self._open:
                raise NotOpen(self.name, "not open; call open() or use it as a context manager")
            if not self._link.is_connected:
                self._connect_and_enable(hold=False)
            return self._link.call(method, params)

    def _connect_and_enable(self, hold: bool) -> None:
        self._link.connect()
        try:
            device_type = str(self._link.call(AMC + "description.getDeviceType")[0])
            serial = str(self._link.call("com.attocube.system.getSerialNumber")[0])
            firmware = str(self._link.call("com.attocube.system.getFirmwareVersion")[0])
            for axis in self._axes.values():
                axis._enable(self.target_range_nm)
            if self.output_settle_s > 0:
                time.sleep(self.output_settle_s)
            if hold:
                for axis in self._axes.values():
                    axis._hold_here()
        except Exception:
            self._link.close()
            raise
        self._info = DeviceInfo(model=f"{device_type} + ECSx5050", serial=serial, firmware=firmware, driver="attocube")

    # ------------------------------------------------------------------ Device

    def open(self) -> None:
        """Connect, enable every axis's output and hold each at its present position."""
        with self._lock:
            if self._open:
                return
            self._open = True
            try:
                self._connect_and_enable(hold=True)
            except Exception:
                self._open = False
                self._link.close()
                raise

    def close(self) -> None:
        """Disable the closed-loop moves and the outputs, then close the socket. Idempotent."""
        with self._lock:
            if not self._open:
                self._link.close()
                return
            try:
                if self._link.is_connected:
                    for axis in self._axes.values():
                        self._link.call(AMC + "control.setControlMove", [axis.axis_index, False])
                        self._link.call(AMC + "control.setControlOutput", [axis.axis_index, False])
            except DeviceError:
                pass  # the controller is gone or unhappy; the socket is closed below regardless
            finally:
                self._link.close()
                self._open = False

    def reconnect(self) -> None:
        """Re-open the link after DeviceLost and hold every axis where it is."""
        with self._lock:
            self._link.close()
            self._open = True
            self._connect_and_enable(hold=True)

    def info(self) -> DeviceInfo:
        self._require_open()
        assert self._info is not None
        return self._info

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def is_connected(self) -> bool:
        """True while the TCP link is up."""
        return self._link.is_connected

    @property
    def axes(self) -> dict[str, Positioner]:
        return dict(self._axes)

    def position_nm(self) -> dict[str, float]:
        """Positions of every axis (nm) in one call (``control.getPositionsAndVoltages``)."""
        values = self.call(AMC + "control.getPositionsAndVoltages")
        if len(values) < 3:
            raise DeviceError(self.name, f"garbled reply to getPositionsAndVoltages: {values!r}")
        return {name: float(values[axis.axis_index]) for name, axis in self._axes.items()}
