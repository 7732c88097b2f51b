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
                     duration_s: float | None = None, positions: str | None = None, positions_toml: str | None = None,
                     dwell_bins: int = 1) -> str:
    """``positions`` a TOML path on the engine's machine, or ``positions_toml`` the list itself (multi-position)."""
    plist: Any = positions
    if positions_toml is not None:
        from operascope.acquisition.positions import positions_from_toml

        plist = positions_from_toml(positions_toml, source="positions_toml")
    engine.start_recording(out_path, bin_size=bin_size, save_raw=save_raw, duration_s=duration_s, positions=plist,
                           dwell_bins=dwell_bins)
    return out_path


def _whole_positive(value: Any) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else "a whole number >= 1"


def _toml_text(value: Any) -> str | None:
    return None if isinstance(value, str) and len(value) <= 1_000_000 else "TOML text of at most 1 MB"


def _axis_targets(value: Any) -> str | None:
    if not isinstance(value, dict) or not value or not set(value) <= {"x", "y", "z"}:
        return "an object with some of x, y, z"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value.values()):
        return "finite numbers (nm)"
    return None


def _move_stage(engine: Any, targets_nm: dict[str, float], confirmed: bool = False, origin: str = "client") -> None:
    """Manual moves go through the engine's safety policy (refused during a lock or recording unless confirmed)."""
    engine.move_stage_nm({k: float(v) for k, v in targets_nm.items()}, confirmed=confirmed, origin=f"client {origin}")


def _start_protocol(engine: Any, kind: str | None = None, duration_s: float | None = None,
                    request: dict | None = None) -> str:
    """A protocol by kind (config defaults) or from a ProtocolRequest's fields (checked by ProtocolRequest)."""
    from dataclasses import fields

    from operascope.acquisition.protocols import ProtocolRequest

    if request is not None:
        allowed = {f.name for f in fields(ProtocolRequest)}
        unknown = sorted(set(request) - allowed)
        if unknown:
            raise CommandError(f"start_protocol: unknown request field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
        try:
            protocol: Any = ProtocolRequest(**request)
        except (TypeError, ValueError) as exc:
            raise CommandError(f"start_protocol: {exc}") from None
    elif kind is not None:
        protocol = kind
    else:
        raise CommandError("start_protocol: give kind or request")
    engine.start_protocol(protocol, duration_s)
    return str(getattr(protocol, "kind", protocol))


def _level(value: Any) -> str | None:
    return None if value in ("debug", "info", "warning", "error") else "one of debug, info, warning, error"


def build_commands() -> dict[str, Command]:
    """Every command the engine server accepts."""
    return {
        "ping": Command(False, {}, lambda engine: "pong"),
        "status": Command(False, {}, lambda engine: engine.status()),
        "events": Command(False, {}, lambda engine: engine.events.history()[-500:]),
        "clock_s": Command(False, {}, lambda engine: engine.clock_s()),
        "clock_speed": Command(False, {}, lambda engine: engine.clock_speed()),
        "echem_samples": Command(False, {"start": Param((int,))},
                                 lambda engine, start=0: engine.echem_samples(max(0, start))[:10_000]),
        "stage_position_nm": Command(False, {}, lambda engine: engine.stage_position_nm()),
        "take_control": Command(False, {"force": Param((bool,))}, lambda engine, force=False: None),
        "release_control": Command(False, {}, lambda engine: None),
        "start_live": Command(True, {}, lambda engine: engine.start_live()),
        "stop_live": Command(True, {}, lambda engine: engine.stop_live()),
        "start_recording": Command(True, {
            "out_path": Param((str,), True, _h5_path), "bin_size": Param((int,), False, _bin_size),
            "save_raw": Param((bool,)), "duration_s": Param(NUMBER, False, _finite_positive),
            "positions": Param((str,), False, _short_text), "positions_toml": Param((str,), False, _toml_text),
            "dwell_bins": Param((int,), False, _whole_positive)}, _start_recording),
        "position_statuses": Command(False, {}, lambda engine: engine.position_statuses()),
        "stop_recording": Command(True, {"reason": Param((str,), False, _short_text)},
                                  lambda engine, reason="stopped by a client": engine.stop_recording(reason)),
        "start_protocol": Command(True, {"kind": Param((str,), False, _protocol_kind),
                                         "duration_s": Param(NUMBER, False, _finite_positive),
                                         "request": Param((dict,))}, _start_protocol),
        "stop_protocol": Command(True, {}, lambda engine: engine.stop_protocol()),
        "calibrate_focus": Command(True, {}, lambda engine: engine.calibrate_focus()),
        "lock_focus": Command(True, {}, lambda engine: engine.lock_focus()),
        "unlock_focus": Command(True, {}, lambda engine: engine.unlock_focus()),
        "set_focus_offset_nm": Command(True, {"offset_nm": Param(NUMBER, True, _finite)},
                                       lambda engine, offset_nm: engine.set_focus_offset_nm(float(offset_nm))),
        "move_stage_nm": Command(True, {"targets_nm": Param((dict,), True, _axis_targets), "confirmed": Param((bool,)),
                                        "origin": Param((str,), False, _short_text)}, _move_stage),
        "halt_stage": Command(True, {}, lambda engine: engine.halt_stage()),
        "set_led": Command(True, {"on": Param((bool,)), "current_a": Param(NUMBER, False, _finite)},
                           lambda engine, on=None, current_a=None: engine.set_led(on, current_a, origin="client")),
        "set_laser": Command(True, {"on": Param((bool,)), "power_w": Param(NUMBER, False, _finite)},
                             lambda engine, on=None, power_w=None: engine.set_laser(on, power_w, origin="client")),
        "note": Command(True, {"message": Param((str,), True, _short_text), "source": Param((str,), False, _short_text),
                               "level": Param((str,), False, _level)},
                        lambda engine, message, source="client", level="info": engine.note(message, source, level)),
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
