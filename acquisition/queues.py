"""Fan-out queues between engine threads, with in/out/dropped counts.

- :class:`MustNotDropQueue`: bounded FIFO; a full queue blocks the producer (never drops while
  running) and raises an alarm once per episode of falling behind.
- :class:`NewestOnlySlot`: holds only the newest item; replacing an unread item counts a drop.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ConsumerCounts:
    """Counts of one consumer: items offered, taken out, dropped; current queue depth."""

    name: str
    items_in: int
    items_out: int
    dropped: int
    depth: int
    capacity: int
    alarms: int = 0


class MustNotDropQueue(Generic[T]):
    """Bounded FIFO that blocks the producer when full.

    ``on_alarm(message)`` is called once each time the queue becomes full (the consumer fell
    behind). An item is only dropped (and counted) if ``stop`` is set while the queue stays full.
    """

    def __init__(self, name: str, capacity: int, on_alarm: Callable[[str], None] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"queue {name!r}: capacity must be >= 1, got {capacity}")
        self.name = name
        self.capacity = capacity
        self._queue: queue.Queue[T] = queue.Queue(maxsize=capacity)
        self._on_alarm = on_alarm
        self._lock = threading.Lock()
        self._in = self._out = self._dropped = self._alarms = 0
        self._behind = False

    def put(self, item: T, stop: threading.Event | None = None, poll_s: float = 0.05) -> bool:
        """Append ``item``, waiting while the queue is full. False (and counted) if dropped on stop."""
        with self._lock:
            self._in += 1
        try:
            self._queue.put_nowait(item)
            if self._behind and self._queue.qsize() < self.capacity // 2:
                self._behind = False
            return True
        except queue.Full:
            pass
        if not self._behind:
            self._behind = True
            with self._lock:
                self._alarms += 1
            if self._on_alarm is not None:
                self._on_alarm(f"{self.name} queue full ({self.capacity} items): consumer is falling behind")
        while True:
            try:
                self._queue.put(item, timeout=poll_s)
                return True
            except queue.Full:
                if stop is not None and stop.is_set():
                    with self._lock:
                        self._dropped += 1
                    return False

    def get(self, timeout_s: float) -> T:
        """Next item; raises ``queue.Empty`` after ``timeout_s``."""
        item = self._queue.get(timeout=timeout_s)
        with self._lock:
            self._out += 1
        return item

    def counts(self) -> ConsumerCounts:
        with self._lock:
            return ConsumerCounts(self.name, self._in, self._out, self._dropped, self._queue.qsize(),
                                  self.capacity, self._alarms)


class NewestOnlySlot(Generic[T]):
    """A one-item mailbox for display and live analysis: only the newest item is kept."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._item: Any = None
        self._has_item = False
        self._in = self._out = self._dropped = 0
        self._latest: Any = None

    def put(self, item: T) -> None:
        """Store ``item``; an unread previous item is dropped and counted."""
        with self._lock:
            self._in += 1
            if self._has_item:
                self._dropped += 1
            self._item = item
            self._latest = item
            self._has_item = True

    def take(self) -> T | None:
        """The newest unread item (None if nothing new since the last take)."""
        with self._lock:
            if not self._has_item:
                return None
            item, self._item, self._has_item = self._item, None, False
            self._out += 1
            return item

    def peek(self) -> T | None:
        """The newest item ever put, read or not (does not count as taken)."""
        with self._lock:
            return self._latest

    def counts(self) -> ConsumerCounts:
        with self._lock:
            return ConsumerCounts(self.name, self._in, self._out, self._dropped, int(self._has_item), 1)
