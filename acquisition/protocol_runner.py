"""ProtocolRunner: runs a protocol on the potentiostat in its own thread.

Every point goes into an :class:`EchemHistory` (for the binned frames' mid-time values) and to
``on_point``; every started step goes to ``on_step`` (the technique table). A watchdog stops the
cell if the voltage passes a cut-off by more than ``safety_margin_v`` (whether or not the
instrument's own limit works). A few potentiostat timeouts in a row are survived (counted, logged);
a lost link ends the protocol, and the runner reconnects to switch the channel off, so the cell
is left at rest.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from operascope.acquisition.worker import Worker
from operascope.acquisition.echem_history import EchemHistory, EchemSample
from operascope.acquisition.protocols import ProtocolSpec, ProtocolStep, StepOutcome, protocol_steps
from operascope.devices.base import Clock, DeviceError, DeviceLost, DeviceTimeout, NotOpen, Potentiostat

log = logging.getLogger(__name__)

EventSink = Callable[[str, str], None]  # (level, message)


class ProtocolRunner:
    """Runs ``spec`` once. ``done`` is set when it ends; ``end_reason`` says why
    ("complete", "cut-off", "stopped", "error", "safety")."""

    def __init__(self, potentiostat: Potentiostat, clock: Clock, spec: ProtocolSpec, history: EchemHistory,
                 on_point: Callable[[EchemSample], None] | None = None,
                 on_step: Callable[[ProtocolStep, float], None] | None = None,
                 on_event: EventSink | None = None, safety_margin_v: float = 0.05,
                 poll_wall_s: float = 0.05, max_consecutive_timeouts: int = 3, rest_retry_s: float = 10.0) -> None:
        """``max_consecutive_timeouts``: potentiostat timeouts in a row that are retried before the
        protocol ends with "error"; ``rest_retry_s``: wall seconds spent reconnecting a lost link to
        switch the channel off at the end."""
        self.potentiostat = potentiostat
        self.clock = clock
        self.spec = spec
        self.history = history
        self._on_point = on_point
        self._on_step = on_step
        self._on_event = on_event or (lambda level, message: None)
        self.safety_margin_v = safety_margin_v
        self.poll_wall_s = poll_wall_s
        self.max_consecutive_timeouts = int(max_consecutive_timeouts)
        self.rest_retry_s = float(rest_retry_s)
        self.timeouts = 0
        self._stop = threading.Event()
        self.done = threading.Event()
        self.end_reason = "running"
        self.current_step: ProtocolStep | None = None
        self.steps_run = 0
        self._thread = Worker(f"protocol-{spec.kind}", lambda _stop: self._run(),
                              lambda exc: self._on_event("error", f"protocol loop failed: {exc}"))

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
            self.potentiostat.chain_steps(True)
            self.end_reason = self._run_steps()
        except DeviceError as exc:
            self.end_reason = "error"
            self._on_event("error", f"protocol stopped by a potentiostat error: {exc}")
        except Exception as exc:  # noqa: BLE001 - report, never die silently
            self.end_reason = "error"
            self._on_event("error", f"protocol failed: {type(exc).__name__}: {exc}")
        finally:
            self._end_chain()
            self._put_cell_at_rest()
            self._on_event("info", f"protocol {self.spec.kind} ended: {self.end_reason}")
            self.done.set()

    def _end_chain(self) -> None:
        try:
            self.potentiostat.chain_steps(False)
        except DeviceError:
            log.info("could not end the step chain (the stop below retries the link)", exc_info=True)

    def _put_cell_at_rest(self) -> None:
        """Switch the channel off; if the link is lost, reconnect (back-off, up to ``rest_retry_s``) to do it."""
        deadline = time.monotonic() + self.rest_retry_s
        delay_s = 0.05
        lost_reported = False
        while True:
            try:
                self.potentiostat.stop()
                if lost_reported:
                    self._on_event("info", "potentiostat link back: channel switched off, the cell is at rest")
                return
            except (DeviceLost, NotOpen) as exc:
                if isinstance(exc, NotOpen) and not lost_reported:
                    self._on_event("error", f"could not stop the potentiostat: {exc}")
                    return
                # NotOpen after a failed reconnect: some drivers leave the handle closed; still lost
                if not lost_reported:
                    self._on_event("error", f"potentiostat link lost ({exc.detail}); reconnecting to switch the "
                                            f"channel off")
                    lost_reported = True
                remaining_s = deadline - time.monotonic()
                reconnect = getattr(self.potentiostat, "reconnect", None)
                if remaining_s <= 0 or reconnect is None:
                    self._on_event("error", f"could not switch the potentiostat off: link lost for "
                                            f"{self.rest_retry_s:g} s; check the instrument, the cell may be "
                                            f"under current until its own limits end the technique")
                    return
                time.sleep(min(delay_s, remaining_s))
                delay_s = min(2 * delay_s, 1.0)
                try:
                    reconnect()
                except DeviceError:
                    log.info("potentiostat reconnect failed; retrying", exc_info=True)
            except DeviceError as exc:
                self._on_event("error", f"could not stop the potentiostat: {exc}")
                return

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
        started_at_s = self.potentiostat.started_at_s()
        start_s = self.clock.now_s() if started_at_s is None else started_at_s
        self.steps_run += 1
        if self._on_step is not None:
            self._on_step(step, start_s)
        self._on_event("info", f"step {step.index} ({step.kind}, cycle {step.cycle}) started: {step.parameters_json()}")
        last_v: float | None = None
        timeouts_in_a_row = 0
        while True:
            if self._stop.is_set():
                self.potentiostat.stop()
                self._drain()
                return StepOutcome("stopped", last_v)
            try:
                running = self.potentiostat.is_running()
                v = self._drain()
            except DeviceTimeout as exc:
                self.timeouts += 1
                timeouts_in_a_row += 1
                if timeouts_in_a_row > self.max_consecutive_timeouts:
                    raise
                self._on_event("warning", f"potentiostat timed out ({exc.detail}); retry "
                                          f"{timeouts_in_a_row} of {self.max_consecutive_timeouts}")
                self._stop.wait(self.poll_wall_s)
                continue
            timeouts_in_a_row = 0
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
