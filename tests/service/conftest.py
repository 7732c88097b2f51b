"""Fixtures for the engine-service tests: a real `operascope serve` process on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from operascope.service.state import EngineAddress


class EngineProcess:
    """A running ``python -m operascope serve`` with its own state folder."""

    def __init__(self, state: Path, *args: str) -> None:
        self.state = state
        env = {**os.environ, "OPERASCOPE_STATE_DIR": str(state), "QT_QPA_PLATFORM": "offscreen"}
        self.env = env
        self.proc = subprocess.Popen([sys.executable, "-m", "operascope", "serve", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not (state / "engine.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out, err = self.proc.communicate(timeout=5) if self.proc.poll() is not None else ("", "")
                raise RuntimeError(f"engine did not start: {err[-2000:]}")
            time.sleep(0.05)
        data = json.loads((state / "engine.json").read_text())
        self.address = EngineAddress(**data)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


@pytest.fixture
def engine_process(tmp_path):
    """Start an engine (simulated rig, 10x, 4 fps); yields it; terminates it afterwards."""
    started: list[EngineProcess] = []

    def start(*args: str) -> EngineProcess:
        process = EngineProcess(tmp_path / "state", *(args or ("--speed", "10", "--fps", "4", "--seed", "1")))
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate()
