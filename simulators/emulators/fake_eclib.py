"""A fake EC-Lab Development Package library (EClib64.dll / blfind64.dll) at the ctypes boundary.

The real easy-biologic package (from PyPI, pure Python over ctypes) runs on top of it on any OS:
:func:`load_vendor_module` imports ``easy_biologic`` with ``ctypes.WinDLL`` answering with :class:`FakeWinDLL`
(and ``platform.system()`` saying Windows only for that import), so every line of the vendor's Python code runs,
including its ctypes packing (``c_uint8(timeout)`` refuses a float exactly as on the lab PC).

Each ``BL_*`` function is a Python callable with the C function's behaviour: it takes ctypes objects (or
``byref`` of them), checks each argument's C type and structure layout and raises ``ctypes.ArgumentError``
where ctypes/the C ABI would not accept the call, writes results through the pointers, and returns the C
``int32`` error code (``BL_IsChannelPlugged`` a ``bool``). Error numbers follow the development package's
table as easy-biologic carries it (lib/ec_errors.py). Points the vendor material does not settle are marked
"unconfirmed" below. The instrument itself is :mod:`operascope.simulators.emulators.eclib_instrument`; its test
hooks (attach, unplug, fail_next, ...) are re-exported here.

Driver config: ``library = "operascope.simulators.emulators.fake_eclib"`` (the driver calls
:func:`load_vendor_module`); on the lab PC ``library = "easy_biologic"``.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import math
import platform
import struct
import sys
import threading
from typing import Any, Callable

from operascope.simulators.emulators import eclib_instrument as inst
from operascope.simulators.emulators.eclib_instrument import (  # noqa: F401 - test hooks re-exported
    BUS,
    EcLibFailure,
    attach,
    detach,
    fail_firmware_load,
    fail_next,
    loaded_techniques,
    open_connections,
    replug,
    set_start_time_nan,
    unplug,
)

log = logging.getLogger(__name__)

VENDOR_MODULE = "easy_biologic"
_CArg = type(ctypes.byref(ctypes.c_int()))
_import_lock = threading.Lock()

#: C structure layouts of the development package's header (name, ctype), checked on every pointer we fill.
_I32, _F32 = ctypes.c_int32, ctypes.c_float
LAYOUTS: dict[str, list[tuple[str, Any]]] = {
    "TDeviceInfo": [(n, _I32) for n in ("DeviceCode", "RAMSize", "CPU", "NumberOfChannels", "NumberOfSlots",
                                         "FirmwareVersion", "FirmwareDate_yyyy", "FirmwareDate_mm",
                                         "FirmwareDate_dd", "HTdisplayOn", "NbOfConnectedPC")],
    "TChannelInfo": [(n, _I32) for n in ("Channel", "BoardVersion", "BoardSerialNumber", "FirmwareCode",
                                          "FirmwareVersion", "XilinxVersion", "AmpCode", "NbAmps", "Lcboard",
                                          "Zboard", "RESERVED", "RESERVED", "MemSize", "MemFilled", "State",
                                          "MaxIRange", "MinIRange", "MaxBandwidth", "NbOfTechniques")],
    "TCurrentValues": [("State", _I32), ("MemFilled", _I32)] + [(n, _F32) for n in (
        "TimeBase", "Ewe", "EweRangeMin", "EweRangeMax", "Ece", "EceRangeMin", "EceRangeMax")] + [
        ("Eoverflow", _I32), ("I", _F32), ("IRange", _I32), ("Ioverflow", _I32), ("ElapsedTime", _F32),
        ("Freq", _F32), ("Rcomp", _F32), ("Saturation", _I32), ("OptErr", _I32), ("OptPos", _I32)],
    "TDataInfo": [(n, _I32) for n in ("IRQskipped", "NbRows", "NbCols", "TechniqueIndex", "TechniqueID",
                                       "ProcessIndex", "loop")] + [("StartTime", ctypes.c_double), ("MuxPad", _I32)],
    "TEccParam": [("ParamStr", ctypes.c_char * 64), ("ParamType", _I32), ("ParamVal", _I32), ("ParamIndex", _I32)],
}
PARAM_KINDS = {0: "int", 1: "bool", 2: "single"}


# --------------------------------------------------------------------------- argument checks (the C ABI)


def _bad(function: str, position: int, expected: str, got: Any) -> ctypes.ArgumentError:
    return ctypes.ArgumentError(f"{function} argument {position}: expected {expected}, got {type(got).__name__}")


def _scalar(function: str, position: int, value: Any, ctype: Any) -> Any:
    """A by-value scalar: an instance of ``ctype`` or a Python int (ctypes converts int). Its value."""
    if isinstance(value, ctype):
        return value.value
    if type(value) in (int, bool):
        return value
    raise _bad(function, position, ctype.__name__, value)


def _target(function: str, position: int, ref: Any, check: Callable[[Any], bool], expected: str) -> Any:
    """The object behind ``byref(obj)`` if ``check(obj)``, else ArgumentError."""
    obj = ref._obj if isinstance(ref, _CArg) else None
    if obj is None or not check(obj):
        raise _bad(function, position, f"byref({expected})", getattr(ref, "_obj", ref))
    return obj


def _struct(layout: str) -> Callable[[Any], bool]:
    want = LAYOUTS[layout]
    return lambda obj: isinstance(obj, ctypes.Structure) and [(n, t) for n, t in type(obj)._fields_] == want


def _array(ctype: Any, min_length: int = 1) -> Callable[[Any], bool]:
    return lambda obj: isinstance(obj, ctypes.Array) and obj._type_ is ctype and len(obj) >= min_length


def _fill(target: Any, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(target, name, value)


# --------------------------------------------------------------------------- the library functions


def _connect(address_ref: Any, timeout: Any, idn_ref: Any, info_ref: Any) -> int:
    f = "BL_Connect"
    address = _target(f, 1, address_ref, _array(ctypes.c_char), "char[]").value.decode("utf-8")
    if not isinstance(timeout, ctypes.c_uint8):  # uint8 in the header; easy-biologic packs c_uint8(timeout)
        raise _bad(f, 2, "c_uint8", timeout)
    idn_target = _target(f, 3, idn_ref, lambda o: isinstance(o, ctypes.c_int32), "c_int32")
    info = _target(f, 4, info_ref, _struct("TDeviceInfo"), "TDeviceInfo")
    instrument = BUS.instrument(address)
    with instrument.lock:
        queued = instrument.failures.get(f)
        if queued:
            raise EcLibFailure(queued.pop(0), "injected")
        if instrument.lost_by_backend and hasattr(instrument.backend, "reconnect"):
            try:
                instrument.backend.reconnect()  # type: ignore[attr-defined]
                instrument.lost_by_backend = False
            except inst.DeviceError:
                pass
        if not instrument.present or instrument.lost_by_backend:
            raise EcLibFailure(inst.ERR_CONNECTION_FAILED, address)
        with BUS.lock:
            idn, BUS.next_idn = BUS.next_idn, BUS.next_idn + 1
            BUS.by_idn[idn] = address
    idn_target.value = idn
    _fill(info, DeviceCode=inst.DEVICE_CODE_VMP300, RAMSize=128, CPU=1, NumberOfChannels=16, NumberOfSlots=16,
          FirmwareVersion=inst.FIRMWARE_VERSION, FirmwareDate_yyyy=2019, FirmwareDate_mm=1, FirmwareDate_dd=1,
          HTdisplayOn=0, NbOfConnectedPC=1)
    return 0


def _disconnect(idn: Any) -> int:
    key = _scalar("BL_Disconnect", 1, idn, ctypes.c_int32)
    with BUS.lock:
        if BUS.by_idn.pop(key, None) is None:
            raise EcLibFailure(inst.ERR_NOT_CONNECTED, f"idn {key}")
    return 0


def _test_connection(idn: Any) -> int:
    BUS.by_connection(_scalar("BL_TestConnection", 1, idn, ctypes.c_int32), "BL_TestConnection")
    return 0


def _load_firmware(idn: Any, active_ref: Any, results_ref: Any, length: Any, show_gauge: Any, force: Any,
                   bin_file: Any, xlx_file: Any) -> int:
    f = "BL_LoadFirmware"
    instrument = BUS.by_connection(_scalar(f, 1, idn, ctypes.c_int32), f)
    active = _target(f, 2, active_ref, _array(ctypes.c_uint8), "c_uint8[]")
    results = _target(f, 3, results_ref, _array(ctypes.c_int32), "c_int32[]")
    count = _scalar(f, 4, length, ctypes.c_int32)
    _scalar(f, 5, show_gauge, ctypes.c_bool)
    reload = bool(_scalar(f, 6, force, ctypes.c_bool))
    for position, path in ((7, bin_file), (8, xlx_file)):
        if not (isinstance(path, ctypes.c_void_p) or isinstance(path, _CArg) or path is None):
            raise _bad(f, position, "c_void_p or byref(char[])", path)
    if count > min(len(active), len(results)):
        raise EcLibFailure(inst.ERR_INVALID_PARAMETERS, f"length {count} exceeds the arrays")
    for ch in range(count):
        if not active[ch]:
            continue
        if ch != instrument.channel_index:
            results[ch] = inst.ERR_CHANNEL_NOT_PLUGGED
        elif instrument.firmware_fails:
            # Per-channel result only; the function's own return value for this case is unconfirmed (0 here).
            results[ch] = inst.ERR_LOAD_FIRMWARE_FAILED
            instrument.channel.firmware_loaded = False
        elif reload or not instrument.channel.firmware_loaded:
            if instrument.backend_call(instrument.backend.is_running) and instrument.channel.firmware_loaded:
                results[ch] = inst.ERR_CHANNEL_RUNNING
            else:
                instrument.channel.firmware_loaded = True
                results[ch] = 0
    return 0


def _is_channel_plugged(idn: Any, ch: Any) -> bool:
    instrument = BUS.by_connection(_scalar("BL_IsChannelPlugged", 1, idn, ctypes.c_int32), "BL_IsChannelPlugged")
    return _scalar("BL_IsChannelPlugged", 2, ch, ctypes.c_uint8) == instrument.channel_index


def _get_channels_plugged(idn: Any, array_ref: Any, size: Any) -> int:
    f = "BL_GetChannelsPlugged"
    instrument = BUS.by_connection(_scalar(f, 1, idn, ctypes.c_int32), f)
    channels = _target(f, 2, array_ref, _array(ctypes.c_uint8), "c_uint8[]")
    for ch in range(min(len(channels), _scalar(f, 3, size, ctypes.c_int32))):
        channels[ch] = int(ch == instrument.channel_index)
    return 0


def _channel_call(f: str, idn: Any, ch: Any) -> tuple[inst.Instrument, inst.Channel]:
    instrument = BUS.by_connection(_scalar(f, 1, idn, ctypes.c_int32), f)
    if not isinstance(ch, ctypes.c_uint8):  # uint8 channel in the header; easy-biologic always packs c_uint8
        raise _bad(f, 2, "c_uint8", ch)
    return instrument, instrument.channel_for(ch.value)


def _get_channel_infos(idn: Any, ch: Any, info_ref: Any) -> int:
    instrument, channel = _channel_call("BL_GetChannelInfos", idn, ch)
    info = _target("BL_GetChannelInfos", 3, info_ref, _struct("TChannelInfo"), "TChannelInfo")
    running = instrument.backend_call(instrument.backend.is_running)
    _fill(info, Channel=instrument.channel_index, BoardVersion=3, BoardSerialNumber=1000 + instrument.channel_index,
          FirmwareCode=inst.FIRMWARE_CODE_INTERPRETER if channel.firmware_loaded else inst.FIRMWARE_CODE_NONE,
          FirmwareVersion=inst.FIRMWARE_VERSION if channel.firmware_loaded else 0, XilinxVersion=0, AmpCode=0,
          NbAmps=0, Lcboard=0, Zboard=0, MemSize=0, MemFilled=0, State=int(bool(running)), MaxIRange=10,
          MinIRange=4, MaxBandwidth=9, NbOfTechniques=1 if channel.technique else 0)
    return 0


def _not_for_vmp300(*_args: Any) -> int:
    """Hardware configuration is an SP-300 feature (easy-biologic refuses it before calling for a VMP300)."""
    return -14  # ERR_GEN_DEVICE_NOTALLOWED; which code the DLL returns here is unconfirmed


def _define(kind: int, ctype: Any, name: str) -> Callable[..., int]:
    def define(label: Any, value: Any, index: Any, param_ref: Any) -> int:
        if not isinstance(label, bytes):
            raise _bad(name, 1, "bytes (char*)", label)
        if not isinstance(value, ctype):
            raise _bad(name, 2, ctype.__name__, value)
        position = _scalar(name, 3, index, ctypes.c_int32)
        param = _target(name, 4, param_ref, _struct("TEccParam"), "TEccParam")
        raw = value.value
        word = struct.unpack("<i", struct.pack("<f", raw))[0] if kind == 2 else int(raw)
        _fill(param, ParamStr=label[:63], ParamType=kind, ParamVal=word, ParamIndex=position)
        return 0
    return define


def _decode(params: Any) -> dict[str, list[tuple[str, Any]]]:
    """An EccParams (by value) -> {name: [(kind, value), ...] in index order}."""
    if not (isinstance(params, ctypes.Structure) and [n for n, _ in type(params)._fields_] == ["len", "pParams"]):
        raise _bad("BL_LoadTechnique", 4, "TEccParams (by value)", params)
    entries: dict[str, list[tuple[int, str, Any]]] = {}
    for i in range(params.len):
        p = params.pParams[i]
        kind = PARAM_KINDS.get(p.ParamType)
        if kind is None:
            raise EcLibFailure(inst.ERR_INVALID_PARAMETERS, f"ParamType {p.ParamType}")
        value: Any = p.ParamVal
        if kind == "single":
            value = struct.unpack("<f", struct.pack("<i", p.ParamVal))[0]
        elif kind == "bool":
            value = bool(value)
        entries.setdefault(p.ParamStr.decode("utf-8"), []).append((p.ParamIndex, kind, value))
    return {name: [(k, v) for _, k, v in sorted(items, key=lambda e: e[0])] for name, items in entries.items()}


def _load_technique(idn: Any, ch: Any, path_ref: Any, params: Any, first: Any, last: Any, verbose: Any) -> int:
    f = "BL_LoadTechnique"
    instrument, channel = _channel_call(f, idn, ch)
    path = _target(f, 3, path_ref, _array(ctypes.c_char), "char[]").value.decode("utf-8")
    for position, flag in ((5, first), (6, last), (7, verbose)):
        if not isinstance(flag, ctypes.c_bool):
            raise _bad(f, position, "c_bool", flag)
    with instrument.lock:
        if not channel.firmware_loaded:
            raise EcLibFailure(inst.ERR_FIRMWARE_NOT_LOADED, f"channel {instrument.channel_index}")
        name = inst.technique_name(path)
        values = inst.check_parameters(name, _decode(params))
        if instrument.backend_call(instrument.backend.is_running):
            raise EcLibFailure(inst.ERR_CHANNEL_RUNNING, "stop the channel first")
        instrument.drain()
        channel.rows.clear()  # unfetched rows of the previous technique are discarded
        channel.technique, channel.params = name, values
        channel.loaded.append((name, values))
    return 0


def _start_channel(idn: Any, ch: Any) -> int:
    instrument, channel = _channel_call("BL_StartChannel", idn, ch)
    with instrument.lock:
        if not channel.firmware_loaded:
            raise EcLibFailure(inst.ERR_FIRMWARE_NOT_LOADED, f"channel {instrument.channel_index}")
        if channel.technique is None:
            raise EcLibFailure(inst.ERR_FUNCTION_FAILED, "no technique loaded (code unconfirmed)")
        if instrument.backend_call(instrument.backend.is_running):
            raise EcLibFailure(inst.ERR_CHANNEL_RUNNING, "already running")
        channel.rows.clear()
        instrument.backend_call(instrument.backend.read_new)
        channel.start_s = instrument.clock.now_s()
        if channel.epoch_s is None:
            channel.epoch_s = channel.start_s
        instrument.backend_call(instrument.backend.start, inst.backend_technique(channel.technique, channel.params))
    return 0


def _stop_channel(idn: Any, ch: Any) -> int:
    instrument, _channel = _channel_call("BL_StopChannel", idn, ch)
    with instrument.lock:
        instrument.drain()
        instrument.backend_call(instrument.backend.stop)
    return 0


def _values(instrument: inst.Instrument, target: Any) -> None:
    running = instrument.backend_call(instrument.backend.is_running)
    _fill(target, State=inst.STATE_RUN if running else inst.STATE_STOP, TimeBase=instrument.time_base_s,
          ElapsedTime=instrument.clock.now_s() - instrument.channel.start_s)


def _get_current_values(idn: Any, ch: Any, values_ref: Any) -> int:
    instrument, _channel = _channel_call("BL_GetCurrentValues", idn, ch)
    target = _target("BL_GetCurrentValues", 3, values_ref, _struct("TCurrentValues"), "TCurrentValues")
    with instrument.lock:
        _values(instrument, target)
    return 0


def _get_data(idn: Any, ch: Any, data_ref: Any, info_ref: Any, values_ref: Any) -> int:
    f = "BL_GetData"
    instrument, channel = _channel_call(f, idn, ch)
    data = _target(f, 3, data_ref, _array(ctypes.c_uint32, inst.MAX_WORDS_PER_GET_DATA), "c_uint32[1000]")
    info = _target(f, 4, info_ref, _struct("TDataInfo"), "TDataInfo")
    values = _target(f, 5, values_ref, _struct("TCurrentValues"), "TCurrentValues")
    with instrument.lock:
        instrument.drain()
        _values(instrument, values)
        if channel.technique is None:
            _fill(info, NbRows=0, NbCols=0)
            return 0
        columns = inst.COLUMNS[channel.technique]
        n_rows = min(len(channel.rows), inst.MAX_WORDS_PER_GET_DATA // columns)
        rows, channel.rows = channel.rows[:n_rows], channel.rows[n_rows:]
        for i, word in enumerate(w for row in rows for w in row):
            data[i] = word
        start = math.nan if instrument.start_time_nan else channel.start_s - (channel.epoch_s or channel.start_s)
        _fill(info, IRQskipped=0, NbRows=n_rows, NbCols=columns, TechniqueIndex=0,
              TechniqueID=inst.TECHNIQUE_IDS[channel.technique], ProcessIndex=0, loop=0, StartTime=start, MuxPad=0)
    return 0


def _convert_numeric(num: Any, value_ref: Any) -> int:
    word = _scalar("BL_ConvertNumericIntoSingle", 1, num, ctypes.c_uint32)
    target = _target("BL_ConvertNumericIntoSingle", 2, value_ref, lambda o: isinstance(o, ctypes.c_float), "c_float")
    target.value = struct.unpack("<f", struct.pack("<I", word & 0xFFFFFFFF))[0]
    return 0


def _not_modelled(name: str) -> Callable[..., int]:
    def call(*_args: Any) -> int:
        raise NotImplementedError(f"{name} is exported by the EC-Lab library but not modelled by the fake")
    return call


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "BL_Connect": _connect, "BL_Disconnect": _disconnect, "BL_TestConnection": _test_connection,
    "BL_LoadFirmware": _load_firmware, "BL_IsChannelPlugged": _is_channel_plugged,
    "BL_GetChannelsPlugged": _get_channels_plugged, "BL_GetChannelInfos": _get_channel_infos,
    "BL_GetHardConf": _not_for_vmp300, "BL_SetHardConf": _not_for_vmp300, "BL_LoadTechnique": _load_technique,
    "BL_DefineBoolParameter": _define(1, ctypes.c_bool, "BL_DefineBoolParameter"),
    "BL_DefineSglParameter": _define(2, ctypes.c_float, "BL_DefineSglParameter"),
    "BL_DefineIntParameter": _define(0, ctypes.c_int32, "BL_DefineIntParameter"),
    "BL_StartChannel": _start_channel, "BL_StopChannel": _stop_channel,
    "BL_GetCurrentValues": _get_current_values, "BL_GetData": _get_data,
    "BL_ConvertNumericIntoSingle": _convert_numeric,
}
for _name in ("BL_UpdateParameters", "BL_StartChannels", "BL_StopChannels", "BL_GetErrorMsg", "BL_FindEChemDev",
              "BL_FindEChemEthDev", "BL_FindEChemUsbDev", "BL_SetConfig"):
    FUNCTIONS[_name] = _not_modelled(_name)


class FakeFunction:
    """One exported C function: ``restype`` settable as on a ctypes function pointer; returns the C result."""

    def __init__(self, name: str, implementation: Callable[..., Any]) -> None:
        self.__name__ = name
        self.restype: Any = ctypes.c_int
        self._implementation = implementation

    def __call__(self, *args: Any) -> Any:
        try:
            result = self._implementation(*args)
        except EcLibFailure as failure:
            log.debug("%s -> %d (%s)", self.__name__, failure.code, failure)
            result = failure.code
        return bool(result) if self.restype is ctypes.c_bool else int(result)


class FakeWinDLL:
    """What ``ctypes.WinDLL(path)`` returns for the EC-Lab DLLs: functions by name, KeyError-free lookups fail."""

    def __init__(self, path: str, *args: Any, **kwargs: Any) -> None:
        self.path = path

    def __getitem__(self, name: str) -> FakeFunction:
        if name not in FUNCTIONS:
            raise AttributeError(f"function '{name}' not found")
        return FakeFunction(name, FUNCTIONS[name])

    __getattr__ = __getitem__


def load_vendor_module() -> Any:
    """The real ``easy_biologic`` package, imported over this fake library (once per process)."""
    with _import_lock:
        module = sys.modules.get(VENDOR_MODULE)
        if module is None:
            had_windll = hasattr(ctypes, "WinDLL")
            saved_windll, saved_system = getattr(ctypes, "WinDLL", None), platform.system
            ctypes.WinDLL = FakeWinDLL  # type: ignore[attr-defined]
            platform.system = lambda: "Windows"
            try:
                module = importlib.import_module(VENDOR_MODULE)
            finally:
                platform.system = saved_system
                if had_windll:
                    ctypes.WinDLL = saved_windll  # type: ignore[attr-defined]
                else:
                    del ctypes.WinDLL  # type: ignore[attr-defined]
        if not isinstance(getattr(module.lib.ec_lib, "__dll", None), FakeWinDLL):
            raise ImportError("easy_biologic is already imported over the real EC-Lab library in this process")
        return module
