"""Biologic VMP300 channel through the EC-Lab Development Package as wrapped by easy-biologic (devices.md section 5).

The library module is a config field (``library``): ``"easy_biologic"`` on the Windows lab PC,
``"operascope.simulators.emulators.fake_eclib"`` for the emulator (a fake EC-Lab DLL under the real easy-biologic
package: that module's ``load_vendor_module()`` returns easy_biologic imported over it). It is imported on
``open()``; a missing or unusable library (easy-biologic raises OSError off Windows; it imports pkg_resources,
i.e. setuptools) is MissingVendorLibrary.

Checked against easy-biologic 0.4.0's own code: ``connect`` packs the timeout into ``c_uint8`` (an int of whole
seconds 1..255 is sent), ``EcError`` carries no ``.value`` (the code is parsed from its text "NAME (code): ..."),
``BiologicDevice.connect`` ignores the per-channel firmware-load results (and fails with AttributeError on -9),
so ``open()`` reads ``BL_GetChannelInfos`` and refuses a channel without firmware; a NaN ``DataInfo.StartTime``
is taken as 0 as easy-biologic's own ``calculate_time`` does.

Techniques (operascope.devices.base) become EC-lib techniques with case-sensitive parameter names:
OCV -> ``ocv`` (Rest_time_T, Record_every_dE/dT, E_Range), ConstantCurrent -> ``cplimit``
(Current_step, Duration_step, Test1_Config 5 for Ewe > v when charging or 1 for Ewe < v when
discharging, Test1_Value, Exit_Cond 2, I_Range = smallest range >= 1.2 |I|), ConstantVoltage
-> ``calimit`` (Voltage_step, Test1 on |I| < i_limit; mirrors CPLIMIT, unconfirmed on hardware).
Data words are converted as the SDK documents: t = StartTime + TimeBase * ((t_high << 32) +
t_low) s, Ewe and I with ``convert_numeric`` (V, A). Point times are placed on the rig clock
by anchoring the technique's StartTime at the clock reading taken when StartChannel returned.
"""

from __future__ import annotations

import importlib
import logging
import math
import re
import threading
from typing import Any

from operascope.devices.biologic_techniques import (  # noqa: F401 - part of this module's interface
    E_RANGE_5V,
    E_RANGE_10V,
    EXIT_STOP,
    I_RANGE_HEADROOM,
    I_RANGES_A,
    LIMIT_EWE_ABOVE,
    LIMIT_EWE_BELOW,
    LIMIT_I_BELOW,
    choose_i_range,
    technique_parameters,
)
from operascope.devices.base import (
    OCV,
    Clock,
    ConstantCurrent,
    ConstantVoltage,
    DeviceError,
    DeviceInfo,
    DeviceLost,
    DeviceTimeout,
    EchemPoint,
    EndReason,
    MissingVendorLibrary,
    OutOfRange,
    Potentiostat,
    Technique,
    WallClock,
)

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install easy-biologic on the Windows PC with the EC-Lab Development Package "
    "(pip install 'operascope[biologic]', which also brings setuptools for its pkg_resources import), "
    "or set library = \"operascope.simulators.emulators.fake_eclib\" for the emulator"
)
#: easy-biologic's EcError text: "ERR_NAME (code): message".
EC_ERROR_CODE = re.compile(r"\((-?\d+)\)")
#: ChannelInfo.FirmwareCode 0 = no firmware on the channel.
FIRMWARE_CODE_NONE = 0
TIMEOUT_RANGE_S = (1, 255)
#: EC-lib error codes (devices.md 5.2).
ERR_NOT_CONNECTED, ERR_ECLAB_LOADED, ERR_CHANNEL_RUNNING = -1, -9, -13
ERR_COMM_FAILED, ERR_CONNECTION_FAILED, ERR_FIRMWARE_NOT_LOADED = -200, -201, -308
FIRMWARE_ADVICE = ("close EC-Lab if it is running on this PC (it loads its own firmware and holds the channel), "
                   "check the kernel/firmware files of the EC-Lab Development Package match the instrument, "
                   "then reconnect()")
STATE_RUN = 1
VOLTAGE_RANGE_V = (-10.0, 10.0)
#: get_data calls per read_new (each returns at most 1000 words).
MAX_READS_PER_POLL = 50
#: How close (V) the last Ewe must be to the cut-off to call the end a limit.
LIMIT_TOLERANCE_V = 0.005


def import_library(module_name: str) -> Any:
    """The easy-biologic module (or its fake), or MissingVendorLibrary naming what to install."""
    try:
        module = importlib.import_module(module_name)
        loader = getattr(module, "load_vendor_module", None)
        if callable(loader):  # the emulator: real easy-biologic over a fake EC-Lab library
            module = loader()
    except (ImportError, OSError) as exc:
        raise MissingVendorLibrary("potentiostat", f"cannot import {module_name!r} ({exc}); {INSTALL_HINT}") from None
    for name in ("BiologicDevice", "lib"):
        if not hasattr(module, name):
            raise MissingVendorLibrary("potentiostat", f"{module_name!r} has no {name}; it is not easy-biologic. {INSTALL_HINT}")
    return module


def ec_error_code(exc: BaseException) -> int:
    """The EC-lib error number of an EcError (easy-biologic keeps it only in the message text); 0 if none."""
    value = getattr(exc, "value", None)
    if isinstance(value, int):
        return value
    match = EC_ERROR_CODE.search(str(exc))
    return int(match.group(1)) if match else 0


class BiologicPotentiostat(Potentiostat):
    """One VMP300 channel (0-based, easy-biologic convention). Constructed from BiologicConfig fields."""

    def __init__(self, address: str = "USB0", channel: int = 0, library: str = "easy_biologic", timeout_s: float = 5.0,
                 max_current_a: float = 0.4, record_every_de_v: float = 0.001, bandwidth: int = 5,
                 clock: Clock | None = None) -> None:
        self.address = address
        self.channel = int(channel)
        self.library = library
        low, high = TIMEOUT_RANGE_S
        if not (isinstance(timeout_s, (int, float)) and low <= timeout_s <= high):
            raise OutOfRange("potentiostat", f"timeout_s {timeout_s!r} must be {low}..{high} s (EC-lib takes whole seconds, uint8)")
        #: Whole seconds: the EC-lib header types the timeout uint8 and easy-biologic packs c_uint8(timeout).
        self.timeout_s = int(math.ceil(timeout_s))
        self.max_current_a = float(max_current_a)
        self.record_every_de_v = float(record_every_de_v)
        self.bandwidth = int(bandwidth)
        self._clock = clock or WallClock()
        self._module: Any = None
        self._device: Any = None
        self._info: DeviceInfo | None = None
        self._lock = threading.RLock()
        self._lost = False
        self._technique: Technique | None = None
        self._technique_name = ""
        self._step = 0
        self._cycle = 0
        self._host_start_s = 0.0
        self._start_time_s: float | None = None
        self._pending: list[EchemPoint] = []
        self._last_point: EchemPoint | None = None
        self._running = False
        self._stopped_by_user = False
        self._end_reason: EndReason = "stopped"

    # ------------------------------------------------------------------ library calls

    def _call(self, function: Any, *args: Any, what: str) -> Any:
        """Call the library, mapping EcError codes to DeviceLost/DeviceTimeout/DeviceError."""
        ec_error = self._module.lib.ec_errors.EcError
        try:
            return function(*args)
        except ec_error as exc:
            code = ec_error_code(exc)
            if code in (ERR_NOT_CONNECTED, ERR_CONNECTION_FAILED):
                self._drop_device()
                raise DeviceLost(self.name, f"{what}: link to the VMP300 at {self.address} lost ({exc}); check the cable, then reconnect()") from None
            if code == ERR_COMM_FAILED:
                raise DeviceTimeout(self.name, f"{what}: communication with the VMP300 failed ({exc}); check the link") from None
            if code == ERR_CHANNEL_RUNNING:
                raise DeviceError(self.name, f"{what}: channel {self.channel} is running; stop() it first") from None
            if code == ERR_FIRMWARE_NOT_LOADED:
                raise DeviceError(self.name, f"{what}: no firmware on channel {self.channel}; {FIRMWARE_ADVICE}") from None
            raise DeviceError(self.name, f"{what} failed with EC-lib error {code} ({exc})") from None
        except RuntimeError as exc:  # easy-biologic: "Device is not connected."
            self._drop_device()
            raise DeviceLost(self.name, f"{what}: {exc}; reconnect()") from None

    def _drop_device(self) -> None:
        """Disconnect (errors ignored) and forget the device handle."""
        device, self._device = self._device, None
        self._lost = True
        if device is not None and getattr(device, "idn", None) is not None:
            try:
                device.disconnect()
            except Exception:  # noqa: BLE001 - the link is already gone
                pass

    def _require_open(self) -> None:
        if self._device is None and self._lost:
            raise DeviceLost(self.name, f"link to the VMP300 at {self.address} was lost; call reconnect()")
        super()._require_open()

    # ------------------------------------------------------------------ Device

    def open(self) -> None:
        """Import the library, connect, check the channel is plugged and idle."""
        with self._lock:
            if self._device is not None:
                return
            self._module = import_library(self.library)
            try:
                device = self._module.BiologicDevice(self.address, timeout=self.timeout_s, populate_info=False)
            except Exception as exc:  # noqa: BLE001 - construction errors from the vendor library
                raise DeviceLost(self.name, f"cannot create the VMP300 device at {self.address} ({exc})") from None
            self._device = device
            try:
                self._connect(device)
                plugged = list(device.plugged or [])
                if not (0 <= self.channel < len(plugged) and plugged[self.channel]):
                    raise OutOfRange(self.name, f"channel {self.channel} is not plugged on {self.address}; plugged: "
                                     f"{[i for i, p in enumerate(plugged) if p]}")
                kind = device.kind
                model = getattr(kind, "name", str(kind)).replace("KBIO_DEV_", "")
                firmware = str(getattr(device.info, "FirmwareVersion", ""))
                self._check_firmware(device)
            except Exception:
                self._drop_device()
                self._lost = False
                raise
            self._lost = False
            self._info = DeviceInfo(model=model, serial=self.address, firmware=firmware, driver="biologic")

    def _connect(self, device: Any) -> None:
        """device.connect(); easy-biologic 0.4 turns any EcError of the firmware load into AttributeError."""
        try:
            self._call(device.connect, what="connect")
        except AttributeError as exc:
            cause = exc.__context__
            code = ec_error_code(cause) if cause is not None else 0
            raise DeviceError(self.name, f"connect: loading the channel firmware failed (EC-lib {code}: {cause}); "
                                         f"{FIRMWARE_ADVICE}") from None

    def _check_firmware(self, device: Any) -> None:
        """DeviceError unless the channel runs firmware (connect does not report per-channel load failures)."""
        info = self._call(self._module.lib.ec_lib.channel_info, device.idn, self.channel, what="channel_info")
        if int(info.FirmwareCode) == FIRMWARE_CODE_NONE:
            raise DeviceError(self.name, f"connect: no firmware loaded on channel {self.channel} after connecting; "
                                         f"{FIRMWARE_ADVICE}")
        log.info("VMP300 channel %d: firmware code %d version %d", self.channel, info.FirmwareCode, info.FirmwareVersion)

    def close(self) -> None:
        """Stop the channel (if it answers), disconnect and release the library handle. Idempotent."""
        with self._lock:
            if self._device is not None:
                try:
                    self._call(self._device.stop_channel, self.channel, what="stop_channel")
                except DeviceError:
                    pass
                self._drop_device()
            self._lost = False
            if self._running:
                self._running = False
                self._end_reason = "stopped"

    def reconnect(self) -> None:
        """Connect again after DeviceLost; a technique that was running is reported as ended by "error"."""
        with self._lock:
            self._drop_device()
            self._lost = False
            try:
                self.open()
            except DeviceError:
                self._lost = True   # still gone: later calls keep saying DeviceLost, not NotOpen
                raise
            if self._running:
                self._running = False
                self._end_reason = "error"

    def info(self) -> DeviceInfo:
        self._require_open()
        assert self._info is not None
        return self._info

    @property
    def is_open(self) -> bool:
        return self._device is not None

    # ------------------------------------------------------------------ Potentiostat

    def check_technique(self, technique: Technique) -> None:
        """OutOfRange (nothing sent) unless the technique fits this channel."""
        name = type(technique).__name__
        for field_name in ("duration_s", "record_every_s"):
            value = getattr(technique, field_name, None)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise OutOfRange(self.name, f"{name}.{field_name} must be a finite number > 0 s, got {value!r}")
        low, high = VOLTAGE_RANGE_V
        if isinstance(technique, ConstantCurrent):
            if not (math.isfinite(technique.current_a) and abs(technique.current_a) <= self.max_current_a):
                raise OutOfRange(self.name, f"{name}.current_a {technique.current_a!r} A is outside [-{self.max_current_a:g}, {self.max_current_a:g}] A")
            if not low <= technique.v_limit_v <= high:
                raise OutOfRange(self.name, f"{name}.v_limit_v {technique.v_limit_v!r} V is outside [{low:g}, {high:g}] V")
            choose_i_range(technique.current_a)
        elif isinstance(technique, ConstantVoltage):
            if not low <= technique.voltage_v <= high:
                raise OutOfRange(self.name, f"{name}.voltage_v {technique.voltage_v!r} V is outside [{low:g}, {high:g}] V")
            if not 0 <= technique.i_limit_a <= self.max_current_a:
                raise OutOfRange(self.name, f"{name}.i_limit_a {technique.i_limit_a!r} A is outside [0, {self.max_current_a:g}] A")
        elif not isinstance(technique, OCV):
            raise OutOfRange(self.name, f"unknown technique {technique!r}; allowed: OCV, ConstantCurrent, ConstantVoltage")

    def start(self, technique: Technique, step: int = 0, cycle: int = 0) -> None:
        """Load the technique on the channel and start it; points are tagged with step and cycle."""
        with self._lock:
            self._require_open()
            self.check_technique(technique)
            name, params = technique_parameters(technique, self.record_every_de_v, self.bandwidth)
            if self._technique is not None:
                self._pending.extend(self._fetch())  # data of the previous technique first
            self._call(self._device.load_technique, self.channel, name, params, 0, True, what=f"load_technique({name})")
            self._call(self._device.start_channel, self.channel, what="start_channel")
            self._host_start_s = self._clock.now_s()
            self._technique, self._technique_name = technique, name
            self._step, self._cycle = int(step), int(cycle)
            self._start_time_s = None
            self._last_point = None
            self._running = True
            self._stopped_by_user = False
            self._end_reason = "running"

    def _fetch(self) -> list[EchemPoint]:
        """Every buffered row of the current technique, converted to EchemPoints on the rig clock."""
        ec_lib = self._module.lib.ec_lib
        points: list[EchemPoint] = []
        state = None
        for _ in range(MAX_READS_PER_POLL):
            words, data_info, values = self._call(ec_lib.get_data, self._device.idn, self.channel, what="get_data")
            state = int(values.State)
            rows, columns = int(data_info.NbRows), int(data_info.NbCols)
            if rows == 0:
                break
            if columns not in (3, 5) or len(words) < rows * columns:
                raise DeviceError(self.name, f"get_data returned {len(words)} words for {rows} rows x {columns} columns")
            start_time_s = float(data_info.StartTime)
            if math.isnan(start_time_s):  # as easy-biologic's calculate_time: a NaN start is 0
                start_time_s = 0.0
            if self._start_time_s is None:
                self._start_time_s = start_time_s
            for row in range(rows):
                w = words[row * columns:(row + 1) * columns]
                device_time_s = start_time_s + float(values.TimeBase) * ((int(w[0]) << 32) + int(w[1]))
                voltage_v = float(ec_lib.convert_numeric(w[2]))
                current_a = float(ec_lib.convert_numeric(w[3])) if columns == 5 else 0.0
                instrument_cycle = int(w[4]) if columns == 5 else 0
                points.append(EchemPoint(
                    time_s=self._host_start_s + device_time_s - self._start_time_s,
                    voltage_v=voltage_v, current_a=current_a, step=self._step, cycle=self._cycle + instrument_cycle,
                ))
        if points:
            self._last_point = points[-1]
        if state is not None and state != STATE_RUN and self._running:
            self._running = False
            self._end_reason = self._why_ended()
        return points

    def _why_ended(self) -> EndReason:
        if self._stopped_by_user:
            return "stopped"
        technique, last = self._technique, self._last_point
        if isinstance(technique, ConstantCurrent) and last is not None and technique.current_a != 0:
            reached = last.voltage_v >= technique.v_limit_v - LIMIT_TOLERANCE_V if technique.current_a > 0 \
                else last.voltage_v <= technique.v_limit_v + LIMIT_TOLERANCE_V
            if reached:
                return "limit"
        if isinstance(technique, ConstantVoltage) and last is not None and technique.i_limit_a > 0:
            if abs(last.current_a) <= technique.i_limit_a and last.time_s - self._host_start_s < technique.duration_s - technique.record_every_s:
                return "limit"
        return "duration"

    def read_new(self) -> list[EchemPoint]:
        """Points acquired since the last call (V, A, rig-clock s)."""
        with self._lock:
            self._require_open()
            if self._technique is None:
                return []
            points = self._pending + self._fetch()
            self._pending = []
            return points

    def stop(self) -> None:
        """Stop the channel (no current afterwards). Idempotent."""
        with self._lock:
            self._require_open()
            if self._running:
                self._stopped_by_user = True
            self._call(self._device.stop_channel, self.channel, what="stop_channel")
            if self._technique is not None:
                self._pending.extend(self._fetch())

    def is_running(self) -> bool:
        with self._lock:
            self._require_open()
            values = self._call(self._device.get_values, self.channel, what="get_values")
            running = int(values.State) == STATE_RUN
            if not running and self._running:
                self._pending.extend(self._fetch())
            return running

    def end_reason(self) -> EndReason:
        with self._lock:
            if self._running:
                self.is_running()
            return "running" if self._running else self._end_reason
