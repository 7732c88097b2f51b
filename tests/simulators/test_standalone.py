"""The emulators run on their own as documented: `python -m operascope.simulators.emulators.amc100` and `python -m operascope.simulators.emulators.serial_laser`."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import serial

REPO = Path(__file__).resolve().parents[2]


def _start(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline().strip()
    assert line, proc.stderr.read()
    return proc, line


def _terminate(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=20)


def test_standalone_amc100_answers_json_rpc_and_stops_on_sigterm():
    proc, line = _start("operascope.simulators.emulators.amc100", "--port", "0")
    try:
        assert line.startswith("AMC100 emulator listening on ")
        host, port = line.rsplit(" ", 1)[1].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            request = {"jsonrpc": "2.0", "method": "com.attocube.amc.move.getPosition", "params": [2], "id": 7, "api": 2}
            sock.sendall(json.dumps(request).encode())
            reply = b""
            while not reply.endswith(b"\r\n"):
                reply += sock.recv(4096)
        answer = json.loads(reply)
        assert answer["id"] == 7 and answer["result"][0] == 0 and type(answer["result"][1]) is int  # integer nm, as the vendor types it (issue 13)
    finally:
        assert _terminate(proc) == 0


def test_standalone_serial_laser_prints_its_port_and_answers_idn():
    proc, port = _start("operascope.simulators.emulators.serial_laser")
    try:
        with serial.Serial(port, timeout=5) as link:
            link.write(b"SYST:COMM:PROM Off\r")  # the emulator powers up with the prompt on, handshake off
            link.read_until(b">")
            link.write(b"SYST:COMM:HAND On\r")
            assert link.readline().decode().strip() == "OK"
            link.write(b"*IDN?\r")
            identity = link.readline().decode().strip()
            assert link.readline().decode().strip() == "OK"
        assert identity
    finally:
        assert _terminate(proc) == 0
