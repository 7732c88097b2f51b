"""`operascope analyze` glue for the Dask path: the --workers / --scheduler flags, and routing of several runs
(or a study TOML, or any of those flags) to :func:`operascope.analysis.distributed.study.analyze_study`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from operascope.analysis.distributed.runner import SCHEDULER_ENV


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--workers must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--workers must be an integer >= 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The Dask flags of ``operascope analyze``."""
    parser.add_argument("--workers", type=_workers, help="analyse with Dask on N local threads (default: serial for "
                                                         "one run, all cores for several)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help=f"send the analysis to a running dask.distributed scheduler (or set {SCHEDULER_ENV})")


def wants_dask(args: argparse.Namespace) -> bool:
    """Several inputs, a study TOML, or a Dask flag: the Dask path; one run and no flag: the serial report."""
    inputs = list(args.run)
    return (len(inputs) > 1 or Path(inputs[0]).suffix.lower() == ".toml" or args.workers is not None
            or args.scheduler is not None or bool(os.environ.get(SCHEDULER_ENV)))


def cmd_analyze_dask(args: argparse.Namespace) -> int:
    """Run the study (one or more runs) and print where the table and figures are."""
    from operascope.analysis.distributed.study import analyze_study, study_runs

    runs = study_runs(args.run)
    if args.out:
        out = Path(args.out)
    elif len(runs) == 1:
        out = runs[0].path.with_name(runs[0].path.stem + "_study")
    else:
        raise ValueError("several runs need --out FOLDER for the study table and figures")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder; give another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--out {out} cannot be created ({exc.strerror or exc}); give another --out") from None
    if not os.access(out, os.W_OK):
        raise ValueError(f"--out {out} is not writable; give another --out")
    summary = analyze_study(runs, out, workers=args.workers, scheduler=args.scheduler, progress=sys.stderr.isatty())
    n_particles = sum(len(r["particles"]) for r in summary["runs"])
    print(f"study of {summary['n_runs']} run(s), {n_particles} particles, {summary['n_rows']} rows written to {out}: "
          f"{', '.join(summary['files'])} ({summary['n_chunks_from_cache']} of {summary['n_chunks']} chunks of bins "
          f"from the cache)")
    return 0
