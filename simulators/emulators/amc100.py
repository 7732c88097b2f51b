"""An AMC100 emulator: a TCP server speaking the controller's JSON-RPC, moving any Stage.

Protocol (devices.md sections 2.1 and 2.3): requests are JSON objects, with or without a
terminator, parsed incrementally with ``json.JSONDecoder.raw_decode``; every reply is
``json + "\\r\\n"`` with the request's ``id`` and ``result[0]`` = error number (0 = OK).
An unknown method gets a JSON-RPC ``error`` object (-32601), unparsable input -32700.

The emulator keeps the controller's per-axis state (output, closed-loop move, target,
target range, amplitude, frequency, actor, end-of-travel flags) and drives a
:class:`operascope.devices.base.Stage` backend (for example the simulated world's stage): with output
and move on, a target is passed to the backend axis, which slews and settles.

Error numbers: the NCB_* values of Attocube's AMC100 header ``amc.h`` (see amc100_calls.py):
-1 error, -2 not connected, -3 driver error, -9 invalid parameter, 10 feature not available.
Positions and target ranges are integers (nm) and voltages integers (mV), as the vendor types them;
a JSON float where the vendor types an integer answers -9. The user calls beyond closed-loop
moves (reset, reference, steps, continuous moves, firmware, actor type) are in amc100_calls.py.

Faults for tests: :meth:`Amc100Server.fail_next` (non-zero errNo), :meth:`disconnect_positioner`,
:meth:`drop_connections` (socket drop, optionally refusing for a while), ``reply_delay_s``
(slow replies), :meth:`garble_next` (a non-JSON reply). The backend's own faults act too:
DeviceLost drops the connection, DeviceTimeout leaves the request unanswered.

Standalone: ``python -m operascope.simulators.emulators.amc100 [--host 127.0.0.1] [--port 9090]`` builds its own
simulated World and serves its stage.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections import deque
from typing import Any, Callable

from operascope.devices.base import DeviceError, DeviceLost, DeviceTimeout, EndOfTravel, OutOfRange, Stage
from operascope.simulators.emulators.standalone import serve_amc100

from operascope.simulators.emulators.amc100_state import AxisState, FaultHooks, _Injected  # noqa: F401
from operascope.simulators.emulators.amc100_calls import (  # noqa: F401 - re-exported for tests
    ERR_DRIVER,
    ERR_ERROR,
    ERR_INVALID_PARAM,
    ERR_NOT_AVAILABLE,
    ERR_NOT_CONNECTED,
    ERR_OK,
    ERROR_NAMES,
    ControllerError as _ControllerError,
    UserCallsMixin,
    param,
)

JSONRPC_PARSE_ERROR = -32700
JSONRPC_INVALID_REQUEST = -32600
JSONRPC_METHOD_NOT_FOUND = -32601


class _NoReply(Exception):
    """Raised by a handler to leave a request unanswered (the client times out)."""


class _DropConnection(Exception):
    """Raised by a handler to close the client's socket (controller gone)."""


class Amc100Server(UserCallsMixin, FaultHooks):
    """AMC100 JSON-RPC server on ``host:port`` (port 0 = ephemeral) over a Stage backend."""

    def __init__(self, stage: Stage, host: str = "127.0.0.1", port: int = 9090, serial_number: str = "AMC100-EMU-0001") -> None:
        self.stage = stage
        self.host = host
        self.requested_port = int(port)
        self.serial_number = serial_number
        self.axis_names = list(stage.axes)[:3]
        self.axes = [AxisState() for _ in self.axis_names]
        self.reply_delay_s = 0.0
        self.request_log: deque[str] = deque(maxlen=1000)  # latest method names, for tests and debugging
        self.request_count = 0
        self._injected = _Injected()
        self._lock = threading.RLock()
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None
        self._clients: set[socket.socket] = set()
        self._refuse_until = 0.0
        self._opened_stage = False
        self._backend_lost = False
        self._methods = self._method_table()

    # ------------------------------------------------------------------ lifecycle

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually served."""
        if self._server is None:
            raise RuntimeError("AMC100 emulator not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> tuple[str, int]:
        """Open the backend stage, start serving in a background thread; return (host, port)."""
        if not self.stage.is_open:
            self.stage.open()
            self._opened_stage = True
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:  # noqa: D401 - socketserver API
                server._serve_client(self.request)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server((self.host, self.requested_port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="amc100-emulator", daemon=True)
        self._thread.start()
        return self.address

    def stop(self) -> None:
        """Stop serving, close every client socket and the backend if this server opened it."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._opened_stage:
            self.stage.close()
            self._opened_stage = False

    def __enter__(self) -> "Amc100Server":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ serving

    def _backend_reachable(self) -> bool:
        """After the backend was lost, try its ``reconnect()`` (if it has one). Lock held."""
        if not self._backend_lost:
            return True
        reconnect = getattr(self.stage, "reconnect", None)
        try:
            if reconnect is not None:
                reconnect()
        except DeviceError:
            return False
        self._backend_lost = False
        return True

    def _serve_client(self, sock: socket.socket) -> None:
        with self._lock:
            if time.monotonic() < self._refuse_until or not self._backend_reachable():
                sock.close()
                return
            self._clients.add(sock)
        decoder = json.JSONDecoder()
        text = ""
        try:
            while True:
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                text += chunk.decode("utf-8", errors="replace")
                text = self._handle_buffer(sock, decoder, text)
        except _DropConnection:
            return
        finally:
            with self._lock:
                self._clients.discard(sock)
            try:
                sock.close()
            except OSError:
                pass

    def _handle_buffer(self, sock: socket.socket, decoder: json.JSONDecoder, text: str) -> str:
        """Answer every complete request in ``text``; return the unparsed rest."""
        while True:
            text = text.lstrip(" \t\r\n")
            if not text:
                return ""
            try:
                request, end = decoder.raw_decode(text)
            except json.JSONDecodeError as exc:
                if _looks_incomplete(text, exc):
                    return text
                self._send(sock, {"jsonrpc": "2.0", "error": {"code": JSONRPC_PARSE_ERROR, "message": "Parse error"}, "id": None})
                return ""
            text = text[end:]
            try:
                reply = self._dispatch(request)
            except _NoReply:
                continue
            self._send(sock, reply)

    def _send(self, sock: socket.socket, reply: dict[str, Any]) -> None:
        if self.reply_delay_s > 0:
            time.sleep(self.reply_delay_s)
        with self._lock:
            garble = self._injected.garbled > 0
            if garble:
                self._injected.garbled -= 1
        data = b"#garbled\x00reply" if garble else json.dumps(reply).encode("utf-8")
        try:
            sock.sendall(data + b"\r\n")
        except OSError:
            raise _DropConnection() from None

    def _dispatch(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            request_id = request.get("id") if isinstance(request, dict) else None
            return {"jsonrpc": "2.0", "error": {"code": JSONRPC_INVALID_REQUEST, "message": "Invalid Request"}, "id": request_id}
        method, request_id = request["method"], request.get("id")
        params = request.get("params", [])
        if not isinstance(params, list):
            params = [params]
        self.request_log.append(method)
        self.request_count += 1
        handler = self._methods.get(method)
        if handler is None:
            return {"jsonrpc": "2.0", "error": {"code": JSONRPC_METHOD_NOT_FOUND, "message": f"Method not found: {method}"}, "id": request_id}
        with self._lock:
            queued = self._injected.errors.get(method)
            injected = queued.pop(0) if queued else None
        if injected is not None:
            return {"jsonrpc": "2.0", "result": [injected], "id": request_id}
        try:
            with self._lock:
                values = handler(params)
            result = [ERR_OK, *values]
        except _ControllerError as exc:
            result = [exc.error_number]
        except DeviceLost:
            with self._lock:
                self._backend_lost = True
            raise _DropConnection() from None
        except DeviceTimeout:
            raise _NoReply() from None
        except DeviceError:
            result = [ERR_DRIVER]
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    # ------------------------------------------------------------------ methods

    def _method_table(self) -> dict[str, Callable[[list[Any]], list[Any]]]:
        amc = "com.attocube.amc."
        return {
            "com.attocube.system.errorNumberToString": self._error_number_to_string,
            "com.attocube.system.getSerialNumber": lambda p: [self.serial_number],
            amc + "description.getDeviceType": lambda p: ["AMC100"],
            "getLockStatus": lambda p: [False, True],
            "grantAccess": lambda p: [],
            "lock": lambda p: [],
            "unlock": lambda p: [],
            amc + "control.setControlOutput": self._set_output,
            amc + "control.getControlOutput": lambda p: [self._axis(p).output],
            amc + "control.setControlMove": self._set_move,
            amc + "control.getControlMove": lambda p: [self._axis(p).move],
            amc + "move.setControlTargetPosition": self._set_target,
            amc + "move.getControlTargetPosition": lambda p: [self._axis(p).target_nm],
            amc + "move.getPosition": lambda p: [self._position(self._index(p))],
            amc + "move.getPositionWithTime": lambda p: [int(time.monotonic() * 1e6), self._position(self._index(p))],
            amc + "control.getPositionsAndVoltages": self._positions_and_voltages,
            amc + "control.setControlTargetRange": self._set_target_range,
            amc + "control.getControlTargetRange": lambda p: [self._axis(p).target_range_nm],
            amc + "status.getStatusTargetRange": lambda p: [self._in_target_range(self._index(p))],
            amc + "status.getStatusMoving": lambda p: [self._moving(self._index(p))],
            amc + "control.getStatusMovingAllAxes": lambda p: [self._moving(i) for i in range(len(self.axes))],
            amc + "status.getStatusEotFwd": lambda p: [self._eot(self._index(p))[0]],
            amc + "status.getStatusEotBkwd": lambda p: [self._eot(self._index(p))[1]],
            amc + "move.setControlEotOutputDeactive": self._set_eot_deactive,
            amc + "status.getStatusConnected": lambda p: [self.axes[self._index(p, connected=False)].connected],
            amc + "status.getOlStatus": lambda p: [0 if self.axes[self._index(p, connected=False)].connected else 2],
            amc + "status.getFullCombinedStatus": lambda p: [self._combined_status(self._index(p))],
            amc + "control.setControlAmplitude": lambda p: self._set_field(p, "amplitude_mv", int, 0, 60_000),
            amc + "control.getControlAmplitude": lambda p: [self._axis(p).amplitude_mv],
            amc + "control.setControlFrequency": lambda p: self._set_field(p, "frequency_mhz", int, 1_000, 5_000_000),
            amc + "control.getControlFrequency": lambda p: [self._axis(p).frequency_mhz],
            amc + "control.setActorParametersByName": self._set_actor,
            amc + "control.getActorName": lambda p: [self._axis(p).actor],
            **self._user_calls(),
        }

    def _index(self, params: list[Any], connected: bool = True) -> int:
        if not params or not isinstance(params[0], int) or isinstance(params[0], bool) or not 0 <= params[0] < len(self.axes):
            raise _ControllerError(ERR_INVALID_PARAM)
        if connected and not self.axes[params[0]].connected:
            raise _ControllerError(ERR_NOT_CONNECTED)
        return params[0]

    def _axis(self, params: list[Any]) -> AxisState:
        return self.axes[self._index(params)]

    def _backend_axis(self, index: int):
        return self.stage.axes[self.axis_names[index]]

    @staticmethod
    def _param(params: list[Any], position: int, kind: type) -> Any:
        return param(params, position, kind)

    def _error_number_to_string(self, params: list[Any]) -> list[Any]:
        lang = self._param(params, 0, int)
        number = self._param(params, 1, int)
        name, text = ERROR_NAMES.get(number, (f"ERR_{number}", f"Unknown error {number}"))
        return [text if lang == 1 else name]

    def _set_output(self, params: list[Any]) -> list[Any]:
        index = self._index(params)
        state = self.axes[index]
        state.output = self._param(params, 1, bool)
        if not state.output:
            self._backend_axis(index).halt()
        else:
            self._apply_motion(index)
        return []

    def _set_move(self, params: list[Any]) -> list[Any]:
        index = self._index(params)
        state = self.axes[index]
        was_moving, state.move = state.move, self._param(params, 1, bool)
        if state.move and not was_moving:
            self._apply_motion(index)
        elif not state.move:
            self._backend_axis(index).halt()
        return []

    def _set_target(self, params: list[Any]) -> list[Any]:
        index = self._index(params)
        self.axes[index].target_nm = self._param(params, 1, int)
        self._apply_motion(index)
        return []

    def _set_target_range(self, params: list[Any]) -> list[Any]:
        value = self._param(params, 1, int)
        if value <= 0:
            raise _ControllerError(ERR_INVALID_PARAM)
        self._axis(params).target_range_nm = value
        return []

    def _set_eot_deactive(self, params: list[Any]) -> list[Any]:
        self._axis(params).eot_output_deactive = self._param(params, 1, bool)
        return []

    def _set_field(self, params: list[Any], name: str, kind: type, low: float, high: float) -> list[Any]:
        value = self._param(params, 1, kind)
        if not low <= value <= high:
            raise _ControllerError(ERR_INVALID_PARAM)
        setattr(self._axis(params), name, value)
        return []

    def _set_actor(self, params: list[Any]) -> list[Any]:
        state = self._axis(params)
        if len(params) < 2 or not isinstance(params[1], str):
            raise _ControllerError(ERR_INVALID_PARAM)
        state.actor = params[1]
        return []

    # ------------------------------------------------------------------ motion

    def _apply_motion(self, index: int) -> None:
        """With output and move on, send the target to the backend (clamped to its travel)."""
        state = self.axes[index]
        if not (state.output and state.move):
            return
        axis = self._backend_axis(index)
        low, high = axis.limits_nm
        backend_target = state.target_nm + state.offset_nm
        target = min(max(backend_target, low), high)
        state.eot_forward = backend_target > high
        state.eot_backward = backend_target < low
        try:
            axis.move_to(target)
        except EndOfTravel:
            forward = backend_target >= self._backend_position(index)
            state.eot_forward, state.eot_backward = forward, not forward
        except OutOfRange:
            raise _ControllerError(ERR_INVALID_PARAM) from None

    def _backend_position(self, index: int) -> float:
        return float(self._backend_axis(index).position_nm())

    def _position(self, index: int) -> int:
        """The controller's reading: integer nm from the counter's zero."""
        return int(round(self._backend_position(index) - self.axes[index].offset_nm))

    def _moving(self, index: int) -> int:
        state = self.axes[index]
        if state.move and not state.output:
            return 2
        if state.output and self._backend_axis(index).is_moving():
            return 1
        return 0

    def _in_target_range(self, index: int) -> bool:
        state = self.axes[index]
        return abs(self._position(index) - state.target_nm) <= state.target_range_nm

    def _eot(self, index: int) -> tuple[bool, bool]:
        state = self.axes[index]
        if (state.eot_forward or state.eot_backward) and self._backend_axis(index).is_moving():
            return False, False  # still travelling towards the end switch
        return state.eot_forward, state.eot_backward

    def _positions_and_voltages(self, params: list[Any]) -> list[Any]:
        positions = [self._position(i) if s.connected else 0 for i, s in enumerate(self.axes)]
        voltages = [0 for _ in self.axes]  # DC offset in mV: fine positioning is not emulated
        return [*positions, *voltages]

    def _combined_status(self, index: int) -> str:
        state = self.axes[index]
        if not state.connected:
            return "not connected"
        if any(self._eot(index)):
            return "end of travel"
        moving = self._moving(index)
        if moving == 2:
            return "pending"
        if moving == 1:
            return "moving"
        return "in target range" if self._in_target_range(index) else "idle"


def _looks_incomplete(text: str, exc: json.JSONDecodeError) -> bool:
    """True if ``text`` may still become valid JSON with more bytes (an unfinished request)."""
    if exc.pos >= len(text.rstrip()):
        return True
    return exc.msg.startswith("Unterminated string")



def main(argv: list[str] | None = None) -> int:
    """Serve a simulated World's stage until interrupted (``python -m operascope.simulators.emulators.amc100``)."""
    return serve_amc100(argv, Amc100Server, __doc__.splitlines()[0])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
