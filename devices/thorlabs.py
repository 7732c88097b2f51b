"""Thorlabs DC2200 LED driver (SOLIS-740 head on terminal 1): SCPI over VISA with pyvisa (devices.md section 3).

One canonical spelling is sent (upper-case long forms, numbers as ``{:f}``, booleans 1/0;
the vendor's constant-current subsystem is ``CCURENT`` with one R), so a pyvisa-sim YAML
that matches literal strings works unchanged. After every setting the error queue is read
(``SYST:ERR?`` until ``+0``) and a non-zero entry raises :class:`ThorlabsError`. Currents
are A; setpoints outside [0, current_limit_a] are refused before anything is sent.

``visa_library``: ``""`` = the system VISA (NI-VISA or pyvisa-py), ``"<yaml>@sim"`` = the
pyvisa-sim emulator (``simulators/dc2200.yaml``).
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from operascope.devices.base import (
    DeviceError,
    DeviceInfo,
    DeviceLost,
    DeviceTimeout,
    InterlockTripped,
    LightSource,
    LightState,
    MissingVendorLibrary,
    validate_in_range,
)

INSTALL_HINT = "install pyvisa (pip install 'pyvisa>=1.13,<2') plus NI-VISA or pyvisa-py + pyusb"
#: Entries read from the error queue before giving up (the real queue holds at most ~30).
MAX_ERROR_READS = 32
LED_TERMINAL = 1


class ThorlabsError(DeviceError):
    """The DC2200 reported an error in its SCPI error queue."""

    def __init__(self, device: str, code: int, text: str, command: str) -> None:
        super().__init__(device, f"{command!r} gave SCPI error {code} ({text})")
        self.code = code
        self.text = text
        self.command = command


def import_pyvisa() -> Any:
    """The ``pyvisa`` module, or MissingVendorLibrary naming what to install."""
    try:
        return importlib.import_module("pyvisa")
    except ImportError as exc:
        raise MissingVendorLibrary("led", f"pyvisa is not available ({exc}); {INSTALL_HINT}") from None


def parse_error_entry(text: str) -> tuple[int, str]:
    """``'-113,"Undefined header"'`` -> (-113, "Undefined header"). ValueError if not of that form."""
    code_text, sep, message = text.partition(",")
    if not sep:
        raise ValueError(text)
    return int(code_text.strip()), message.strip().strip('"')


class ThorlabsLed(LightSource):
    """LED on a DC2200 in constant-current mode. Constructed from ThorlabsLedConfig fields."""

    def __init__(self, resource: str = "USB0::0x1313::0x80C8::M00000000::INSTR", visa_library: str = "",
                 current_limit_a: float = 1.0, timeout_s: float = 2.0, write_terminal: bool = False) -> None:
        self.resource = resource
        #: Thorlabs' own examples only read OUTPUT1:TERMINAL; whether writing it on every open is harmless is not
        #: settled by vendor material, so by default the driver reads it and refuses a wrong terminal.
        self.write_terminal = bool(write_terminal)
        self.visa_library = visa_library
        self.current_limit_a = float(current_limit_a)
        self.timeout_s = float(timeout_s)
        self._rm: Any = None
        self._inst: Any = None
        self._info: DeviceInfo | None = None
        self._lost = False
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ transport

    def _require_open(self) -> None:
        if self._inst is None and self._lost:
            raise DeviceLost(self.name, "VISA session was closed after an error; call reconnect()")
        super()._require_open()

    def _io(self, function: Any, command: str) -> Any:
        """Run one VISA call, mapping VISA errors to DeviceTimeout / DeviceLost (session closed)."""
        pyvisa = import_pyvisa()
        if self._inst is None:
            self._require_open()
        try:
            return function()
        except pyvisa.errors.VisaIOError as exc:
            if exc.error_code == pyvisa.constants.StatusCode.error_timeout:
                raise DeviceTimeout(self.name, f"no reply to {command!r} within {self.timeout_s:g} s; check the USB cable") from None
            self._close_session(lost=True)
            raise DeviceLost(self.name, f"VISA error on {command!r} ({exc}); check the USB cable, then reconnect()") from None
        except (OSError, pyvisa.errors.InvalidSession) as exc:
            self._close_session(lost=True)
            raise DeviceLost(self.name, f"VISA session failed on {command!r} ({exc}); reconnect()") from None

    def _query(self, command: str) -> str:
        with self._lock:
            return str(self._io(lambda: self._inst.query(command), command)).strip()

    def _query_float(self, command: str) -> float:
        text = self._query(command)
        try:
            return float(text)
        except ValueError:
            raise DeviceError(self.name, f"garbled reply to {command!r}: {text!r} is not a number") from None

    def _query_flag(self, command: str) -> bool:
        text = self._query(command)
        if text not in ("0", "1"):
            raise DeviceError(self.name, f"garbled reply to {command!r}: {text!r} is not 0/1")
        return text == "1"

    def _setting(self, command: str) -> None:
        """Send a setting, then read the error queue until ``+0``; raise the first error."""
        with self._lock:
            self._io(lambda: self._inst.write(command), command)
            self.check_errors(command)

    def check_errors(self, command: str = "the last command") -> None:
        """Drain ``SYST:ERR?`` until ``+0``; raise ThorlabsError for the first non-zero entry."""
        first: tuple[int, str] | None = None
        for _ in range(MAX_ERROR_READS):
            text = self._query("SYST:ERR?")
            try:
                code, message = parse_error_entry(text)
            except ValueError:
                raise DeviceError(self.name, f"garbled reply to 'SYST:ERR?': {text!r}") from None
            if code == 0:
                break
            first = first or (code, message)
        else:
            raise DeviceError(self.name, f"error queue did not empty after {MAX_ERROR_READS} reads")
        if first is not None:
            raise ThorlabsError(self.name, first[0], first[1], command)

    def _close_session(self, lost: bool = False) -> None:
        self._lost = lost
        for closable in (self._inst, self._rm):
            if closable is not None:
                try:
                    closable.close()
                except Exception:  # noqa: BLE001 - the session may already be gone
                    pass
        self._inst = None
        self._rm = None

    # ------------------------------------------------------------------ Device

    def open(self) -> None:
        """Open the VISA session, identify, then: *CLS, terminal 1, current limit, CC mode, 0 A, output off."""
        pyvisa = import_pyvisa()
        with self._lock:
            if self._inst is not None:
                return
            try:
                self._rm = pyvisa.ResourceManager(self.visa_library) if self.visa_library else pyvisa.ResourceManager()
            except (OSError, ValueError) as exc:
                self._rm = None
                where = f"visa_library {self.visa_library!r}" if self.visa_library else "the system VISA"
                raise MissingVendorLibrary(self.name, f"cannot load {where} ({exc}); {INSTALL_HINT}") from None
            try:
                self._inst = self._rm.open_resource(
                    self.resource, read_termination="\n", write_termination="\n", timeout=int(self.timeout_s * 1000)
                )
            except (pyvisa.errors.VisaIOError, OSError, ValueError) as exc:
                self._close_session()
                raise DeviceLost(self.name, f"cannot open {self.resource} ({exc}); check the USB cable and the resource name") from None
            try:
                identity = self._query("*IDN?")
                parts = [p.strip() for p in identity.split(",")]
                # Thorlabs manuals show "THORLABS", instruments "Thorlabs": the maker is compared case-insensitively.
                if len(parts) < 4 or parts[0].upper() != "THORLABS" or not parts[1].upper().startswith("DC2200"):
                    raise DeviceError(self.name, f"{self.resource} answered *IDN? with {identity!r}, not a Thorlabs DC2200")
                self._io(lambda: self._inst.write("*CLS"), "*CLS")
                if self.write_terminal:
                    self._setting(f"OUTPUT1:TERMINAL {LED_TERMINAL:d}")
                else:
                    terminal = self._query("OUTPUT1:TERMINAL?").strip()
                    if terminal not in (str(LED_TERMINAL), f"+{LED_TERMINAL}"):
                        raise DeviceError(self.name, f"the DC2200 drives terminal {terminal}, the LED is on terminal "
                                          f"{LED_TERMINAL}: select it on the front panel (or set write_terminal)")
                self._setting(f"SOURCE1:CURRENT:LIMIT {self.current_limit_a:f}")
                self._setting("SOURCE1:MODE CC")
                self._setting(f"SOURCE1:CCURENT:CURRENT {0.0:f}")
                self._setting("OUTPUT1:STATE 0")
            except Exception:
                self._close_session()
                raise
            self._info = DeviceInfo(model=f"{parts[0]} {parts[1]} + SOLIS-740", serial=parts[2], firmware=parts[3], driver="thorlabs")

    def close(self) -> None:
        """Output off (if the driver still answers), then close the session. Idempotent."""
        with self._lock:
            if self._inst is not None:
                try:
                    self._setting("OUTPUT1:STATE 0")
                except DeviceError:
                    pass
            self._close_session()

    def reconnect(self) -> None:
        """Re-open after DeviceLost; the output stays off."""
        with self._lock:
            self._close_session()
            self.open()

    def info(self) -> DeviceInfo:
        self._require_open()
        assert self._info is not None
        return self._info

    @property
    def is_open(self) -> bool:
        return self._inst is not None

    # ------------------------------------------------------------------ LightSource

    @property
    def max_current_a(self) -> float:
        return self.current_limit_a

    def set_current(self, current_a: float) -> None:
        """Constant-current setpoint (A); OutOfRange (nothing sent) outside [0, current_limit_a]."""
        self._require_open()
        value = validate_in_range(self.name, "LED current", current_a, 0.0, self.current_limit_a, "A")
        self._setting(f"SOURCE1:CCURENT:CURRENT {value:f}")

    def interlock_tripped(self) -> bool:
        """True when the driver reports its interlock as tripped."""
        return self._query_flag("OUTPUT1:PROTECTION:INTLOCK:TRIPPED?")

    def enable(self, on: bool) -> None:
        """Output on/off. InterlockTripped (nothing sent) while the interlock is tripped."""
        self._require_open()
        if not on:
            self._setting("OUTPUT1:STATE 0")
            return
        if self.interlock_tripped():
            raise InterlockTripped(self.name, "interlock tripped: output refused; close the interlock, then enable again")
        self._setting("OUTPUT1:STATE 1")
        if not self._query_flag("OUTPUT1:STATE?"):
            if self.interlock_tripped():
                raise InterlockTripped(self.name, "interlock tripped while switching on; output is off")
            raise DeviceError(self.name, "output did not switch on; check the LED head on terminal 1")

    def state(self) -> LightState:
        """Output state, setpoint and measured current (A), interlock."""
        self._require_open()
        return LightState(
            enabled=self._query_flag("OUTPUT1:STATE?"),
            current_setpoint_a=self._query_float("SOURCE1:CCURENT:CURRENT?"),
            measured_current_a=self._query_float("SENSE3:CURRENT:DATA?"),
            interlock_ok=not self.interlock_tripped(),
        )
