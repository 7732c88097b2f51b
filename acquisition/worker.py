"""One small worker-thread class for every loop of the engine (capture, binner, differential, writer,
housekeeping, protocol runner, focus lock): the same start, stop, join and error reporting for all.

A loop is a callable taking the worker's stop :class:`threading.Event`; it returns when the event is
set (or when its work is done). An exception escaping the loop is logged with its traceback, kept in
:attr:`Worker.error` and passed to ``on_error`` — never silent.
"""

from __future__ import annotations

import enum
import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)


class WorkerState(str, enum.Enum):
    """Life cycle of a :class:`Worker`."""

    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class Worker:
    """Runs ``loop(stop_event)`` in a named daemon thread.

    ``stop()`` sets the event and joins (within ``timeout_s``); ``on_error(exc)`` is called from the
    worker thread if the loop raises. A worker runs once: make a new one to run again.
    """

    def __init__(self, name: str, loop: Callable[[threading.Event], None],
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.name = name
        self._loop = loop
        self._on_error = on_error
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self._state = WorkerState.NEW
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def state(self) -> WorkerState:
        return self._state

    def start(self) -> "Worker":
        """Start the thread (once); returns self."""
        if self._state is not WorkerState.NEW:
            raise RuntimeError(f"worker {self.name!r} was already started ({self._state.value})")
        self._state = WorkerState.RUNNING
        self._thread.start()
        return self

    def _run(self) -> None:
        log.debug("%s: started", self.name)
        try:
            self._loop(self.stop_event)
        except BaseException as exc:  # noqa: BLE001 - reported, never silent
            self.error = exc
            self._state = WorkerState.FAILED
            log.error("%s: loop failed: %s: %s", self.name, type(exc).__name__, exc, exc_info=exc)
            if self._on_error is not None:
                try:
                    self._on_error(exc)
                except Exception:  # noqa: BLE001
                    log.exception("%s: error callback failed", self.name)
        else:
            self._state = WorkerState.STOPPED
            log.debug("%s: ended", self.name)

    def request_stop(self) -> None:
        """Ask the loop to end (does not wait)."""
        if self._state is WorkerState.RUNNING:
            self._state = WorkerState.STOPPING
        self.stop_event.set()

    def stop(self, timeout_s: float | None = 5.0) -> bool:
        """Ask the loop to end and wait up to ``timeout_s``; True if the thread has ended."""
        self.request_stop()
        return self.join(timeout_s)

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the thread to end (up to ``timeout_s``); True if it has ended (or never started)."""
        if self._thread.ident is None:
            return True
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        ended = not self._thread.is_alive()
        if not ended:
            log.warning("%s: still running %.1f s after the stop request", self.name, timeout_s or 0.0)
        elif self._state is WorkerState.STOPPING:
            self._state = WorkerState.STOPPED
        return ended

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def is_current_thread(self) -> bool:
        """True when called from this worker's own thread (which cannot join itself)."""
        return self._thread is threading.current_thread()
