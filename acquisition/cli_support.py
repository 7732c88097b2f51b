"""Helpers of the command line: progress output of long analyses, output folders and input files.

Kept apart from :mod:`operascope.acquisition.cli` (the parser and the commands) so each stays small.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)


def _progress_lines(label: str) -> Callable[[int, int, str], None]:
    """progress(done, total, what) for analysis functions: a tqdm bar per stage on a terminal,
    a line every ~10 % otherwise (logs, pipes)."""
    if sys.stderr.isatty():
        return _progress_bars(label)
    state = {"last": -1}

    def progress(done: int, total: int, what: str = "") -> None:
        step = int(10 * done / total) if total else 10
        if step != state["last"]:
            state["last"] = step
            print(f"{label}: {what} {done}/{total}", file=sys.stderr, flush=True)
    return progress


def _progress_bars(label: str) -> Callable[[int, int, str], None]:
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def progress(done: int, total: int, what: str = "") -> None:
        bar = bars.get(what)
        if bar is None:
            for old in bars.values():
                old.close()
            bar = bars[what] = tqdm(total=total, desc=f"{label}: {what}", file=sys.stderr, leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
    return progress


def _output_folder(folder: Path, flag: str, what: str | None = None) -> Path:
    """Create ``folder`` (and parents) for output; ValueError naming ``flag`` if that is impossible."""
    what = what or f"{flag} {folder}"
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{what} is a file, not a folder; give another {flag}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{what} cannot be created ({exc.strerror or exc}); give another {flag}") from None
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{what} is not writable; give another {flag}")
    return folder


@contextlib.contextmanager
def _new_output_folder(folder: Path, flag: str) -> Iterator[Path]:
    """Create ``folder`` for output (see :func:`_output_folder`); if it did not exist before and
    the block fails or is interrupted (Ctrl-C), remove it again: no empty or half-filled folder is left."""
    existed = folder.exists()
    _output_folder(folder, flag)
    try:
        yield folder
    except BaseException:
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _existing_input(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: file does not exist")
    return p


def cmd_gui(args: argparse.Namespace) -> int:
    """``operascope gui``: runs ``operascope-gui`` in its own process (this module never imports Qt)."""
    import subprocess

    forwarded: list[str] = []
    for flag, value in (("--config", args.config), ("--screenshot", args.screenshot), ("--quit-after", args.quit_after),
                        ("--protocol", args.protocol), ("--speed", args.speed)):
        if value is not None:
            forwarded += [flag, str(value)]
    if args.focus_lock:
        forwarded.append("--focus-lock")
    for flag in ("attach",):
        if getattr(args, flag, False):
            forwarded.append(f"--{flag}")
    if getattr(args, "open_path", None):
        forwarded += ["--open", args.open_path]
    return subprocess.call([sys.executable, "-m", "operascope.gui", *forwarded])
