"""CommandWorker: runs device commands off the GUI thread, one at a time, and reports back via Qt signals.

The GUI thread only enqueues; results and errors come back as queued signals, so a slow or failing
device never blocks or crashes the window.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any, Callable

from PyQt5 import QtCore


class CommandWorker(QtCore.QObject):
    """A single-thread QThreadPool with named jobs.

    ``finished(name, result)`` and ``failed(name, message)`` are emitted from the worker thread and
    delivered on the GUI thread (queued connection).
    """

    finished = QtCore.pyqtSignal(str, object)
    failed = QtCore.pyqtSignal(str, str)

    def __init__(self, name: str, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._pool = QtCore.QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._pool.setExpiryTimeout(-1)  # keep the thread: device SDKs like a stable thread
        self._pending = 0
        self._pending_lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        with self._pending_lock:
            return self._pending

    def submit(self, job_name: str, job: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue ``job(*args, **kwargs)``; returns at once."""
        with self._pending_lock:
            self._pending += 1

        def run() -> None:
            try:
                result = job(*args, **kwargs)
            except Exception as exc:  # reported to the window, never raised into Qt
                message = str(exc) or type(exc).__name__
                if not _is_expected(exc):
                    message = f"{type(exc).__name__}: {message}"
                    traceback.print_exc()
                self._done()
                self.failed.emit(job_name, message)
            else:
                self._done()
                self.finished.emit(job_name, result)

        self._pool.start(run)

    def wait(self, timeout_s: float) -> bool:
        """Block until every job finished (True) or ``timeout_s`` passed (False)."""
        return self._pool.waitForDone(int(timeout_s * 1000))

    def _done(self) -> None:
        with self._pending_lock:
            self._pending -= 1


def _is_expected(exc: Exception) -> bool:
    """Device errors and validation errors carry a user-facing message already."""
    from operascope.devices.base import DeviceError

    return isinstance(exc, (DeviceError, ValueError, OSError, TimeoutError, RuntimeError))
