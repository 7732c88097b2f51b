"""DeviceLogger: samples stage, LED, laser and (simulated rigs) the world's ground truth for the run file."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from operascope.acquisition.worker import Worker
from operascope.acquisition.rig import Rig
from operascope.acquisition.run_writer import RunWriter

log = logging.getLogger(__name__)

Emit = Callable[[str, str, str], Any]   # (level, source, message)


class DeviceLogger:
    """A thread writing one device/truth sample about once per rig second (at most 20 per wall second)."""

    def __init__(self, rig: Rig, writer: RunWriter, emit: Emit) -> None:
        self.rig = rig
        self.writer = writer
        self._emit = emit
        self._stop = threading.Event()
        self._thread = Worker("device-logger", lambda _stop: self._run(),
                              lambda exc: emit("error", "device-logger", f"device logger failed: {exc}"))
        self.samples = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def sample_truth(self) -> None:
        """Write ``world.truth()`` now (simulated rigs only)."""
        world = self.rig.world
        if world is None:
            return
        try:
            self.writer.write_truth(world.truth())
        except Exception as exc:  # noqa: BLE001 - a failed sample is an event, not a crash
            self._emit("warning", "simulation", f"truth not sampled: {exc}")

    def _run(self) -> None:
        rig = self.rig
        period_wall_s = max(1.0 / max(rig.clock.speed, 1e-9), 0.05)
        failed = False
        while not self._stop.is_set():
            self.sample_truth()
            try:
                self.writer.write_device_log(rig.clock.now_s(), rig.stage.position_nm(), rig.led.state(),
                                             rig.laser.state())
                failed = False
            except Exception as exc:  # noqa: BLE001
                if not failed:   # report a read-back failure once per episode
                    self._emit("warning", "device-logger", f"device read-back failed: {exc}")
                failed = True
            self.samples += 1
            self._stop.wait(period_wall_s)
