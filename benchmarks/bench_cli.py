"""Command-line start-up: ``operascope --help`` and every subcommand's ``--help`` against ``python -c pass``.

Each command is started as users start it (the ``operascope`` console script of this environment), best of
``--repeats`` wall times, alongside the interpreter's own start-up measured in the same run. Goal: every
``--help`` in <= 150 ms. Also ``python -c "import operascope"`` (no heavy work at import).

    .venv/bin/python benchmarks/bench_cli.py [--repeats N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

GOAL_MS = 150.0


def best_wall_ms(argv: list[str], repeats: int) -> float:
    """Least wall time (ms) of ``repeats`` runs of ``argv`` (its output discarded; a failure is an error)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def subcommands() -> list[str]:
    """The subcommands of ``operascope`` (from its parser)."""
    from operascope.acquisition.cli import build_parser

    parser = build_parser()
    for action in parser._subparsers._group_actions:   # argparse keeps the sub-parsers here
        return sorted(action.choices)
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs per command; the least counts (default 7)")
    args = parser.parse_args()
    python = sys.executable
    script = str(Path(python).with_name("operascope"))
    reference_ms = best_wall_ms([python, "-c", "pass"], args.repeats)
    import_ms = best_wall_ms([python, "-c", "import operascope"], args.repeats)
    print(f"python -c pass: {reference_ms:.0f} ms (the reference); import operascope: {import_ms:.0f} ms "
          f"({import_ms / reference_ms:.1f}x)")
    worst = 0.0
    commands = [[script], *([script, name] for name in subcommands()), [script + "-gui"]]
    for command in commands:
        ms = best_wall_ms([*command, "--help"], args.repeats)
        worst = max(worst, ms)
        shown = " ".join([Path(command[0]).name, *command[1:], "--help"])
        print(f"{shown:<35} {ms:6.0f} ms = {ms / reference_ms:5.1f}x python -c pass"
              f"  ({'ok' if ms <= GOAL_MS else 'OVER'} the {GOAL_MS:.0f} ms goal)")
    print(f"slowest --help: {worst:.0f} ms ({worst / reference_ms:.1f}x python -c pass); goal <= {GOAL_MS:.0f} ms: "
          f"{'met' if worst <= GOAL_MS else 'NOT met'}")
    return 0 if worst <= GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
