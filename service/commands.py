"""The commands a client may send, their arguments (checked on the engine side) and what they call.

Each command names the engine method it drives; ``control=True`` commands act on the rig and are
accepted only from the controlling client. Arguments are validated here — type, range, path — before
the engine sees them, so a malformed request is one error reply and never reaches the hardware.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


class CommandError(ValueError):
    """A request the engine refuses (unknown command, bad argument, not the controller)."""


@dataclass(frozen=True)
class Param:
    """One argument: accepted Python types, whether required, and an optional check."""

    types: tuple[type, ...]
    required: bool = False
    check: Callable[[Any], str | None] | None = None


@dataclass(frozen=True)
class Command:
    """A command: does it need control, its parameters, and the handler ``(engine, **args) -> result``."""

    control: bool
    params: dict[str, Param]
    handler: Callable[..., Any]


def _finite_positive(value: Any) -> str | None:
    return None if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else "a finite number > 0"


def _finite(value: Any) -> str | None:
    return None if isinstance(value, (int, float)) and math.isfinite(value) else "a finite number"


def _bin_size(value: Any) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 10_000 else \
        "an integer from 1 to 10000"


def _h5_path(value: Any) -> str | None:
    if not isinstance(value, str) or not value or len(value) > 4096 or "\x00" in value:
        return "a file path"
    return None if Path(value).suffix in (".h5", ".hdf5", ".nxs") else "a path ending in .h5, .hdf5 or .nxs"


def _protocol_kind(value: Any) -> str | None:
    from operascope.acquisition.protocols import PROTOCOL_KINDS

    return None if value in PROTOCOL_KINDS else f"one of {', '.join(PROTOCOL_KINDS)}"


def _short_text(value: Any) -> str | None:
    return None if isinstance(value, str) and len(value) <= 500 else "text of at most 500 characters"


NUMBER = (int, float)


def _start_recording(engine: Any, out_path: str, bin_size: int | None = None, save_raw: bool | None = None,
                     duration_s: float | None = None) -> str:
    engine.start_recording(out_path, bin_size=bin_size, save_raw=save_raw, duration_s=duration_s)
    return out_path


def _focus(engine: Any, action: str) -> str:
    lock = engine.focus_lock
    if action == "lock":
        engine.engage_focus_lock() if hasattr(engine, "engage_focus_lock") else engine._engage_focus_lock()
    elif action == "unlock":
        lock.unlock()
    return str(getattr(lock, "state", "unknown"))


def build_commands() -> dict[str, Command]:
    """Every command the engine server accepts."""
    return {
        "ping": Command(False, {}, lambda engine: "pong"),
        "status": Command(False, {}, lambda engine: engine.status()),
        "events": Command(False, {}, lambda engine: engine.events.history()[-500:]),
        "take_control": Command(False, {"force": Param((bool,))}, lambda engine, force=False: None),
        "release_control": Command(False, {}, lambda engine: None),
        "start_live": Command(True, {}, lambda engine: engine.start_live()),
        "stop_live": Command(True, {}, lambda engine: engine.stop_live()),
        "start_recording": Command(True, {
            "out_path": Param((str,), True, _h5_path), "bin_size": Param((int,), False, _bin_size),
            "save_raw": Param((bool,)), "duration_s": Param(NUMBER, False, _finite_positive)}, _start_recording),
        "stop_recording": Command(True, {"reason": Param((str,), False, _short_text)},
                                  lambda engine, reason="stopped by a client": engine.stop_recording(reason)),
        "start_protocol": Command(True, {"kind": Param((str,), True, _protocol_kind),
                                         "duration_s": Param(NUMBER, False, _finite_positive)},
                                  lambda engine, kind, duration_s=None: engine.start_protocol(kind, duration_s).spec.kind),
        "stop_protocol": Command(True, {}, lambda engine: engine.stop_protocol()),
        "focus_lock": Command(True, {}, lambda engine: _focus(engine, "lock")),
        "focus_unlock": Command(True, {}, lambda engine: _focus(engine, "unlock")),
        "set_fiducial": Command(True, {"x_px": Param(NUMBER, True, _finite), "y_px": Param(NUMBER, True, _finite)},
                                lambda engine, x_px, y_px: engine.set_fiducial(float(x_px), float(y_px))),
        "shutdown": Command(True, {}, lambda engine: None),  # handled by the server
    }


def validate(commands: dict[str, Command], method: Any, args: Any) -> tuple[Command, dict[str, Any]]:
    """The command and its checked arguments, or :class:`CommandError` naming what is wrong."""
    if not isinstance(method, str) or method not in commands:
        shown = repr(method)[:60]
        raise CommandError(f"unknown command {shown}; known: {', '.join(sorted(commands))}")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise CommandError(f"{method}: arguments must be an object of name: value")
    command = commands[method]
    unknown = sorted(set(args) - set(command.params))
    if unknown:
        raise CommandError(f"{method}: unknown argument {unknown[0]!r}; allowed: {', '.join(command.params) or 'none'}")
    checked: dict[str, Any] = {}
    for name, param in command.params.items():
        if name not in args or args[name] is None:
            if param.required:
                raise CommandError(f"{method}: argument {name!r} is required")
            continue
        value = args[name]
        if isinstance(value, bool) and bool not in param.types or not isinstance(value, param.types):
            raise CommandError(f"{method}: {name} must be {'/'.join(t.__name__ for t in param.types)}, "
                               f"got {type(value).__name__}")
        problem = param.check(value) if param.check is not None else None
        if problem:
            raise CommandError(f"{method}: {name} must be {problem}, got {str(value)[:80]!r}")
        checked[name] = value
    return command, checked
