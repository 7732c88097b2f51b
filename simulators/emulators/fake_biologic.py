"""A fake of the easy-biologic library (EC-Lab Development Package wrapper) over a Potentiostat backend.

It exposes the names :mod:`operascope.devices.biologic` uses from ``easy_biologic`` (devices.md section 5):
``BiologicDevice(address, timeout, populate_info)`` with ``connect``, ``disconnect``,
``is_connected``, ``kind``, ``info``, ``plugged``, ``channel_info``, ``load_technique``,
``start_channel``, ``stop_channel``, ``get_values`` and ``async get_data``; and
``lib.ec_lib`` (``get_data``, ``get_values``, ``convert_numeric``, ``DeviceCodes``, ``IRange``,
``ERange``, ``ChannelState``) and ``lib.ec_errors.EcError`` (``.value`` = EC-lib error code).
Channels are 0-based as in easy-biologic.

Data come back as the SDK delivers them: ``get_data`` returns at most 1000 uint32 words per
call, rows of ``t_high, t_low, Ewe`` (OCV, technique id 100) or ``t_high, t_low, Ewe, I, cycle``
(CPLIMIT 155, CALIMIT 157 [id unconfirmed]), Ewe and I as IEEE-754 single bit patterns to be
converted with ``convert_numeric``; time = ``DataInfo.StartTime + CurrentValues.TimeBase *
((t_high << 32) + t_low)`` seconds since the channel's first start.

Techniques are translated to the backend's (any operascope.devices.base.Potentiostat, e.g. the
simulated cell): ``ocv`` -> OCV, ``cplimit`` -> ConstantCurrent (Test1 limit on Ewe, config 5
= Ewe > v, 1 = Ewe < v), ``calimit`` -> ConstantVoltage (Test1 limit on |I| <). Parameter
names, I_Range (smallest range >= |I|, AUTO refused in CP/CPLIMIT) and limit words are checked
like the instrument would; a mistake raises EcError(-8, fake code for invalid parameters).

Faults: :func:`unplug`/:func:`replug` (calls fail with -1 not connected, connect with -201),
:func:`fail_next` (any EC-lib error code on a named function), a running channel refuses a new
technique (-13). Backend DeviceLost behaves as an unplug until its ``reconnect()`` succeeds;
backend DeviceTimeout is -200 (communication failed).

Test hooks (not part of easy-biologic): :func:`attach`, :func:`detach`, :func:`unplug`,
:func:`replug`, :func:`fail_next`, :func:`loaded_techniques`, :func:`open_connections`.
"""

from __future__ import annotations

import enum
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

# --------------------------------------------------------------------------- EC-lib error codes (devices.md 5.2)

ERR_NOT_CONNECTED = -1
ERR_INVALID_PARAMETERS = -8  # fake code
ERR_ECLAB_LOADED = -9
ERR_CHANNEL_RUNNING = -13
ERR_NO_TECHNIQUE = -14  # fake code
ERR_COMM_FAILED = -200
ERR_CONNECTION_FAILED = -201
ERR_FIRMWARE_NOT_LOADED = -308
_ERROR_TEXT = {
    ERR_NOT_CONNECTED: "ERR_GEN_NOTCONNECTED: no instrument connected",
    ERR_INVALID_PARAMETERS: "invalid technique parameters (fake)",
    ERR_ECLAB_LOADED: "ERR_GEN_ECLAB_LOADED: EC-Lab firmware loaded on the instrument",
    ERR_CHANNEL_RUNNING: "ERR_INSTR_CHANNELRUNNING: channel is running",
    ERR_NO_TECHNIQUE: "no technique loaded on the channel (fake)",
    ERR_COMM_FAILED: "ERR_COMM_COMMFAILED: communication failed with the instrument",
    ERR_CONNECTION_FAILED: "ERR_COMM_CONNECTIONFAILED: cannot establish connection with the instrument",
    ERR_FIRMWARE_NOT_LOADED: "ERR_FIRM_FIRMWARENOTLOADED: no firmware loaded on the channel",
}

MAX_WORDS_PER_GET_DATA = 1000
TECHNIQUE_IDS = {"ocv": 100, "cplimit": 155, "calimit": 157}
COLUMNS = {"ocv": 3, "cplimit": 5, "calimit": 5}


class EcError(Exception):
    """An EC-lib call failed; ``value`` is the error code."""

    def __init__(self, value: int, message: str | None = None) -> None:
        self.value = int(value)
        super().__init__(f"[ec_lib] ({self.value}) {message or _ERROR_TEXT.get(self.value, 'unknown error')}")


class DeviceCodes(enum.IntEnum):
    """Instrument models (subset; numbers as in the EC-lib headers, from memory: unconfirmed)."""

    KBIO_DEV_VMP3 = 5
    KBIO_DEV_VMP300 = 12
    KBIO_DEV_SP300 = 16


class IRange(enum.IntEnum):
    KEEP = -1
    p100 = 0
    n1 = 1
    n10 = 2
    n100 = 3
    u1 = 4
    u10 = 5
    u100 = 6
    m1 = 7
    m10 = 8
    m100 = 9
    a1 = 10
    BOOSTER = 11
    AUTO = 12


class ERange(enum.IntEnum):
    v2_5 = 0
    v5 = 1
    v10 = 2
    AUTO = 3


class ChannelState(enum.IntEnum):
    STOP = 0
    RUN = 1
    PAUSE = 2


#: Full-scale current of each I range (A).
I_RANGE_A = {IRange.u1: 1e-6, IRange.u10: 1e-5, IRange.u100: 1e-4, IRange.m1: 1e-3, IRange.m10: 1e-2, IRange.m100: 1e-1, IRange.a1: 1.0}


@dataclass
class DeviceInfo:
    """Like the SDK's TDeviceInfo (subset)."""

    DeviceCode: int
    NumberOfChannels: int
    FirmwareVersion: int
    RAMsize: int = 0


@dataclass
class ChannelInfo:
    """Like the SDK's TChannelInfo (subset)."""

    Channel: int
    BoardType: int
    State: int
    FirmwareCode: int
    NbOfTechniques: int
    is_kernel_loaded: bool = True


@dataclass
class DataInfo:
    """Like the SDK's TDataInfo."""

    IRQskipped: int = 0
    NbRows: int = 0
    NbCols: int = 0
    TechniqueIndex: int = 0
    TechniqueID: int = 0
    ProcessIndex: int = 0
    loop: int = 0
    StartTime: float = 0.0
    MuxPad: int = 0


@dataclass
class CurrentValues:
    """Like the SDK's TCurrentValues (subset)."""

    State: int = ChannelState.STOP
    MemFilled: int = 0
    TimeBase: float = 0.0
    Ewe: float = 0.0
    I: float = 0.0  # noqa: E741 - vendor name
    ElapsedTime: float = 0.0
    IRange: int = IRange.m10
    ERange: int = ERange.v10


def float_to_word(value: float) -> int:
    """IEEE-754 single bit pattern of ``value`` as the instrument sends it."""
    return struct.unpack("<I", struct.pack("<f", float(value)))[0]


# --------------------------------------------------------------------------- the "instrument" bus


@dataclass
class _Channel:
    technique: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    loaded: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    start_s: float = 0.0
    epoch_s: float | None = None
    rows: list[list[int]] = field(default_factory=list)
    running_remote: bool = False


@dataclass
class _Instrument:
    backend: Potentiostat
    channel_index: int
    clock: Clock
    time_base_s: float
    present: bool = True
    lost_by_backend: bool = False
    connected: bool = False
    failures: dict[str, list[int]] = field(default_factory=dict)
    channel: _Channel = field(default_factory=_Channel)
    lock: threading.RLock = field(default_factory=threading.RLock)


class _Bus:
    """The attached instruments and open connections. Process-global like the vendor DLL's own state."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.instruments: dict[str, _Instrument] = {}
        self.by_idn: dict[int, str] = {}
        self.next_idn = 1


_bus = _Bus()


def attach(address: str, potentiostat: Potentiostat, channel: int = 0, clock: Clock | None = None, time_base_s: float = 2e-5) -> None:
    """Plug a VMP300 at ``address`` whose ``channel`` (0-based) is ``potentiostat`` (opened here)."""
    with _bus.lock:
        if address in _bus.instruments:
            raise ValueError(f"a fake Biologic is already attached at {address!r}")
        if not potentiostat.is_open:
            potentiostat.open()
        _bus.instruments[address] = _Instrument(potentiostat, int(channel), clock or WallClock(), float(time_base_s))


def detach(address: str) -> None:
    """Remove the instrument at ``address`` (its channel is stopped)."""
    with _bus.lock:
        instrument = _bus.instruments.pop(address, None)
    if instrument is not None:
        try:
            instrument.backend.stop()
        except DeviceError:
            pass


def unplug(address: str) -> None:
    """Pull the cable: calls fail with -1, connect with -201."""
    _instrument(address).present = False


def replug(address: str) -> None:
    _instrument(address).present = True


def fail_next(address: str, function: str, code: int, count: int = 1) -> None:
    """The next ``count`` calls of ec_lib ``function`` (e.g. "get_data") fail with EC-lib ``code``."""
    _instrument(address).failures.setdefault(function, []).extend([int(code)] * count)


def loaded_techniques(address: str) -> list[tuple[str, dict[str, Any]]]:
    """Every (technique, parameters) loaded on the instrument's channel so far."""
    return list(_instrument(address).channel.loaded)


def open_connections(address: str) -> int:
    """How many connections (idn) to ``address`` are open (not disconnected)."""
    with _bus.lock:
        return sum(1 for a in _bus.by_idn.values() if a == address)


def _instrument(address: str) -> _Instrument:
    try:
        return _bus.instruments[address]
    except KeyError:
        raise EcError(ERR_CONNECTION_FAILED, f"no instrument at {address!r}") from None


def _by_idn(idn: int | None, function: str) -> _Instrument:
    address = _bus.by_idn.get(idn) if idn is not None else None
    if address is None or address not in _bus.instruments:
        raise EcError(ERR_NOT_CONNECTED)
    instrument = _bus.instruments[address]
    _check_link(instrument, function)
    return instrument


def _check_link(instrument: _Instrument, function: str) -> None:
    queued = instrument.failures.get(function)
    if queued:
        raise EcError(queued.pop(0))
    if not instrument.present or instrument.lost_by_backend:
        raise EcError(ERR_NOT_CONNECTED)


def _backend_call(instrument: _Instrument, function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except DeviceLost:
        instrument.lost_by_backend = True
        raise EcError(ERR_COMM_FAILED) from None
    except DeviceTimeout:
        raise EcError(ERR_COMM_FAILED) from None
    except DeviceError as exc:
        raise EcError(ERR_INVALID_PARAMETERS, str(exc)) from None


# --------------------------------------------------------------------------- ec_lib functions


def connect(address: str, timeout: float = 5) -> tuple[int, DeviceInfo]:
    """Connect to the instrument at ``address``: (idn, DeviceInfo)."""
    instrument = _instrument(address)
    with instrument.lock:
        queued = instrument.failures.get("connect")
        if queued:
            raise EcError(queued.pop(0))
        if instrument.lost_by_backend:
            reconnect = getattr(instrument.backend, "reconnect", None)
            try:
                if reconnect is not None:
                    reconnect()
                instrument.lost_by_backend = False
            except DeviceError:
                pass
        if not instrument.present or instrument.lost_by_backend:
            raise EcError(ERR_CONNECTION_FAILED)
        with _bus.lock:
            idn = _bus.next_idn
            _bus.next_idn += 1
            _bus.by_idn[idn] = address
        instrument.connected = True
        return idn, DeviceInfo(DeviceCode=DeviceCodes.KBIO_DEV_VMP300, NumberOfChannels=16, FirmwareVersion=1140)


def disconnect(idn: int) -> None:
    with _bus.lock:
        address = _bus.by_idn.pop(idn, None)
    if address is None:
        raise EcError(ERR_NOT_CONNECTED)


def is_connected(idn: int) -> bool:
    address = _bus.by_idn.get(idn)
    instrument = _bus.instruments.get(address) if address is not None else None
    return bool(instrument is not None and instrument.present and not instrument.lost_by_backend)


def get_channels(idn: int, length: int = 16) -> list[bool]:
    instrument = _by_idn(idn, "get_channels")
    return [ch == instrument.channel_index for ch in range(length)]


def _channel(instrument: _Instrument, ch: int) -> _Channel:
    if ch != instrument.channel_index:
        raise EcError(ERR_INVALID_PARAMETERS, f"channel {ch} is not plugged (fake instrument has channel {instrument.channel_index})")
    return instrument.channel


def channel_info(idn: int, ch: int) -> ChannelInfo:
    instrument = _by_idn(idn, "channel_info")
    channel = _channel(instrument, ch)
    running = _backend_call(instrument, instrument.backend.is_running)
    return ChannelInfo(Channel=ch, BoardType=2, State=int(running), FirmwareCode=0, NbOfTechniques=len(channel.loaded))


def load_technique(idn: int, ch: int, technique: str, params: dict[str, Any], first: bool = True, last: bool = True) -> None:
    instrument = _by_idn(idn, "load_technique")
    with instrument.lock:
        channel = _channel(instrument, ch)
        if _backend_call(instrument, instrument.backend.is_running):
            raise EcError(ERR_CHANNEL_RUNNING)
        name = _technique_name(technique)
        try:
            _check_parameters(name, params)
        except (TypeError, ValueError, KeyError) as exc:
            raise EcError(ERR_INVALID_PARAMETERS, f"{name}: malformed parameters ({exc})") from None
        _drain(instrument)
        channel.rows.clear()  # unfetched rows of the previous technique are discarded
        channel.technique, channel.params = name, dict(params)
        channel.loaded.append((name, dict(params)))


def start_channel(idn: int, ch: int) -> None:
    instrument = _by_idn(idn, "start_channel")
    with instrument.lock:
        channel = _channel(instrument, ch)
        if channel.technique is None:
            raise EcError(ERR_NO_TECHNIQUE)
        if _backend_call(instrument, instrument.backend.is_running):
            raise EcError(ERR_CHANNEL_RUNNING)
        channel.rows.clear()  # data of an earlier technique not fetched before the restart is lost, as on the instrument
        _backend_call(instrument, instrument.backend.read_new)
        channel.start_s = instrument.clock.now_s()
        if channel.epoch_s is None:
            channel.epoch_s = channel.start_s
        _backend_call(instrument, instrument.backend.start, _to_backend_technique(channel.technique, channel.params))


def stop_channel(idn: int, ch: int) -> None:
    instrument = _by_idn(idn, "stop_channel")
    with instrument.lock:
        _channel(instrument, ch)
        _drain(instrument)
        _backend_call(instrument, instrument.backend.stop)


def get_values(idn: int, ch: int) -> CurrentValues:
    instrument = _by_idn(idn, "get_values")
    with instrument.lock:
        _channel(instrument, ch)
        running = _backend_call(instrument, instrument.backend.is_running)
        return CurrentValues(State=ChannelState.RUN if running else ChannelState.STOP, TimeBase=instrument.time_base_s,
                             ElapsedTime=instrument.clock.now_s() - instrument.channel.start_s)


def get_data(idn: int, ch: int) -> tuple[list[int], DataInfo, CurrentValues]:
    """At most 1000 words of buffered rows: (data words, DataInfo, CurrentValues)."""
    instrument = _by_idn(idn, "get_data")
    with instrument.lock:
        channel = _channel(instrument, ch)
        _drain(instrument)
        values = get_values(idn, ch)
        if channel.technique is None:
            return [], DataInfo(), values
        columns = COLUMNS[channel.technique]
        n_rows = min(len(channel.rows), MAX_WORDS_PER_GET_DATA // columns)
        rows, channel.rows = channel.rows[:n_rows], channel.rows[n_rows:]
        words = [word for row in rows for word in row]
        info = DataInfo(NbRows=n_rows, NbCols=columns, TechniqueID=TECHNIQUE_IDS[channel.technique],
                        StartTime=channel.start_s - (channel.epoch_s or channel.start_s))
        return words, info, values


def convert_numeric(num: int) -> float:
    """BL_ConvertNumericIntoSingle: a data word to its float value."""
    return struct.unpack("<f", struct.pack("<I", int(num) & 0xFFFFFFFF))[0]


def _drain(instrument: _Instrument) -> None:
    """Move the backend's new points into the channel's row buffer as raw words."""
    channel = instrument.channel
    if channel.technique is None:
        return
    points: list[EchemPoint] = _backend_call(instrument, instrument.backend.read_new)
    for point in points:
        ticks = max(0, int(round((point.time_s - channel.start_s) / instrument.time_base_s)))
        row = [ticks >> 32, ticks & 0xFFFFFFFF, float_to_word(point.voltage_v)]
        if COLUMNS[channel.technique] == 5:
            row += [float_to_word(point.current_a), 0]
        channel.rows.append(row)


# --------------------------------------------------------------------------- technique translation

_REQUIRED = {
    "ocv": ("Rest_time_T", "Record_every_dE", "Record_every_dT", "E_Range"),
    "cplimit": ("Current_step", "vs_initial", "Duration_step", "Step_number", "Record_every_dT", "Record_every_dE",
                "Test1_Config", "Test1_Value", "Test2_Config", "Test2_Value", "Test3_Config", "Test3_Value",
                "Exit_Cond", "N_Cycles", "I_Range", "E_Range"),
    "calimit": ("Voltage_step", "vs_initial", "Duration_step", "Step_number", "Record_every_dT", "Record_every_dI",
                "Test1_Config", "Test1_Value", "Test2_Config", "Test2_Value", "Test3_Config", "Test3_Value",
                "Exit_Cond", "N_Cycles", "I_Range", "E_Range"),
}
#: Limit words: active | logic<<1 | comparison<<2 | variable<<5 (Ewe 0, I 3; < 0, > 1).
LIMIT_EWE_ABOVE = 5
LIMIT_EWE_BELOW = 1
LIMIT_I_BELOW = 1 | (3 << 5)


def _technique_name(technique: str) -> str:
    name = technique.lower()
    for suffix in (".ecc", "4", "5"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name not in _REQUIRED:
        raise EcError(ERR_INVALID_PARAMETERS, f"technique {technique!r} is not one of {sorted(_REQUIRED)}")
    return name


def _first(params: dict[str, Any], key: str) -> Any:
    value = params[key]
    return value[0] if isinstance(value, (list, tuple)) else value


def _check_parameters(name: str, params: dict[str, Any]) -> None:
    missing = [key for key in _REQUIRED[name] if key not in params]
    unknown = [key for key in params if key not in _REQUIRED[name] and key != "Bandwidth"]
    if missing or unknown:
        raise EcError(ERR_INVALID_PARAMETERS, f"{name}: missing {missing}, unknown {unknown}")
    if int(params["E_Range"]) not in tuple(ERange):
        raise EcError(ERR_INVALID_PARAMETERS, f"E_Range {params['E_Range']!r}")
    if name == "ocv":
        if not float(params["Rest_time_T"]) > 0:
            raise EcError(ERR_INVALID_PARAMETERS, "Rest_time_T must be > 0")
        return
    if int(params["Step_number"]) != 0 or any(len(params[k]) != 1 for k in ("Duration_step", "Test1_Config", "Test1_Value", "Exit_Cond")):
        raise EcError(ERR_INVALID_PARAMETERS, "the fake runs single-step techniques (Step_number 0, one value per step list)")
    i_range = int(params["I_Range"])
    if name == "cplimit":
        if i_range not in I_RANGE_A:
            raise EcError(ERR_INVALID_PARAMETERS, f"I_Range {i_range} not allowed in CPLIMIT (AUTO/KEEP are refused)")
        current = float(_first(params, "Current_step"))
        if abs(current) > I_RANGE_A[IRange(i_range)]:
            raise EcError(ERR_INVALID_PARAMETERS, f"Current_step {current} A exceeds I_Range {IRange(i_range).name}")
        config = int(_first(params, "Test1_Config"))
        if config not in (0, LIMIT_EWE_ABOVE, LIMIT_EWE_BELOW):
            raise EcError(ERR_INVALID_PARAMETERS, f"Test1_Config {config} is not an Ewe limit word")
        if (config == LIMIT_EWE_ABOVE and current < 0) or (config == LIMIT_EWE_BELOW and current > 0):
            raise EcError(ERR_INVALID_PARAMETERS, f"Test1_Config {config} can never fire for Current_step {current} A")
    else:
        if int(_first(params, "Test1_Config")) not in (0, LIMIT_I_BELOW):
            raise EcError(ERR_INVALID_PARAMETERS, "Test1_Config must be 0 or |I| < value")
    if not float(_first(params, "Duration_step")) > 0 or not math.isfinite(float(_first(params, "Duration_step"))):
        raise EcError(ERR_INVALID_PARAMETERS, "Duration_step must be > 0")


def _to_backend_technique(name: str, params: dict[str, Any]):
    record_s = float(params["Record_every_dT"])
    if name == "ocv":
        return OCV(duration_s=float(params["Rest_time_T"]), record_every_s=record_s)
    duration_s = float(_first(params, "Duration_step"))
    if name == "cplimit":
        current = float(_first(params, "Current_step"))
        active = int(_first(params, "Test1_Config")) != 0
        limit = float(_first(params, "Test1_Value")) if active else (10.0 if current >= 0 else -10.0)
        return ConstantCurrent(current_a=current, v_limit_v=limit, duration_s=duration_s, record_every_s=record_s)
    active = int(_first(params, "Test1_Config")) != 0
    return ConstantVoltage(voltage_v=float(_first(params, "Voltage_step")),
                           i_limit_a=float(_first(params, "Test1_Value")) if active else 0.0,
                           duration_s=duration_s, record_every_s=record_s)


# --------------------------------------------------------------------------- easy-biologic's high-level API


class _EcLib:
    """``easy_biologic.lib.ec_lib`` as far as the driver needs it."""

    connect = staticmethod(connect)
    disconnect = staticmethod(disconnect)
    is_connected = staticmethod(is_connected)
    get_channels = staticmethod(get_channels)
    channel_info = staticmethod(channel_info)
    load_technique = staticmethod(load_technique)
    start_channel = staticmethod(start_channel)
    stop_channel = staticmethod(stop_channel)
    get_values = staticmethod(get_values)
    get_data = staticmethod(get_data)
    convert_numeric = staticmethod(convert_numeric)
    DeviceCodes = DeviceCodes
    IRange = IRange
    ERange = ERange
    ChannelState = ChannelState
    DataInfo = DataInfo
    CurrentValues = CurrentValues


class _EcErrors:
    """``easy_biologic.lib.ec_errors``."""

    EcError = EcError


class lib:  # noqa: N801 - mirrors the package easy_biologic.lib
    """``easy_biologic.lib``: ``lib.ec_lib`` and ``lib.ec_errors``."""

    ec_lib = _EcLib
    ec_errors = _EcErrors


class BiologicDevice:
    """``easy_biologic.BiologicDevice``: one instrument at ``address`` (channels 0-based)."""

    def __init__(self, address: str, timeout: float = 5, populate_info: bool = True) -> None:
        self.address = address
        self.timeout = timeout
        self.idn: int | None = None
        self.info: DeviceInfo | None = None
        self.plugged: list[bool] | None = None
        self.techniques: list[list[Any]] | None = None
        if populate_info:
            self.connect()
            self.disconnect()

    @property
    def kind(self) -> DeviceCodes:
        if self.info is None:
            raise RuntimeError("Device must have been connected before retrieving info.")
        return DeviceCodes(self.info.DeviceCode)

    def connect(self, bin_file: str | None = None, xlx_file: str | None = None) -> None:
        if self.idn is not None:
            raise RuntimeError("Device already connected.")
        self.idn, self.info = connect(self.address, self.timeout)
        self.plugged = get_channels(self.idn)
        self.techniques = [[] for _ in self.plugged]

    def disconnect(self) -> None:
        self._validate_connection()
        try:
            disconnect(self.idn)  # type: ignore[arg-type]
        finally:
            self.idn = None
            self.plugged = None
            self.techniques = None

    def is_connected(self) -> bool:
        if self.idn is None:
            return False
        connected = is_connected(self.idn)
        if not connected:
            self.idn = None
        return connected

    def channel_info(self, ch: int) -> ChannelInfo:
        self._validate_connection()
        return channel_info(self.idn, ch)  # type: ignore[arg-type]

    def load_technique(self, ch: int, technique: str, params: dict[str, Any], index: int = 0, last: bool = True, types: Any = None) -> None:
        self._validate_connection()
        load_technique(self.idn, ch, technique, params, index == 0, last)  # type: ignore[arg-type]
        assert self.techniques is not None
        self.techniques[ch].insert(index, (technique, params))

    def start_channel(self, ch: int) -> None:
        self._validate_connection()
        start_channel(self.idn, ch)  # type: ignore[arg-type]

    def stop_channel(self, ch: int) -> None:
        self._validate_connection()
        stop_channel(self.idn, ch)  # type: ignore[arg-type]

    def get_values(self, ch: int) -> CurrentValues:
        self._validate_connection()
        return get_values(self.idn, ch)  # type: ignore[arg-type]

    async def get_data(self, ch: int) -> tuple[list[int], DataInfo, CurrentValues]:
        self._validate_connection()
        return get_data(self.idn, ch)  # type: ignore[arg-type]

    def _validate_connection(self) -> bool:
        if self.idn is None:
            raise RuntimeError("Device is not connected.")
        return True
