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

    exp = sub.add_parser("export", help="write a run's frames as OME-Zarr/OME-TIFF, or its logs as CSV")
    exp.add_argument("run", help="run file (.h5)")
    exp.add_argument("--to", required=True, choices=("ome-zarr", "ome-tiff", "csv"), help="output format")
    exp.add_argument("--what", default="binned", choices=("binned", "differential"),
                     help="frame stack for ome-zarr/ome-tiff (default binned)")
    exp.add_argument("--out", required=True, help="output path (a folder for ome-zarr and csv)")
    exp.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def cmd_repair(args: argparse.Namespace) -> int:
    """``operascope repair run.h5``: prints what was kept."""
    from operascope.analysis.repair import repair

    for line in repair(args.run).lines():
        print(line)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """``operascope export run.h5 --to FORMAT --out PATH``."""
    from operascope.analysis.export import export

    for line in export(args.run, args.to, args.out, what=args.what, overwrite=args.overwrite):
        print(line)
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"repair": cmd_repair, "export": cmd_export}
