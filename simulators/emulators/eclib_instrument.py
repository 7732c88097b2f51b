"""The instrument behind the fake EC-Lab library (fake_eclib): a VMP300 whose channel is any Potentiostat backend.

This module holds what the real DLL keeps inside the instrument: which instruments are plugged at which
address, open connections, the loaded technique, the row buffer. Errors are :class:`EcLibFailure` carrying an
EC-lib error number (the table in easy-biologic's ``lib/ec_errors.py``, which agrees with the development
package's manual for the codes used here); fake_eclib turns them into the C return value.

Test hooks (not part of any vendor API): :func:`attach`, :func:`detach`, :func:`unplug`, :func:`replug`,
:func:`fail_next`, :func:`fail_firmware_load`, :func:`set_start_time_nan`, :func:`loaded_techniques`,
:func:`open_connections`. State is process-global, as the vendor DLL's own state is.
"""

from __future__ import annotations

import logging
import math
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

from operascope.devices.base import (
    OCV,
    Clock,
    ConstantCurrent,
    ConstantVoltage,
    DeviceError,
    DeviceLost,
    DeviceTimeout,
    EchemPoint,
    Potentiostat,
    WallClock,
)

log = logging.getLogger(__name__)

ERR_NOT_CONNECTED, ERR_CHANNEL_NOT_PLUGGED, ERR_INVALID_PARAMETERS = -1, -3, -4
ERR_FUNCTION_FAILED, ERR_ECLAB_LOADED, ERR_CHANNEL_RUNNING = -6, -9, -13
ERR_COMM_FAILED, ERR_CONNECTION_FAILED, ERR_LOAD_FIRMWARE_FAILED = -200, -201, -205
ERR_FIRMWARE_NOT_LOADED, ERR_ECC_NOT_EXISTS = -308, -400
DEVICE_CODE_VMP300 = 12
FIRMWARE_VERSION = 1140
FIRMWARE_CODE_NONE, FIRMWARE_CODE_INTERPRETER = 0, 1  # ChannelInfo.FirmwareCode (kernel loaded = interpreter)
STATE_STOP, STATE_RUN = 0, 1
MAX_WORDS_PER_GET_DATA = 1000
#: Technique ids in DataInfo.TechniqueID (easy-biologic's TechniqueId enum: OCV 100, CPLIMIT 155, CALIMIT 157).
TECHNIQUE_IDS = {"ocv": 100, "cplimit": 155, "calimit": 157}
COLUMNS = {"ocv": 3, "cplimit": 5, "calimit": 5}
#: I_Range enum -> full scale (A); KEEP (-1), BOOSTER (11) and AUTO (12) are refused in CP/CPLIMIT.
I_RANGE_A = {4: 1e-6, 5: 1e-5, 6: 1e-4, 7: 1e-3, 8: 1e-2, 9: 1e-1, 10: 1.0}
E_RANGES = (0, 1, 2, 3)
LIMIT_EWE_ABOVE, LIMIT_EWE_BELOW, LIMIT_I_BELOW = 5, 1, 1 | (3 << 5)
#: Parameter name -> C type the .ecc file declares ("int", "bool", "single"). Names are case-sensitive.
_STEP = {"vs_initial": "bool", "Duration_step": "single", "Step_number": "int", "Record_every_dT": "single",
         "Test1_Config": "int", "Test1_Value": "single", "Test2_Config": "int", "Test2_Value": "single",
         "Test3_Config": "int", "Test3_Value": "single", "Exit_Cond": "int", "N_Cycles": "int",
         "I_Range": "int", "E_Range": "int", "Bandwidth": "int"}
PARAMETER_TYPES: dict[str, dict[str, str]] = {
    "ocv": {"Rest_time_T": "single", "Record_every_dE": "single", "Record_every_dT": "single", "E_Range": "int",
            "Bandwidth": "int"},
    "cplimit": {"Current_step": "single", "Record_every_dE": "single", **_STEP},
    "calimit": {"Voltage_step": "single", "Record_every_dI": "single", **_STEP},
}
OPTIONAL_PARAMETERS = {"Bandwidth"}


class EcLibFailure(Exception):
    """A fake DLL call fails with EC-lib error ``code``."""

    def __init__(self, code: int, detail: str = "") -> None:
        self.code = int(code)
        super().__init__(f"EC-lib error {code}: {detail}")


def float_to_word(value: float) -> int:
    """IEEE-754 single bit pattern of ``value`` as the instrument sends it."""
    return struct.unpack("<I", struct.pack("<f", float(value)))[0]


@dataclass
class Channel:
    technique: str | None = None
    params: dict[str, list[Any]] = field(default_factory=dict)
    loaded: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    firmware_loaded: bool = False
    start_s: float = 0.0
    epoch_s: float | None = None
    rows: list[list[int]] = field(default_factory=list)


@dataclass
class Instrument:
    backend: Potentiostat
    channel_index: int
    clock: Clock
    time_base_s: float
    present: bool = True
    lost_by_backend: bool = False
    firmware_fails: bool = False
    start_time_nan: bool = False
    failures: dict[str, list[int]] = field(default_factory=dict)
    channel: Channel = field(default_factory=Channel)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def check_link(self, function: str) -> None:
        queued = self.failures.get(function)
        if queued:
            raise EcLibFailure(queued.pop(0), f"injected on {function}")
        if not self.present or self.lost_by_backend:
            raise EcLibFailure(ERR_NOT_CONNECTED, "instrument unplugged")

    def channel_for(self, ch: int) -> Channel:
        if ch != self.channel_index:
            raise EcLibFailure(ERR_CHANNEL_NOT_PLUGGED, f"channel {ch} is not plugged (plugged: {self.channel_index})")
        return self.channel

    def backend_call(self, function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except DeviceLost:
            self.lost_by_backend = True
            raise EcLibFailure(ERR_COMM_FAILED, "backend lost") from None
        except DeviceTimeout:
            raise EcLibFailure(ERR_COMM_FAILED, "backend timeout") from None
        except DeviceError as exc:
            raise EcLibFailure(ERR_INVALID_PARAMETERS, str(exc)) from None

    def drain(self) -> None:
        """Move the backend's new points into the row buffer as raw words."""
        channel = self.channel
        if channel.technique is None:
            return
        points: list[EchemPoint] = self.backend_call(self.backend.read_new)
        for point in points:
            ticks = max(0, int(round((point.time_s - channel.start_s) / self.time_base_s)))
            row = [ticks >> 32, ticks & 0xFFFFFFFF, float_to_word(point.voltage_v)]
            if COLUMNS[channel.technique] == 5:
                row += [float_to_word(point.current_a), 0]
            channel.rows.append(row)


class Bus:
    """Attached instruments and open connections (idn -> address)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.instruments: dict[str, Instrument] = {}
        self.by_idn: dict[int, str] = {}
        self.next_idn = 1

    def instrument(self, address: str) -> Instrument:
        try:
            return self.instruments[address]
        except KeyError:
            raise EcLibFailure(ERR_CONNECTION_FAILED, f"no instrument at {address!r}") from None

    def by_connection(self, idn: int, function: str) -> Instrument:
        address = self.by_idn.get(idn)
        if address is None or address not in self.instruments:
            raise EcLibFailure(ERR_NOT_CONNECTED, f"idn {idn} is not connected")
        instrument = self.instruments[address]
        instrument.check_link(function)
        return instrument


BUS = Bus()


def attach(address: str, potentiostat: Potentiostat, channel: int = 0, clock: Clock | None = None,
           time_base_s: float = 2e-5) -> None:
    """Plug a VMP300 at ``address`` whose ``channel`` (0-based) is ``potentiostat`` (opened here)."""
    with BUS.lock:
        if address in BUS.instruments:
            raise ValueError(f"a fake Biologic is already attached at {address!r}")
        if not potentiostat.is_open:
            potentiostat.open()
        BUS.instruments[address] = Instrument(potentiostat, int(channel), clock or WallClock(), float(time_base_s))


def detach(address: str) -> None:
    """Remove the instrument at ``address`` (its channel is stopped)."""
    with BUS.lock:
        instrument = BUS.instruments.pop(address, None)
    if instrument is not None:
        try:
            instrument.backend.stop()
        except DeviceError:
            pass


def unplug(address: str) -> None:
    """Pull the cable: calls fail with -1 (not connected), connect with -201."""
    BUS.instrument(address).present = False


def replug(address: str) -> None:
    BUS.instrument(address).present = True


def fail_next(address: str, function: str, code: int, count: int = 1) -> None:
    """The next ``count`` calls of DLL ``function`` (e.g. "BL_GetData") return EC-lib ``code``."""
    BUS.instrument(address).failures.setdefault(function, []).extend([int(code)] * count)


def fail_firmware_load(address: str, fails: bool = True) -> None:
    """BL_LoadFirmware reports -205 for the channel (as when EC-Lab holds it or the kernel file is wrong)."""
    BUS.instrument(address).firmware_fails = fails


def set_start_time_nan(address: str, nan: bool = True) -> None:
    """DataInfo.StartTime comes back NaN (seen on instruments; easy-biologic maps it to 0)."""
    BUS.instrument(address).start_time_nan = nan


def loaded_techniques(address: str) -> list[tuple[str, dict[str, Any]]]:
    """Every (technique, parameters) loaded on the instrument's channel so far (single values unwrapped)."""
    return [(name, {k: v[0] if len(v) == 1 else v for k, v in params.items()})
            for name, params in BUS.instrument(address).channel.loaded]


def open_connections(address: str) -> int:
    """How many connections (idn) to ``address`` are open (not disconnected)."""
    with BUS.lock:
        return sum(1 for a in BUS.by_idn.values() if a == address)


# --------------------------------------------------------------------------- techniques


def technique_name(path: str) -> str:
    """'ocv4.ecc' -> 'ocv' (VMP300 is in the SP-300 family: easy-biologic appends '4'). -400 otherwise."""
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    if not name.endswith(".ecc"):
        raise EcLibFailure(ERR_ECC_NOT_EXISTS, f"{path!r} is not an .ecc file")
    stem = name[:-4]
    if not stem.endswith("4") or stem[:-1] not in PARAMETER_TYPES:
        raise EcLibFailure(ERR_ECC_NOT_EXISTS, f"{name!r}: a VMP300 loads the SP-300 family files "
                           f"({', '.join(t + '4.ecc' for t in PARAMETER_TYPES)})")
    return stem[:-1]


def check_parameters(name: str, params: dict[str, list[tuple[str, Any]]]) -> dict[str, list[Any]]:
    """Check names, C types and values as the .ecc loader would; values by name (index order)."""
    declared = PARAMETER_TYPES[name]
    unknown = sorted(set(params) - set(declared))
    missing = sorted(set(declared) - set(params) - OPTIONAL_PARAMETERS)
    if unknown or missing:
        raise EcLibFailure(ERR_INVALID_PARAMETERS, f"{name}: unknown {unknown}, missing {missing}")
    values: dict[str, list[Any]] = {}
    for key, entries in params.items():
        wrong = [kind for kind, _ in entries if kind != declared[key]]
        if wrong:  # which code the DLL returns for a type mismatch is not documented: -4 here
            raise EcLibFailure(ERR_INVALID_PARAMETERS, f"{name}.{key} is a {declared[key]}, got {wrong[0]}")
        values[key] = [value for _, value in entries]
    if values["E_Range"][0] not in E_RANGES:
        raise EcLibFailure(ERR_INVALID_PARAMETERS, f"E_Range {values['E_Range'][0]}")
    if name == "ocv":
        if not values["Rest_time_T"][0] > 0:
            raise EcLibFailure(ERR_INVALID_PARAMETERS, "Rest_time_T must be > 0")
        return values
    if values["Step_number"][0] != 0 or any(len(values[k]) != 1 for k in ("Duration_step", "Test1_Config", "Exit_Cond")):
        raise EcLibFailure(ERR_INVALID_PARAMETERS, "the fake runs single-step techniques (Step_number 0)")
    duration = values["Duration_step"][0]
    if not (math.isfinite(duration) and duration > 0):
        raise EcLibFailure(ERR_INVALID_PARAMETERS, "Duration_step must be > 0")
    i_range, config = values["I_Range"][0], values["Test1_Config"][0]
    if name == "cplimit":
        if i_range not in I_RANGE_A:
            raise EcLibFailure(ERR_INVALID_PARAMETERS, f"I_Range {i_range} not allowed in CPLIMIT (KEEP/AUTO refused)")
        current = values["Current_step"][0]
        if abs(current) > I_RANGE_A[i_range]:
            raise EcLibFailure(ERR_INVALID_PARAMETERS, f"Current_step {current} A exceeds I_Range {i_range}")
        if config not in (0, LIMIT_EWE_ABOVE, LIMIT_EWE_BELOW) or \
                (config == LIMIT_EWE_ABOVE and current < 0) or (config == LIMIT_EWE_BELOW and current > 0):
            raise EcLibFailure(ERR_INVALID_PARAMETERS, f"Test1_Config {config} cannot fire for Current_step {current} A")
    elif config not in (0, LIMIT_I_BELOW):
        raise EcLibFailure(ERR_INVALID_PARAMETERS, "Test1_Config must be 0 or |I| < value")
    return values


def backend_technique(name: str, values: dict[str, list[Any]]) -> OCV | ConstantCurrent | ConstantVoltage:
    record_s = float(values["Record_every_dT"][0])
    if name == "ocv":
        return OCV(duration_s=float(values["Rest_time_T"][0]), record_every_s=record_s)
    duration_s = float(values["Duration_step"][0])
    active = values["Test1_Config"][0] != 0
    if name == "cplimit":
        current = float(values["Current_step"][0])
        limit = float(values["Test1_Value"][0]) if active else (10.0 if current >= 0 else -10.0)
        return ConstantCurrent(current_a=current, v_limit_v=limit, duration_s=duration_s, record_every_s=record_s)
    return ConstantVoltage(voltage_v=float(values["Voltage_step"][0]),
                           i_limit_a=float(values["Test1_Value"][0]) if active else 0.0,
                           duration_s=duration_s, record_every_s=record_s)
