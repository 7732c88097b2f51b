"""The run-file sub-commands of ``operascope`` (``repair``, ``export``), registered by acquisition/cli.py."""

from __future__ import annotations

import argparse
from typing import Callable

EXIT_OK = 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the run-file sub-commands to the ``operascope`` parser."""
    rep = sub.add_parser("repair", help="make a crashed run file readable by any HDF5 tool (clears open flags, "
                                        "trims to the last consistent bin, stop_reason 'crashed')")
    rep.add_argument("run", help="run file (.h5) left by a crashed or killed acquisition")


def cmd_repair(args: argparse.Namespace) -> int:
    """``operascope repair run.h5``: prints what was kept."""
    from operascope.analysis.repair import repair

    for line in repair(args.run).lines():
        print(line)
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"repair": cmd_repair}
