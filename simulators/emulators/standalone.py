"""Running one protocol emulator on its own (``python -m operascope.simulators.emulators.amc100`` and friends)."""

from __future__ import annotations

import signal
import time
from typing import Any, Callable

from operascope.devices.base import Device


def simulated_device(role: str) -> Device:
    """The simulated backend of ``role`` in a World of its own (default simulated config)."""
    from operascope.config.loader import load_config
    from operascope.simulators.devices.backends import build_simulated_devices
    from operascope.simulators.world.world import World

    return build_simulated_devices(World(load_config()))[role]


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM ends the standalone emulator like Ctrl-C (so it cleans up)."""
    raise KeyboardInterrupt


def serve_until_interrupted(stop: Callable[[], None]) -> int:
    """Block until Ctrl-C or SIGTERM, then call ``stop``; returns exit status 0."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
    return 0


def serve_amc100(argv: list[str] | None, server_class: Any, description: str) -> int:
    """``python -m operascope.simulators.emulators.amc100``: a simulated stage behind the AMC100 emulator."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m operascope.simulators.emulators.amc100", description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    args = parser.parse_args(argv)
    server = server_class(simulated_device("stage"), args.host, args.port)
    host, port = server.start()
    print(f"AMC100 emulator listening on {host}:{port}", flush=True)
    return serve_until_interrupted(server.stop)
