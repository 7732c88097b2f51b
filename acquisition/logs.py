"""Logging set-up for the command line and the GUI: one place, stdlib :mod:`logging` only.

Every module logs to ``logging.getLogger(__name__)`` (names under ``operascope.``). This module
only attaches handlers to the ``operascope`` logger:

- a console handler (stderr) at the chosen level (``--log-level``, ``-v``, ``-q``);
- :func:`log_file_beside` — a rotating file ``<run>.log`` next to a run file, for the duration of
  a recording (``acquire``, GUI recordings);
- :func:`user_log_dir` — the GUI's per-user log folder (``$OPERASCOPE_LOG_DIR``, else
  ``$XDG_STATE_HOME/operascope``, else ``~/.local/state/operascope``).

Lines carry ISO 8601 timestamps with milliseconds and the UTC offset.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path
from typing import IO, Iterator

ROOT_LOGGER = "operascope"
LOG_DIR_ENV = "OPERASCOPE_LOG_DIR"
LEVELS = ("debug", "info", "warning", "error")
FILE_MAX_BYTES = 10_000_000
FILE_BACKUPS = 5
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(threadName)s] %(message)s"
SHOWN_TO_USER = {"shown_to_user": True}
"""``extra=`` for a record whose message the command line already printed as ``operascope: ...``:
it goes to the log files but not to the console a second time."""


def _not_shown_to_user(record: logging.LogRecord) -> bool:
    return not getattr(record, "shown_to_user", False)


class IsoFormatter(logging.Formatter):
    """``2026-12-05T17:16:07.123+00:00 INFO    operascope.x [thread] message``."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        local = time.localtime(record.created)
        offset_min = (local.tm_gmtoff or 0) // 60
        sign = "+" if offset_min >= 0 else "-"
        hours, minutes = divmod(abs(offset_min), 60)
        return (time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{int(record.msecs):03d}"
                + f"{sign}{hours:02d}:{minutes:02d}")


def level_from_flags(log_level: str | None, verbose: int = 0, quiet: int = 0) -> int:
    """The console level: ``--log-level`` wins; else warning, one step down per ``-v``, up per ``-q``."""
    if log_level is not None:
        name = log_level.lower()
        if name not in LEVELS:
            raise ValueError(f"--log-level must be one of {', '.join(LEVELS)}, got {log_level!r}")
        return getattr(logging, name.upper())
    steps = max(-2, min(1, int(quiet) - int(verbose)))
    return {-2: logging.DEBUG, -1: logging.INFO, 0: logging.WARNING, 1: logging.ERROR}[steps]


def configure_console(level: int, stream: IO[str] | None = None) -> logging.Handler:
    """Log ``operascope.*`` records at ``level`` and above to ``stream`` (stderr); returns the handler.

    Calling it again replaces the previous console handler (no duplicate lines).
    """
    root = logging.getLogger(ROOT_LOGGER)
    for old in [h for h in root.handlers if getattr(h, "_operascope_console", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(IsoFormatter(_FORMAT))
    handler.setLevel(level)
    handler.addFilter(_not_shown_to_user)
    handler._operascope_console = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    _lower_root_level(root, level)
    return handler


def _lower_root_level(root: logging.Logger, level: int) -> None:
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)


def rotating_file_handler(path: Path, level: int = logging.DEBUG) -> logging.Handler:
    """A :class:`~logging.handlers.RotatingFileHandler` on ``path`` (UTF-8, ISO timestamps)."""
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=FILE_MAX_BYTES, backupCount=FILE_BACKUPS,
                                                   encoding="utf-8")
    handler.setFormatter(IsoFormatter(_FORMAT))
    handler.setLevel(level)
    return handler


def log_path_for(run_path: str | Path) -> Path:
    """The log file of a run: ``run.h5`` -> ``run.log`` in the same folder."""
    return Path(run_path).with_suffix(".log")


@contextlib.contextmanager
def log_file_beside(run_path: str | Path, level: int = logging.INFO) -> Iterator[Path]:
    """While the block runs, every ``operascope.*`` record at ``level`` or above also goes to
    ``<run>.log`` beside ``run_path`` (appended, rotated at 10 MB)."""
    path = log_path_for(run_path)
    root = logging.getLogger(ROOT_LOGGER)
    handler = rotating_file_handler(path, level)
    previous_level = root.level
    root.addHandler(handler)
    _lower_root_level(root, level)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(previous_level)


def attach_run_log(run_path: str | Path, level: int = logging.INFO) -> logging.Handler | None:
    """Send ``operascope.*`` records to ``<run>.log`` beside ``run_path`` until :func:`detach`;
    None when that file already receives them (e.g. ``acquire`` wraps the whole run)."""
    path = log_path_for(run_path).resolve()
    root = logging.getLogger(ROOT_LOGGER)
    if any(Path(h.baseFilename).resolve() == path for h in root.handlers if hasattr(h, "baseFilename")):
        return None
    handler = rotating_file_handler(path, level)
    root.addHandler(handler)
    _lower_root_level(root, level)
    return handler


def detach(handler: logging.Handler | None) -> None:
    """Undo :func:`attach_run_log` (None is ignored)."""
    if handler is not None:
        logging.getLogger(ROOT_LOGGER).removeHandler(handler)
        handler.close()


def user_log_dir() -> Path:
    """The per-user log folder of the GUI (created): ``$OPERASCOPE_LOG_DIR``, else
    ``$XDG_STATE_HOME/operascope``, else ``~/.local/state/operascope``."""
    override = os.environ.get(LOG_DIR_ENV)
    if override:
        folder = Path(override)
    else:
        state_home = os.environ.get("XDG_STATE_HOME")
        folder = (Path(state_home) if state_home else Path.home() / ".local" / "state") / "operascope"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def attach_user_log(name: str = "gui.log", level: int = logging.INFO) -> Path:
    """Send ``operascope.*`` records to a rotating ``name`` in :func:`user_log_dir`; returns its path."""
    path = user_log_dir() / name
    root = logging.getLogger(ROOT_LOGGER)
    if not any(isinstance(h, logging.handlers.RotatingFileHandler) and Path(h.baseFilename) == path.resolve()
               for h in root.handlers):
        root.addHandler(rotating_file_handler(path, level))
    _lower_root_level(root, level)
    return path
