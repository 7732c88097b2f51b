"""``operascope serve``: the engine in its own process, headless, owning the rig until told to stop.

It starts the live pipeline, serves it (:class:`~operascope.service.server.EngineServer`), writes the
engine file (endpoints + token, 0600) and runs until SIGTERM/SIGINT or a client's ``shutdown``. A running
recording is ended cleanly on the way out; a client that dies never stops it.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import signal
import sys
import threading
from typing import Any

from operascope.service.state import EngineAddress, new_token, remove_engine_file, state_dir, write_engine_file

log = logging.getLogger(__name__)


def _log_to_state_folder() -> logging.Handler:
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    handler = logging.handlers.RotatingFileHandler(folder / "engine.log", maxBytes=20_000_000, backupCount=5)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return handler


def serve(config: Any, command_port: int = 0, publish_port: int = 0, ready: Any = None) -> int:
    """Open the rig from ``config``, serve it until stopped; returns the exit status."""
    from operascope.acquisition.microscope import Microscope
    from operascope.service.server import EngineServer

    handler = _log_to_state_folder()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, _f: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    token = new_token()
    try:
        with Microscope(config) as scope:
            scope.start_live()
            server = EngineServer(scope, token, command_port=command_port, publish_port=publish_port)
            command_endpoint, publish_endpoint = server.start()
            path = write_engine_file(EngineAddress(command_endpoint, publish_endpoint, os.getpid(), token))
            print(f"engine serving: commands {command_endpoint}, data {publish_endpoint} (PID {os.getpid()}); "
                  f"address and token in {path}", flush=True)
            try:
                while not stop.wait(0.2):
                    if server.shutdown_requested.is_set():
                        log.info("shutdown requested by a client")
                        break
            finally:
                if scope.is_recording:
                    summary = scope.stop_recording("engine stopped")
                    log.info("recording ended as the engine stopped: %s", summary)
                server.stop()
                remove_engine_file(os.getpid())
        return 0
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        logging.getLogger().removeHandler(handler)
        handler.close()


def print_status(status: Any, controller: str | None, out: Any = sys.stdout) -> None:
    """One status block for ``operascope status``."""
    lines = [f"state        {status.state}",
             f"clock        {status.clock_s:.1f} s",
             f"camera       {status.frames_in} frames, {status.frames_dropped} dropped",
             f"recording    {status.recording_path or '-'}"]
    if status.recording_path:
        lines.append(f"             {status.record_elapsed_s:.1f} s, {status.bins_written} bins written")
    lines += [f"cell         {status.voltage_v:.4f} V, {status.current_a * 1e3:.4g} mA, "
              f"{status.capacity_mAh_g:.2f} mAh/g",
              f"protocol     {status.protocol or '-'}{' (running)' if status.protocol_running else ''}",
              f"focus        {status.focus_state}",
              f"controller   {controller or 'none'}"]
    print("\n".join(lines), file=out)
