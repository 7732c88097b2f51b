"""ProtocolService: builds protocols from the config (one place) and runs one at a time."""

from __future__ import annotations

import logging
from typing import Any

from operascope.acquisition.echem_history import EchemHistory
from operascope.acquisition.events import EventBus
from operascope.acquisition.protocol_runner import ProtocolRunner
from operascope.acquisition.protocols import ProtocolSpec, spec_from_config
from operascope.acquisition.recording import RecordingService
from operascope.config.schema import RigConfig

log = logging.getLogger(__name__)


class ProtocolService:
    """The running (or last) :class:`ProtocolRunner`; its points and steps go to the recording."""

    def __init__(self, config: RigConfig, events: EventBus, echem: EchemHistory, recording: RecordingService) -> None:
        self.config = config
        self._events = events
        self._echem = echem
        self._recording = recording
        self.runner: ProtocolRunner | None = None
        self._background = False   # the runner is the OCV recorded because no protocol was running
        self._before_background: ProtocolRunner | None = None

    def make(self, protocol: Any, duration_s: float | None = None) -> ProtocolSpec:
        return spec_from_config(self.config, protocol, duration_s)

    def start(self, rig: Any, protocol: Any, duration_s: float | None = None) -> ProtocolRunner:
        spec = self.make(protocol, duration_s)
        if self._background:
            self.stop_background_ocv()
        if self.runner is not None and self.runner.is_running:
            raise RuntimeError(f"protocol {self.runner.spec.kind} is still running; stop it first")
        self._recording.reset_protocol_rows()
        runner = ProtocolRunner(rig.potentiostat, rig.clock, spec, self._echem,
                                on_point=self._recording.on_echem_point, on_step=self._recording.on_protocol_step,
                                on_event=lambda level, message: self._events.emit(level, "protocol", message),
                                safety_margin_v=self.config.electrochemistry.safety_margin_v,
                                poll_wall_s=min(0.1, max(0.01, spec.record_interval_s / rig.clock.speed)))
        self.runner = runner
        self._background = False
        runner.start()
        return runner

    def start_background_ocv(self, rig: Any) -> None:
        """With no protocol running, record the open-circuit voltage (so every bin has a voltage)."""
        if self.is_running:
            return
        previous = self.runner
        try:
            self.start(rig, "ocv")
        except Exception as exc:  # noqa: BLE001 - the recording goes on without a voltage
            log.warning("open-circuit voltage not recorded", exc_info=True)
            self._events.emit("warning", "protocol", f"open-circuit voltage not recorded: {exc}")
            return
        self._background, self._before_background = True, previous
        self._events.emit("info", "protocol", "no protocol running: recording the open-circuit voltage")

    def stop_background_ocv(self) -> None:
        """Stop the OCV started by :meth:`start_background_ocv` (a protocol the user started goes on)."""
        if self._background and self.runner is not None:
            self._background = False
            self.runner.stop()
            self.runner, self._before_background = self._before_background, None

    def stop(self) -> None:
        """Stop the running protocol (the cell is switched off). Idempotent."""
        if self.runner is not None:
            self.runner.stop()

    @property
    def is_running(self) -> bool:
        return self.runner is not None and self.runner.is_running

    @property
    def end_reason(self) -> str | None:
        return self.runner.end_reason if self.runner is not None and not self._background else None
