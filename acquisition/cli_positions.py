"""The multi-position flags of ``operascope acquire``: ``--positions FILE.toml`` and ``--dwell-bins K``."""

from __future__ import annotations

import argparse
import logging
from typing import Any, Callable

log = logging.getLogger(__name__)


def add_position_flags(acq: argparse.ArgumentParser, whole_number: Callable[[str, str], Any]) -> None:
    """Add ``--positions`` and ``--dwell-bins`` to the acquire sub-parser."""
    acq.add_argument("--positions", metavar="FILE.toml",
                     help="multi-position run: cycle through the stage positions of this TOML list (see README)")
    acq.add_argument("--dwell-bins", type=whole_number("--dwell-bins", "bins per visit"),
                     help="multi-position run: binned frames recorded per visit of a position (default 1)")


def check_positions_flags(args: argparse.Namespace) -> None:
    """``--positions`` loads (a bad file -> one ValueError naming it) into ``args.position_list``;
    ``--dwell-bins`` needs ``--positions``. The engine checks the list against the stage's soft limits."""
    positions = getattr(args, "positions", None)
    if positions is None:
        if getattr(args, "dwell_bins", None) is not None:
            raise ValueError("--dwell-bins applies only to a multi-position run; give --positions FILE.toml too")
        return
    from operascope.acquisition.positions import load_positions

    args.position_list = load_positions(positions)
