"""A serial OBIS-style 980 nm laser on a pseudo-terminal, driving any operascope.devices.base.Laser backend.

The emulator owns the master side of ``os.openpty()``; the driver opens the slave side with
``serial.Serial(path)`` exactly as a real port. ``port_path`` is a stable symlink (like a
udev ``/dev/serial/by-id`` name) that follows the current pty across :meth:`unplug` /
:meth:`replug`, so the driver re-opens the same name after the device is "plugged back".

Protocol (devices.md section 4): commands end with ``\\r`` (``\\r\\n`` accepted); every
command is answered ``OK\\r\\n``, a query first sends ``<value>\\r\\n``; errors are
``ERR-<code>\\r\\n``: ERR-100 unknown command, ERR-102 parameter out of range, ERR-500
emission refused because the interlock is open (102 and 500 are this emulator's choices).
``SOUR:POW:LEV?`` = backend power (setpoint x emission) + noise. An open interlock forces
emission off and sets fault bit ``FAULT_INTERLOCK`` (emulator's choice of bit).

The backend's faults act: InterlockTripped opens the interlock, DeviceTimeout leaves the
command unanswered, DeviceLost unplugs the port until the backend's ``reconnect()`` works.

Standalone: ``python -m operascope.simulators.emulators.serial_laser`` builds a simulated World and prints the
port path it serves.
"""

from __future__ import annotations

import argparse
import os
import select
import tempfile
import threading
import time
import tty
from collections import deque
from pathlib import Path
from typing import Any, Callable

import numpy as np

from operascope.devices.base import DeviceError, DeviceLost, DeviceTimeout, InterlockTripped, Laser, OutOfRange
from operascope.simulators.emulators.standalone import serve_until_interrupted, simulated_device

FAULT_INTERLOCK = 0x0000_0400
STATUS_FAULT = 0x0000_0001
STATUS_EMISSION = 0x0000_0002
STATUS_CDRH_DELAY = 0x0000_0010  # unconfirmed
PROMPT = "OBIS Command >"  # exact prompt text unconfirmed
CDRH_DELAY_S = 5.0
ERR_UNKNOWN_COMMAND = 100
ERR_OUT_OF_RANGE = 102
ERR_INTERLOCK = 500


class SerialLaserEmulator:
    """Serve an OBIS-style laser on a pty; ``port_path`` is what the driver opens. ``clock`` (anything with
    ``now_s()``, e.g. the world's virtual clock) times the CDRH delay; default wall time."""

    def __init__(self, laser: Laser, serial_number: str = "EMU-980-0001", wavelength_nm: int = 980,
                 link_path: str | Path | None = None, power_noise_w: float = 1e-5, seed: int = 0,
                 handshake: bool = False, prompt: bool = True, cdrh_delay_s: float = CDRH_DELAY_S,
                 clock: Any = None) -> None:
        self.laser = laser
        self.serial_number = serial_number
        self.wavelength_nm = wavelength_nm
        self.power_noise_w = power_noise_w
        self._rng = np.random.default_rng(seed)
        self._now_s: Callable[[], float] = clock.now_s if clock is not None else time.monotonic  # the CDRH delay's clock
        self._own_dir = None if link_path is not None else tempfile.mkdtemp(prefix="operascope-laser-")
        self.port_path = str(link_path) if link_path is not None else os.path.join(self._own_dir, "ttyLASER0")
        self.interlock_closed = True
        self.mode = "CWP"
        self.cdrh = True
        self.handshake = bool(handshake)
        self.prompt = bool(prompt)
        self.cdrh_delay_s = float(cdrh_delay_s)
        self.emission_requested = False
        self._emission_at: float | None = None  # when the CDRH delay ends (on the emulator's clock)
        self.muted = False
        self.commands: deque[str] = deque(maxlen=1000)  # latest command lines, for tests and debugging
        self.command_count = 0
        self._garbled = 0
        self._master: int | None = None
        self._slave: int | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._opened_backend = False
        self._lost_by_backend = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Open the backend, create the pty and serve it in a thread; return ``port_path``."""
        if not self.laser.is_open:
            self.laser.open()
            self._opened_backend = True
        self._plug()
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="serial-laser-emulator", daemon=True)
        self._thread.start()
        return self.port_path

    def stop(self) -> None:
        """Stop serving, remove the pty and the link, close the backend if this emulator opened it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._unplug()
        if self._opened_backend:
            self.laser.close()
            self._opened_backend = False
        if self._own_dir is not None:
            try:
                os.rmdir(self._own_dir)
            except OSError:
                pass

    def __enter__(self) -> "SerialLaserEmulator":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _plug(self) -> None:
        with self._lock:
            master, slave = os.openpty()
            tty.setraw(slave)  # no echo, no CR/NL translation: bytes as on a USB CDC port
            self._master, self._slave = master, slave
            tmp_link = self.port_path + ".new"
            if os.path.lexists(tmp_link):
                os.unlink(tmp_link)
            os.symlink(os.ttyname(slave), tmp_link)
            os.replace(tmp_link, self.port_path)

    def _unplug(self) -> None:
        with self._lock:
            for fd in (self._master, self._slave):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._master = self._slave = None
            if os.path.lexists(self.port_path):
                os.unlink(self.port_path)

    # ------------------------------------------------------------------ fault hooks

    def unplug(self) -> None:
        """Pull the USB cable: the port vanishes (reads fail, the path disappears)."""
        self._unplug()

    def replug(self) -> None:
        """Plug the cable back: a fresh port appears under the same ``port_path``."""
        if self._master is None:
            self._plug()

    def open_interlock(self) -> None:
        """Open the interlock: emission off, fault bit set."""
        with self._lock:
            self.interlock_closed = False
            self._emission_off()

    def close_interlock(self) -> None:
        with self._lock:
            self.interlock_closed = True

    def garble_next(self, count: int = 1) -> None:
        """The next ``count`` replies are noise lines without OK."""
        with self._lock:
            self._garbled += int(count)

    def commands_since(self, count: int) -> list[str]:
        """Command lines received after ``command_count`` was ``count`` (at most the last 1000)."""
        new = self.command_count - count
        return list(self.commands)[-new:] if new > 0 else []

    # ------------------------------------------------------------------ serving

    def _tick(self) -> None:
        """Start the backend's emission once the CDRH delay has passed."""
        with self._lock:
            if self._emission_at is not None and self._now_s() >= self._emission_at:
                self._emission_at = None
                if self._interlock_ok():
                    try:
                        self.laser.enable(True)
                    except DeviceError:  # incl. InterlockTripped: the fault word follows the backend, no latch
                        self.emission_requested = False
                else:
                    self.emission_requested = False

    def _serve(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            self._tick()
            master = self._master
            if master is None:
                self._maybe_return()
                time.sleep(0.02)
                buffer = b""
                continue
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
            except (OSError, ValueError):
                continue
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:
                continue  # no reader on the slave side yet / port being unplugged
            buffer += chunk
            while b"\r" in buffer:
                line, buffer = buffer.split(b"\r", 1)
                if buffer.startswith(b"\n"):
                    buffer = buffer[1:]
                self._answer(line.decode("ascii", errors="replace").strip())

    def _maybe_return(self) -> None:
        """After the backend was lost, plug back in once its ``reconnect()`` succeeds."""
        if not self._lost_by_backend:
            return
        reconnect = getattr(self.laser, "reconnect", None)
        try:
            if reconnect is not None:
                reconnect()
        except DeviceError:
            return
        self._lost_by_backend = False
        self._plug()

    def _write(self, text: str) -> None:
        master = self._master
        if master is None:
            return
        try:
            os.write(master, text.encode("ascii"))
        except OSError:
            pass

    def _answer(self, line: str) -> None:
        if not line:
            return
        self.commands.append(line)
        self.command_count += 1
        if self.muted:
            return
        with self._lock:
            if self._garbled > 0:
                self._garbled -= 1
                self._write("\x07#?@\r\n")
                return
            self._tick()
            prompt = PROMPT if self.prompt else ""
            try:
                values = self._execute(line)
            except _LaserErr as exc:
                self._write(f"ERR-{exc.code}\r\n{prompt}")
                return
            except DeviceTimeout:
                return
            except DeviceLost:
                self._lost_by_backend = True
                self._unplug()
                return
        ok = "OK\r\n" if self.handshake else ""
        self._write("".join(f"{v}\r\n" for v in values) + ok + prompt)

    # ------------------------------------------------------------------ the command set

    def _interlock_ok(self) -> bool:
        return self.interlock_closed and bool(self.laser.state().interlock_ok)

    def _fault_word(self) -> int:
        return 0 if self._interlock_ok() else FAULT_INTERLOCK

    def _emission_off(self) -> None:
        self.emission_requested = False
        self._emission_at = None
        try:
            self.laser.enable(False)
        except DeviceError:
            pass

    def _execute(self, line: str) -> list[str]:
        head, _, argument = line.partition(" ")
        command = head.upper()
        argument = argument.strip().upper()
        state = self.laser.state()
        if not self._interlock_ok() and (state.enabled or self.emission_requested):
            self._emission_off()
            state = self.laser.state()
        status = (STATUS_EMISSION if state.enabled else 0) | (STATUS_FAULT if self._fault_word() else 0) | \
            (STATUS_CDRH_DELAY if self._emission_at is not None else 0)
        low, high = self.laser.power_limits_w
        queries = {
            "*IDN?": lambda: f"Coherent, Inc - OBIS {self.wavelength_nm}nm LX (operascope emulator) - V1.0",
            "SYST:INF:WAV?": lambda: str(self.wavelength_nm),
            "SYST:INF:SNUM?": lambda: self.serial_number,
            "SOUR:AM:SOUR?": lambda: self.mode,
            "SOUR:AM:STAT?": lambda: "ON" if (state.enabled or self.emission_requested) else "OFF",
            "SOUR:POW:LEV:IMM:AMPL?": lambda: f"{state.power_setpoint_w:.6f}",
            "SOUR:POW:LEV?": lambda: f"{max(0.0, state.power_w + self.power_noise_w * self._rng.standard_normal() * state.enabled):.6f}",
            "SOUR:POW:LIM:LOW?": lambda: f"{low:.6f}",
            "SOUR:POW:LIM:HIGH?": lambda: f"{high:.6f}",
            "SYST:STAT?": lambda: f"{status:08X}",
            "SYST:INF:FVER?": lambda: "EMU-1.0",
            "SYST:COMM:HAND?": lambda: "ON" if self.handshake else "OFF",
            "SYST:COMM:PROM?": lambda: "ON" if self.prompt else "OFF",
            "SYST:FAUL?": lambda: f"{self._fault_word():08X}",
            "SYST:LOCK?": lambda: "ON" if self._interlock_ok() else "OFF",
            "SOUR:TEMP:DIOD?": lambda: "25.0C",
            "SYST:CDRH?": lambda: "ON" if self.cdrh else "OFF",
        }
        if command in queries and not argument:
            return [queries[command]()]
        if command == "SOUR:AM:STAT" and argument in ("ON", "OFF"):
            if argument == "OFF":
                self._emission_off()
                self.laser.enable(False)
                return []
            if not self._interlock_ok():
                raise _LaserErr(ERR_INTERLOCK)
            if not self.emission_requested:
                self.emission_requested = True
                self._emission_at = self._now_s() + (self.cdrh_delay_s if self.cdrh else 0.0)
            self._tick()
            if not self.emission_requested:
                raise _LaserErr(ERR_INTERLOCK)
            return []
        if command in ("SYST:COMM:HAND", "SYST:COMM:PROM") and argument in ("ON", "OFF"):
            if command == "SYST:COMM:HAND":
                self.handshake = argument == "ON"  # the reply to this command follows the new state
            else:
                self.prompt = argument == "ON"
            return []
        if command == "SOUR:AM:INT" and argument in ("CWP", "CWC"):
            self.mode = argument
            return []
        if command == "SOUR:POW:LEV:IMM:AMPL" and argument:
            try:
                self.laser.set_power(float(argument))
            except (ValueError, OutOfRange):
                raise _LaserErr(ERR_OUT_OF_RANGE) from None
            return []
        if command == "SYST:CDRH" and argument in ("ON", "OFF"):
            self.cdrh = argument == "ON"
            return []
        raise _LaserErr(ERR_UNKNOWN_COMMAND)


class _LaserErr(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code



def main(argv: list[str] | None = None) -> int:
    """Serve a simulated World's focus laser on a pty until interrupted; print the port path."""
    parser = argparse.ArgumentParser(prog="python -m operascope.simulators.emulators.serial_laser", description=__doc__.splitlines()[0])
    parser.add_argument("--link", default=None, help="path of the stable port link (default: a temporary directory)")
    args = parser.parse_args(argv)
    emulator = SerialLaserEmulator(simulated_device("focus_laser"), link_path=args.link)  # type: ignore[arg-type]
    print(emulator.start(), flush=True)
    return serve_until_interrupted(emulator.stop)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
