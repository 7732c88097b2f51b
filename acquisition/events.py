"""Engine events (faults, state changes, operator notes) and their subscribers."""

from __future__ import annotations

import collections
import enum
import logging
import threading
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)

EventCallback = Callable[["Event"], None]


class EventLevel(str, enum.Enum):
    """Severity of an engine event (the values are stored in run files)."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value

    @property
    def logging_level(self) -> int:
        """The matching stdlib logging level."""
        return {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
                "error": logging.ERROR}[self.value]


@dataclass(frozen=True)
class Event:
    """One event: rig-clock time (s), level (debug/info/warning/error), source, message."""

    time_s: float
    level: EventLevel
    source: str
    message: str


class EventBus:
    """Thread-safe event log: keeps the last ``keep`` events and calls every subscriber.

    Every event is also logged (logger ``operascope.acquisition.events``, at the event's level).
    A subscriber that raises never stops the engine; its error is logged with the traceback
    (subscribers must be quick and must not block).
    """

    def __init__(self, now_s: Callable[[], float], keep: int = 10_000) -> None:
        self._now_s = now_s
        self._lock = threading.Lock()
        self._history: collections.deque[Event] = collections.deque(maxlen=keep)
        self._subscribers: list[EventCallback] = []

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for every new event; returns an unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def history_then_subscribe(self, callback: EventCallback) -> tuple[list[Event], Callable[[], None]]:
        """Atomically: every kept event so far, and a subscription for every later one (no gap, no repeat)."""
        with self._lock:
            history = list(self._history)
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return history, unsubscribe

    def emit(self, level: str, source: str, message: str, time_s: float | None = None) -> Event:
        """Record an event and hand it to every subscriber."""
        level = EventLevel(level)
        event = Event(self._now_s() if time_s is None else float(time_s), level, source, message)
        log.log(level.logging_level, "[%s] %s", source, message)
        with self._lock:
            self._history.append(event)
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - a broken subscriber must not stop acquisition
                log.exception("event subscriber %r failed on %s event from %s", callback, level.value, source)
        return event

    def history(self) -> list[Event]:
        """Every kept event, oldest first."""
        with self._lock:
            return list(self._history)
