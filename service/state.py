"""Where a running engine says how to reach it: ``engine.json`` (endpoints, PID, token), mode 0600.

The folder is ``$OPERASCOPE_STATE_DIR`` if set, else ``$XDG_STATE_HOME/operascope`` or
``~/.local/state/operascope``. Only the user who started the engine can read the token, and every
command must carry it.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

ENGINE_FILE = "engine.json"


class EngineNotFound(RuntimeError):
    """No engine file, or it names an engine that is not running."""


@dataclass(frozen=True)
class EngineAddress:
    """How to reach one engine: its command (ROUTER) and publish (PUB) endpoints, PID and token."""

    command_endpoint: str
    publish_endpoint: str
    pid: int
    token: str


def state_dir() -> Path:
    """The per-user folder holding the engine file (and the GUI's logs)."""
    override = os.environ.get("OPERASCOPE_STATE_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "operascope"


def new_token() -> str:
    """A fresh random token (256 bits, hex)."""
    return secrets.token_hex(32)


def write_engine_file(address: EngineAddress, folder: Path | None = None) -> Path:
    """Write the engine file readable only by this user (created 0600, then renamed into place)."""
    folder = folder or state_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / ENGINE_FILE
    tmp = folder / f".{ENGINE_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(address), handle)
    os.replace(tmp, path)
    return path


def remove_engine_file(pid: int, folder: Path | None = None) -> None:
    """Remove the engine file if it still names this engine's PID."""
    path = (folder or state_dir()) / ENGINE_FILE
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_engine_file(folder: Path | None = None) -> EngineAddress:
    """The running engine's address; :class:`EngineNotFound` with a hint if there is none."""
    path = (folder or state_dir()) / ENGINE_FILE
    try:
        data = json.loads(path.read_text())
        address = EngineAddress(str(data["command_endpoint"]), str(data["publish_endpoint"]), int(data["pid"]),
                                str(data["token"]))
    except FileNotFoundError:
        raise EngineNotFound(f"no running engine ({path} does not exist): start one with `operascope serve`") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineNotFound(f"cannot read the engine file {path}: {exc}") from None
    if not _pid_alive(address.pid):
        raise EngineNotFound(f"the engine named in {path} (PID {address.pid}) is not running: start one with "
                             "`operascope serve`")
    return address
