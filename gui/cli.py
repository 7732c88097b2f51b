"""``operascope-gui`` (and ``python -m operascope.gui``): the microscope window's command line."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Sequence

PROTOCOL_CHOICES = ("ocv", "charge", "discharge", "cycle", "gitt")


def _positive_seconds(flag: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{flag} must be a finite number > 0, got {text!r}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The GUI's flags (the same as ``operascope gui``)."""
    parser = argparse.ArgumentParser(prog="operascope-gui", description="the operando microscope window")
    parser.add_argument("--config", help="rig TOML (default: the simulated rig)")
    parser.add_argument("--screenshot", metavar="PATH", help="save a screenshot of the window and quit")
    parser.add_argument("--quit-after", type=float, metavar="S", help="quit after S seconds")
    parser.add_argument("--protocol", choices=PROTOCOL_CHOICES, help="start this electrochemistry protocol once the rig is open")
    parser.add_argument("--focus-lock", action="store_true", help="calibrate and lock the focus once the rig is open")
    parser.add_argument("--open", metavar="RUN.h5", dest="open_path",
                        help="browse this run file (also one still being written) instead of the live rig")
    parser.add_argument("--speed", type=_positive_seconds("--speed"), help="simulation only: rig seconds per wall second")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--attach", action="store_true",
                      help="attach to the engine started by `operascope serve` (closing the window leaves it running)")
    mode.add_argument("--standalone", action="store_true",
                      help="run the engine inside this window's process (the default)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags and run the window; returns the exit status (0 ok, 1 failed, 2 usage)."""
    args = build_parser().parse_args(argv)
    try:
        from operascope.gui.app import main as gui_main
    except ImportError as exc:
        print(f"operascope-gui: error: the GUI cannot start: {exc} (install PyQt5 and pyqtgraph)", file=sys.stderr)
        return 1
    return int(gui_main(args.config, args.screenshot, args.quit_after, protocol=args.protocol,
                        focus_lock=args.focus_lock, speed=args.speed,
                        open_path=args.open_path, attach=args.attach) or 0)
