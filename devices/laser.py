"""980 nm focus-lock laser speaking an OBIS-style serial SCPI dialect, via pyserial (devices.md section 4).

Framing: a command is sent with a ``\\r`` terminator; the laser answers every command with
``OK\\r\\n`` (a query sends ``<value>\\r\\n`` first) or ``ERR-<code>\\r\\n``. Power is in W.

The port is opened exactly as a real one (``serial.Serial(port)``), so a pseudo-terminal
served by ``operascope.simulators.emulators.serial_laser`` and ``/dev/ttyUSB0`` are the same to this driver.
Emission is refused while the interlock is open (``SYST:LOCK?`` is not ``ON``) or the fault
word (``SYST:FAUL?``, 32-bit hex) is non-zero; the power setpoint is checked against the
limits the laser reports before anything is sent. A vanished port is DeviceLost and the
port is closed; ``reconnect()`` opens it again.
"""

from __future__ import annotations

import importlib
import threading
import time
from typing import Any

from operascope.devices.base import (
    DeviceError,
    DeviceInfo,
    DeviceLost,
    DeviceTimeout,
    InterlockTripped,
    Laser,
    LaserState,
    MissingVendorLibrary,
    validate_in_range,
)

TX_TERMINATOR = b"\r"
#: ``SYST:LOCK?`` reply meaning "interlock closed, emission allowed" (polarity unconfirmed on hardware).
INTERLOCK_CLOSED_REPLY = "ON"
INSTALL_HINT = "install pyserial (pip install 'pyserial>=3.5,<4')"
#: Status word bits (OBIS manual's table as quoted in issue 13).
STATUS_FAULT, STATUS_EMISSION = 0x1, 0x2
#: Prompt text an OBIS prints when the prompt is on (exact text unconfirmed; stripped if seen).
PROMPT = "OBIS Command >"
EMISSION_POLL_S = 0.1
STARTUP_SETTLE_S = 0.2


class LaserError(DeviceError):
    """The laser answered ``ERR-<code>``."""

    def __init__(self, device: str, code: int, command: str) -> None:
        super().__init__(device, f"{command!r} refused with ERR-{code}" + (" (unknown command)" if code == 100 else ""))
        self.code = code
        self.command = command


def import_pyserial() -> Any:
    """The ``serial`` module, or MissingVendorLibrary naming what to install."""
    try:
        return importlib.import_module("serial")
    except ImportError as exc:
        raise MissingVendorLibrary("focus_laser", f"pyserial is not available ({exc}); {INSTALL_HINT}") from None


def _port_errors(serial_module: Any) -> tuple[type[BaseException], ...]:
    """Exceptions that mean the port itself failed (pyserial lets termios.error through on POSIX)."""
    errors: tuple[type[BaseException], ...] = (serial_module.SerialException, OSError)
    try:
        import termios
    except ImportError:  # Windows
        return errors
    return errors + (termios.error,)


class SerialLaser(Laser):
    """An OBIS-style laser on a serial port. Constructed from SerialLaserConfig fields."""

    def __init__(self, port: str = "/dev/ttyUSB0", baudrate: int = 115200, timeout_s: float = 1.0, max_power_w: float = 0.05,
                 emission_wait_s: float = 10.0) -> None:
        self.port = port
        self.emission_wait_s = float(emission_wait_s)
        self.baudrate = int(baudrate)
        self.timeout_s = float(timeout_s)
        self.max_power_w = float(max_power_w)
        self._serial: Any = None
        self._lock = threading.RLock()
        self._info: DeviceInfo | None = None
        self._limits_w = (0.0, self.max_power_w)
        self._lost = False

    # ------------------------------------------------------------------ transport

    def _exchange(self, command: str) -> list[str]:
        """Send ``command``; return the value lines before ``OK``. LaserError on ``ERR-``."""
        serial_module = import_pyserial()
        with self._lock:
            if self._serial is None:
                self._require_open()
            try:
                self._serial.reset_input_buffer()  # discard late lines of an earlier, timed-out command
                self._serial.write(command.encode("ascii") + TX_TERMINATOR)
                values: list[str] = []
                deadline = time.monotonic() + self.timeout_s
                while True:
                    raw = self._serial.readline()
                    if not raw.endswith(b"\n"):
                        if values or raw.strip():
                            raise DeviceError(self.name, f"garbled reply to {command!r}: {values + [raw]!r} without OK")
                        raise DeviceTimeout(self.name, f"no complete reply to {command!r} within {self.timeout_s:g} s; check the cable and power")
                    line = raw.decode("ascii", errors="replace").replace(PROMPT, "").strip()
                    if not line.isprintable():
                        raise DeviceError(self.name, f"garbled reply to {command!r}: {raw!r}")
                    if line == "OK":
                        return values
                    if line.startswith("ERR-"):
                        try:
                            code = int(line[4:])
                        except ValueError:
                            raise DeviceError(self.name, f"garbled error reply to {command!r}: {line!r}") from None
                        raise LaserError(self.name, code, command)
                    if line:
                        values.append(line)
                    if len(values) > 8 or time.monotonic() > deadline:
                        raise DeviceError(self.name, f"garbled reply to {command!r}: {values!r} without OK")
            except _port_errors(serial_module) as exc:
                self._close_port(lost=True)
                raise DeviceLost(self.name, f"serial port {self.port} failed ({exc}); check the cable, then reconnect()") from None

    def _query(self, command: str) -> str:
        values = self._exchange(command)
        if len(values) != 1:
            raise DeviceError(self.name, f"garbled reply to {command!r}: expected one value before OK, got {values!r}")
        return values[0]

    def _query_float(self, command: str, suffix: str = "") -> float:
        text = self._query(command)
        try:
            return float(text[: -len(suffix)] if suffix and text.endswith(suffix) else text)
        except ValueError:
            raise DeviceError(self.name, f"garbled reply to {command!r}: {text!r} is not a number") from None

    def _query_on_off(self, command: str) -> bool:
        text = self._query(command).upper()
        if text not in ("ON", "OFF"):
            raise DeviceError(self.name, f"garbled reply to {command!r}: {text!r} is not ON/OFF")
        return text == "ON"

    def _require_open(self) -> None:
        if self._serial is None and self._lost:
            raise DeviceLost(self.name, f"serial port {self.port} was closed after an error; call reconnect()")
        super()._require_open()

    def _close_port(self, lost: bool = False) -> None:
        self._lost = lost
        if self._serial is not None:
            try:
                self._serial.close()
            except Exception:  # noqa: BLE001 - the port may already be gone
                pass
            self._serial = None

    # ------------------------------------------------------------------ Device

    def open(self) -> None:
        """Open the port, identify, read the power limits, constant-power mode, emission off."""
        serial_module = import_pyserial()
        with self._lock:
            if self._serial is not None:
                return
            try:
                self._serial = serial_module.Serial(self.port, baudrate=self.baudrate, timeout=self.timeout_s, write_timeout=self.timeout_s)
            except (serial_module.SerialException, OSError) as exc:
                self._serial = None
                raise DeviceLost(self.name, f"cannot open serial port {self.port} ({exc}); check the cable and the port name") from None
            try:
                self._start_session()
                identity = self._query("*IDN?")
                serial_number = self._query("SYST:INF:SNUM?")
                wavelength = self._query("SYST:INF:WAV?")
                low = self._query_float("SOUR:POW:LIM:LOW?")
                high = self._query_float("SOUR:POW:LIM:HIGH?")
                try:
                    firmware = self._query("SYST:INF:FVER?")
                except LaserError:
                    firmware = ""
                self._exchange("SOUR:AM:STAT OFF")
                self._exchange("SOUR:AM:INT CWP")
            except Exception:
                self._close_port()
                raise
            self._limits_w = (max(0.0, low), min(high, self.max_power_w))
            self._info = DeviceInfo(model=f"{identity} ({wavelength} nm)", serial=serial_number, firmware=firmware, driver="serial_laser")

    def _start_session(self) -> None:
        """Handshake on, prompt off (whatever the power-up state), then check the handshake answers."""
        serial_module = import_pyserial()
        try:
            self._serial.reset_input_buffer()
            for command in ("SYST:COMM:HAND On", "SYST:COMM:PROM Off"):
                self._serial.write(command.encode("ascii") + TX_TERMINATOR)
            time.sleep(min(STARTUP_SETTLE_S, self.timeout_s))  # replies (OK, prompt or nothing) are discarded
            self._serial.reset_input_buffer()
        except _port_errors(serial_module) as exc:
            self._close_port(lost=True)
            raise DeviceLost(self.name, f"serial port {self.port} failed ({exc}); check the cable, then reconnect()") from None
        if self._query("SYST:COMM:HAND?").upper() != "ON":
            raise DeviceError(self.name, "the laser did not switch handshaking on (SYST:COMM:HAND?); is it an OBIS-style laser?")

    def close(self) -> None:
        """Emission off (if the laser still answers), then close the port. Idempotent."""
        with self._lock:
            if self._serial is not None:
                try:
                    self._exchange("SOUR:AM:STAT OFF")
                except DeviceError:
                    pass
                finally:
                    self._close_port()

    def reconnect(self) -> None:
        """Re-open the port after DeviceLost; emission stays off."""
        with self._lock:
            self._close_port()
            self.open()

    def info(self) -> DeviceInfo:
        self._require_open()
        assert self._info is not None
        return self._info

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    # ------------------------------------------------------------------ Laser

    @property
    def power_limits_w(self) -> tuple[float, float]:
        return self._limits_w

    def set_power(self, power_w: float) -> None:
        """Constant-power setpoint in W; OutOfRange (nothing sent) outside ``power_limits_w``."""
        self._require_open()
        value = validate_in_range(self.name, "laser power", power_w, *self._limits_w, "W")
        self._exchange(f"SOUR:POW:LEV:IMM:AMPL {value:.6f}")

    def interlock_ok(self) -> bool:
        """True when the interlock is closed (emission allowed)."""
        return self._query("SYST:LOCK?").upper() == INTERLOCK_CLOSED_REPLY

    def fault_word(self) -> int:
        """The 32-bit fault word (``SYST:FAUL?``); 0 = no fault."""
        return self._hex_word("SYST:FAUL?")

    def status_word(self) -> int:
        """The 32-bit status word (``SYST:STAT?``)."""
        return self._hex_word("SYST:STAT?")

    def _hex_word(self, command: str) -> int:
        text = self._query(command)
        try:
            return int(text, 16)
        except ValueError:
            raise DeviceError(self.name, f"garbled reply to {command!r}: {text!r} is not a hex word") from None

    def enable(self, on: bool) -> None:
        """Emission on/off. Refuses ON (nothing sent) while the interlock is open or a fault is set."""
        self._require_open()
        if not on:
            self._exchange("SOUR:AM:STAT OFF")
            return
        if not self.interlock_ok():
            raise InterlockTripped(self.name, "interlock open: emission refused; close the interlock, then enable again")
        fault = self.fault_word()
        if fault:
            raise InterlockTripped(self.name, f"fault word 0x{fault:08X} is set: emission refused; clear the fault first")
        try:
            self._exchange("SOUR:AM:STAT ON")
        except LaserError as exc:
            if not self.interlock_ok():
                raise InterlockTripped(self.name, "interlock opened while switching on; emission is off") from exc
            raise
        if not self._query_on_off("SOUR:AM:STAT?"):
            raise DeviceError(self.name, "emission did not switch on; read the fault word with fault_word()")
        self._wait_for_emission()

    def _wait_for_emission(self) -> None:
        """Poll the status word through the CDRH delay until the emission bit is set."""
        deadline = time.monotonic() + self.emission_wait_s
        while True:
            status = self.status_word()
            if status & STATUS_EMISSION:
                return
            if status & STATUS_FAULT or not self.interlock_ok():
                self._exchange("SOUR:AM:STAT OFF")
                if not self.interlock_ok():
                    raise InterlockTripped(self.name, "interlock opened during the CDRH delay; emission is off")
                raise DeviceError(self.name, f"fault 0x{self.fault_word():08X} during the CDRH delay; emission is off")
            if time.monotonic() > deadline:
                self._exchange("SOUR:AM:STAT OFF")
                raise DeviceTimeout(self.name, f"no emission {self.emission_wait_s:g} s after switching on (CDRH delay "
                                               f"~5 s); emission switched off; read fault_word()")
            time.sleep(EMISSION_POLL_S)

    def state(self) -> LaserState:
        """Emission, setpoint, measured power (W), interlock and fault word as read back."""
        self._require_open()
        return LaserState(
            enabled=self._query_on_off("SOUR:AM:STAT?"),
            power_setpoint_w=self._query_float("SOUR:POW:LEV:IMM:AMPL?"),
            power_w=self._query_float("SOUR:POW:LEV?"),
            interlock_ok=self.interlock_ok(),
            fault_word=self.fault_word(),
        )
