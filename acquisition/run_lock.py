"""One writer per run file: an exclusive lock held for the whole run.

HDF5 drops its own file lock once SWMR writing starts, so the writer takes an ``flock`` on
``<run>.lock`` (holding its PID) before creating the file and keeps it until the file is closed.
A second writer is refused with "file in use by PID …".
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class RunFileInUseError(ValueError):
    """Another process is writing this run file."""


def lock_path(run_path: str | os.PathLike[str]) -> Path:
    p = Path(run_path)
    return p.with_name(p.name + ".lock")


class RunFileLock:
    """Exclusive, non-blocking lock on a run file; :meth:`release` removes the lock file."""

    def __init__(self, run_path: str | os.PathLike[str]) -> None:
        self.run_path = Path(run_path)
        self.path = lock_path(run_path)
        self._fd: int | None = None

    def acquire(self) -> "RunFileLock":
        for _ in range(5):   # the lock file may be removed by its holder between open and flock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                os.close(fd)
                raise RunFileInUseError(f"{self.run_path}: file in use by PID {pid} (another acquisition is "
                                        f"writing it); give another --out") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self._fd = fd
                return self
            os.close(fd)
        raise RunFileInUseError(f"{self.run_path}: lock file {self.path} keeps changing; another process is using it")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunFileLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
