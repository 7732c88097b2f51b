"""The engine-service sub-commands of ``operascope``: serve, status, stop, record."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable


def add_parsers(sub: Any, positive_float: Callable[[str], Callable[[str], float]], protocols: tuple[str, ...]) -> None:
    """Add ``serve``, ``status``, ``stop`` and ``record`` to the CLI's sub-parsers."""
    serve = sub.add_parser("serve", help="run the engine in its own process (GUI and scripts attach to it)")
    serve.add_argument("--config", help="rig TOML (default: the simulated rig)")
    serve.add_argument("--speed", type=positive_float("--speed"), help="simulation only: rig seconds per wall second")
    serve.add_argument("--seed", type=int, help="simulation only: random seed")
    serve.add_argument("--fps", type=positive_float("--fps"), help="camera frame rate in Hz")
    serve.add_argument("--port", type=int, default=0, help="command port on 127.0.0.1 (default: any free port)")
    sub.add_parser("status", help="the running engine's state")
    stop = sub.add_parser("stop", help="stop the running engine's recording (or, with --engine, the engine)")
    stop.add_argument("--engine", action="store_true", help="stop the engine process itself")
    record = sub.add_parser("record", help="start a recording on the running engine")
    record.add_argument("--out", required=True, help="run file to write (.h5)")
    record.add_argument("--duration", type=positive_float("--duration"), help="seconds of rig time to record")
    record.add_argument("--protocol", choices=protocols, help="electrochemistry protocol to start with it")
    record.add_argument("--bin", type=int, help="frames per bin")


def _serve(args: argparse.Namespace) -> int:
    from operascope.config.loader import load_config
    from operascope.service.serve import serve

    overrides: dict[str, Any] = {}
    sim = {k: v for k, v in (("speed", args.speed), ("seed", args.seed)) if v is not None}
    if sim:
        overrides["simulation"] = sim
    if args.fps is not None:
        overrides["acquisition"] = {"frame_rate_hz": args.fps}
    config = load_config(args.config, overrides)
    if sim and not config.is_fully_simulated:
        raise ValueError("--speed and --seed apply only to a fully simulated rig (every driver = \"simulated\")")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be 0..65535, got {args.port}")
    return serve(config, command_port=args.port)


def _connect() -> Any:
    from operascope.service.client import connect

    return connect(client_name="cli")


def _status(args: argparse.Namespace) -> int:
    from operascope.service.serve import print_status

    with _connect() as engine:
        print_status(engine.status(), engine.controller)
    return 0


def _stop(args: argparse.Namespace) -> int:
    with _connect() as engine:
        engine.take_control()
        if args.engine:
            engine.shutdown()
            print("engine stopping")
            return 0
        summary = engine.stop_recording("stopped by `operascope stop`")
        engine.release_control()
    if summary is None:
        print("no recording was running")
    else:
        print(f"{summary.path}: {summary.bins} binned frames; stopped: {summary.stop_reason}")
    return 0


def _record(args: argparse.Namespace) -> int:
    if args.duration is None and args.protocol is None:
        raise ValueError("give --duration S, --protocol, or both (otherwise the run would never end)")
    out = Path(args.out).resolve()
    with _connect() as engine:
        engine.take_control()
        engine.start_recording(str(out), bin_size=args.bin, duration_s=args.duration)
        if args.protocol is not None:
            engine.start_protocol(args.protocol, args.duration if args.protocol == "ocv" else None)
        engine.release_control()
    print(f"recording to {out} on the running engine ({'for %g s' % args.duration if args.duration else 'until stopped'});"
          " `operascope status` to follow, `operascope stop` to end it", file=sys.stderr)
    return 0


def _one_line_errors(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Engine not found, unreachable or refusing: one line on stderr, exit 1."""
    def run(args: argparse.Namespace) -> int:
        from operascope.service.client import EngineRefused, EngineUnreachable
        from operascope.service.state import EngineNotFound

        try:
            return command(args)
        except (EngineNotFound, EngineUnreachable, EngineRefused) as exc:
            print(f"operascope: error: {exc}", file=sys.stderr)
            return 1
    return run


COMMANDS = {name: _one_line_errors(command)
            for name, command in (("serve", _serve), ("status", _status), ("stop", _stop), ("record", _record))}
