"""ProtocolRunner: runs a protocol on the potentiostat in its own thread.

Every point goes into an :class:`EchemHistory` (for the binned frames' mid-time values) and to
``on_point``; every started step goes to ``on_step`` (the technique table). A watchdog stops the
cell if the voltage passes a cut-off by more than ``safety_margin_v``.
"""

from __future__ import annotations

import threading
from typing import Callable

from acquisition.echem_history import EchemHistory, EchemSample
from acquisition.protocols import ProtocolSpec, ProtocolStep, StepOutcome, protocol_steps
from devices.base import Clock, DeviceError, Potentiostat

EventSink = Callable[[str, str], None]  # (level, message)


class ProtocolRunner:
    """Runs ``spec`` once. ``done`` is set when it ends; ``end_reason`` says why
    ("complete", "cut-off", "stopped", "error", "safety")."""

    def __init__(self, potentiostat: Potentiostat, clock: Clock, spec: ProtocolSpec, history: EchemHistory,
                 on_point: Callable[[EchemSample], None] | None = None,
                 on_step: Callable[[ProtocolStep, float], None] | None = None,
                 on_event: EventSink | None = None, safety_margin_v: float = 0.05,
                 poll_wall_s: float = 0.05) -> None:
        self.potentiostat = potentiostat
        self.clock = clock
        self.spec = spec
        self.history = history
        self._on_point = on_point
        self._on_step = on_step
        self._on_event = on_event or (lambda level, message: None)
        self.safety_margin_v = safety_margin_v
        self.poll_wall_s = poll_wall_s
        self._stop = threading.Event()
        self.done = threading.Event()
        self.end_reason = "running"
        self.current_step: ProtocolStep | None = None
        self.steps_run = 0
        self._thread = threading.Thread(target=self._run, name=f"protocol-{spec.kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the protocol to stop (the cell is switched off) and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def is_running(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        try:
            self.end_reason = self._run_steps()
        except DeviceError as exc:
            self.end_reason = "error"
            self._on_event("error", f"protocol stopped by a potentiostat error: {exc}")
        except Exception as exc:  # noqa: BLE001 - report, never die silently
            self.end_reason = "error"
            self._on_event("error", f"protocol failed: {type(exc).__name__}: {exc}")
        finally:
            try:
                self.potentiostat.stop()
            except DeviceError as exc:
                self._on_event("error", f"could not stop the potentiostat: {exc}")
            self._on_event("info", f"protocol {self.spec.kind} ended: {self.end_reason}")
            self.done.set()

    def _run_steps(self) -> str:
        steps = protocol_steps(self.spec)
        outcome: StepOutcome | None = None
        try:
            step = next(steps)
            while True:
                outcome = self._run_step(step)
                if outcome.end_reason in ("stopped", "error", "safety"):
                    return outcome.end_reason
                step = steps.send(outcome)
        except StopIteration:
            pass
        if outcome is not None and outcome.end_reason == "limit":
            return "cut-off"
        return "complete"

    def _run_step(self, step: ProtocolStep) -> StepOutcome:
        self.current_step = step
        self.potentiostat.start(step.technique, step=step.index, cycle=step.cycle)
        start_s = self.clock.now_s()
        self.steps_run += 1
        if self._on_step is not None:
            self._on_step(step, start_s)
        self._on_event("info", f"step {step.index} ({step.kind}, cycle {step.cycle}) started: {step.parameters_json()}")
        last_v: float | None = None
        while True:
            if self._stop.is_set():
                self.potentiostat.stop()
                self._drain()
                return StepOutcome("stopped", last_v)
            running = self.potentiostat.is_running()
            v = self._drain()
            last_v = v if v is not None else last_v
            if last_v is not None and not (self.spec.v_min - self.safety_margin_v
                                           <= last_v <= self.spec.v_max + self.safety_margin_v):
                self.potentiostat.stop()
                self._on_event("error", f"safety: cell voltage {last_v:.3f} V outside "
                                        f"[{self.spec.v_min}, {self.spec.v_max}] V +- {self.safety_margin_v} V; cell stopped")
                return StepOutcome("safety", last_v)
            if not running:
                v = self._drain()
                last_v = v if v is not None else last_v
                return StepOutcome(self.potentiostat.end_reason(), last_v)
            self._stop.wait(self.poll_wall_s)

    def _drain(self) -> float | None:
        last_v = None
        for point in self.potentiostat.read_new():
            sample = self.history.add(point)
            last_v = sample.voltage_v
            if self._on_point is not None:
                self._on_point(sample)
        return last_v
