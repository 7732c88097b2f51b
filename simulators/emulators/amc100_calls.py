"""The AMC100 emulator's error numbers and the user calls beyond closed-loop moves.

Error numbers: the AMC100 C header ``amc.h`` published with Attocube's DLL (NCB_* return values); the
JSON-RPC interface returns them as ``result[0]`` and ``com.attocube.system.errorNumberToString`` gives
their text. The JSON interface's own table is not published in the vendor's Python client
(``AMC.py``/``ACS.py`` only pass the number to ``errorNumberToString``), so the header's numbers are used.

Calls here (names, parameter order and types as in Attocube's AMC Python client, units as in amc.h:
positions Int32 nm, voltages Int32 mV): ``control.setReset``, ``system.getFirmwareVersion``,
``control.getActorType``, ``control.searchReferencePosition`` / ``getReferencePosition`` /
``status.getStatusReference`` / ``move.moveReference``, ``move.setNSteps`` / ``getNSteps`` /
``writeNSteps`` / ``performNSteps`` / ``setSingleStep``, ``move.setControlContinuousFwd/Bkwd`` and their
getters, ``status.getStatusEot``. Open-loop step size and the reference mark's place are the emulator's
choice (no vendor figure): ``STEP_NM`` per step, reference mark at the backend's zero.
"""

from __future__ import annotations

import math
from typing import Any, Callable

ERR_OK = 0
ERR_ERROR = -1
ERR_NOT_CONNECTED = -2
ERR_DRIVER = -3
ERR_NETWORK = -4
ERR_TIMEOUT = -6
ERR_INVALID_PARAM = -9
ERR_NOT_AVAILABLE = 10
ERROR_NAMES = {
    ERR_OK: ("NCB_Ok", "No error"),
    ERR_ERROR: ("NCB_Error", "Unspecified error"),
    ERR_NOT_CONNECTED: ("NCB_NotConnected", "No active connection to device"),
    ERR_DRIVER: ("NCB_DriverError", "Error in communication with driver"),
    ERR_NETWORK: ("NCB_NetworkError", "Network error when connecting to AMC"),
    ERR_TIMEOUT: ("CONNECTION_TIMEOUT", "Connection timeout"),
    ERR_INVALID_PARAM: ("NCB_InvalidParam", "Parameter out of range"),
    ERR_NOT_AVAILABLE: ("NCB_FeatureNotAvailable", "Feature only available in pro version"),
}
ACTOR_LINEAR, ACTOR_GONIO, ACTOR_ROTATOR = 0, 1, 2
STEP_NM = 50  # open-loop step of the emulated ECSx5050 (emulator's choice)
FIRMWARE_VERSION = "1.3.11-emu"
INT32_MAX = 2**31 - 1


class ControllerError(Exception):
    """A handler's non-zero error number."""

    def __init__(self, error_number: int) -> None:
        super().__init__(error_number)
        self.error_number = error_number


def param(params: list[Any], position: int, kind: type) -> Any:
    """Parameter ``position`` as ``kind`` (bool, int, float or str), strictly: a fractional number where the
    vendor types an integer, a number where it types a bool, or a missing parameter answer NCB_InvalidParam.
    An integral JSON float (``20000.0``) is taken as the integer: whether the controller's parser accepts it
    is not settled by vendor material, so only what is certainly wrong (a fraction) is refused."""
    if len(params) <= position:
        raise ControllerError(ERR_INVALID_PARAM)
    value = params[position]
    if kind is bool or kind is str:
        if not isinstance(value, kind):
            raise ControllerError(ERR_INVALID_PARAM)
        return value
    if kind is int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > INT32_MAX:
            raise ControllerError(ERR_INVALID_PARAM)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ControllerError(ERR_INVALID_PARAM)
    return float(value)


class UserCallsMixin:
    """Handlers for :class:`operascope.simulators.emulators.amc100.Amc100Server` (uses its axes and helpers)."""

    axes: list[Any]

    def _user_calls(self) -> dict[str, Callable[[list[Any]], list[Any]]]:
        amc = "com.attocube.amc."
        return {
            "com.attocube.system.getFirmwareVersion": lambda p: [FIRMWARE_VERSION],
            amc + "control.setReset": self._set_reset,
            amc + "control.getActorType": self._actor_type,
            amc + "control.searchReferencePosition": self._search_reference,
            amc + "control.getReferencePosition": lambda p: [int(self._axis(p).reference_nm)],
            amc + "status.getStatusReference": lambda p: [self._axis(p).reference_valid],
            amc + "move.moveReference": self._move_reference,
            amc + "move.setNSteps": self._set_n_steps,
            amc + "move.writeNSteps": self._write_n_steps,
            amc + "move.getNSteps": lambda p: [self._axis(p).n_steps],
            amc + "move.performNSteps": lambda p: self._step(p, param(p, 1, bool), self._axis(p).n_steps),
            amc + "move.setSingleStep": lambda p: self._step(p, param(p, 1, bool), 1),
            amc + "move.setControlContinuousFwd": lambda p: self._continuous(p, forward=True),
            amc + "move.setControlContinuousBkwd": lambda p: self._continuous(p, forward=False),
            amc + "move.getControlContinuousFwd": lambda p: [self._continuous_state(p) == 1],
            amc + "move.getControlContinuousBkwd": lambda p: [self._continuous_state(p) == -1],
            amc + "status.getStatusEot": lambda p: [any(self._eot(self._index(p)))],
        }

    # the server provides these
    def _axis(self, params: list[Any]) -> Any: ...
    def _index(self, params: list[Any], connected: bool = True) -> int: ...
    def _backend_axis(self, index: int) -> Any: ...
    def _eot(self, index: int) -> tuple[bool, bool]: ...
    def _backend_position(self, index: int) -> float: ...

    def _actor_type(self, params: list[Any]) -> list[Any]:
        self._axis(params)  # checks the axis
        return [ACTOR_LINEAR]  # the ECSx5050 is a linear positioner

    def _set_reset(self, params: list[Any]) -> list[Any]:
        """Position counter to zero here; reference invalid (amc.h: AMC_setReset)."""
        index = self._index(params)
        state = self.axes[index]
        state.offset_nm = self._backend_position(index)
        state.reference_valid = False
        state.target_nm = 0
        return []

    def _search_reference(self, params: list[Any]) -> list[Any]:
        """The reference mark sits at the backend's zero; finding it makes the reference valid."""
        state = self._axis(params)
        state.reference_nm = int(round(-state.offset_nm))
        state.reference_valid = True
        return []

    def _move_reference(self, params: list[Any]) -> list[Any]:
        """Closed-loop move to the reference; needs a valid reference (else NCB_Error)."""
        index = self._index(params)
        state = self.axes[index]
        if not state.reference_valid:
            raise ControllerError(ERR_ERROR)
        state.target_nm = state.reference_nm
        state.move = True
        self._apply_motion(index)  # type: ignore[attr-defined]
        return []

    def _write_n_steps(self, params: list[Any]) -> list[Any]:
        steps = param(params, 1, int)
        if steps < 0:
            raise ControllerError(ERR_INVALID_PARAM)
        self._axis(params).n_steps = steps
        return []

    def _set_n_steps(self, params: list[Any]) -> list[Any]:
        backward = param(params, 1, bool)
        steps = param(params, 2, int)
        if steps < 0:
            raise ControllerError(ERR_INVALID_PARAM)
        self._axis(params).n_steps = steps
        return self._step(params, backward, steps)

    def _step(self, params: list[Any], backward: bool, steps: int) -> list[Any]:
        """Open-loop steps: closed-loop move off, the axis moves by ``steps`` x STEP_NM (needs the output on)."""
        index = self._index(params)
        state = self.axes[index]
        if not state.output:
            raise ControllerError(ERR_ERROR)
        state.move = False
        self._open_loop_to(index, self._backend_position(index) + (-1 if backward else 1) * steps * STEP_NM)
        return []

    def _continuous(self, params: list[Any], forward: bool) -> list[Any]:
        """Enable: drive towards the end of travel (stopping the other direction); False stops every movement."""
        index = self._index(params)
        state = self.axes[index]
        enable = param(params, 1, bool)
        if not enable:
            state.continuous = 0
            self._backend_axis(index).halt()
            return []
        if not state.output:
            raise ControllerError(ERR_ERROR)
        state.move = False
        state.continuous = 1 if forward else -1
        low, high = self._backend_axis(index).limits_nm
        self._open_loop_to(index, high + 1.0 if forward else low - 1.0)
        return []

    def _continuous_state(self, params: list[Any]) -> int:
        index = self._index(params)
        state = self.axes[index]
        if state.continuous and not self._backend_axis(index).is_moving():
            state.continuous = 0  # stopped at the end of travel
        return state.continuous

    def _open_loop_to(self, index: int, backend_target_nm: float) -> None:
        """Move the backend towards ``backend_target_nm``; past the travel it stops at the end switch."""
        state = self.axes[index]
        axis = self._backend_axis(index)
        low, high = axis.limits_nm
        state.eot_forward = backend_target_nm > high
        state.eot_backward = backend_target_nm < low
        axis.move_to(min(max(backend_target_nm, low), high))
