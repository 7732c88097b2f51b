"""``operascope`` command line: devices, acquire, analyze, gitt, model, gui.

User errors (bad flags, bad config, impossible settings, missing or foreign input files) print one
line ``operascope: error: ...`` on stderr and exit with status 2, before any device moves.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from operascope.acquisition import selftest
from operascope.acquisition.cli_positions import add_position_flags, check_positions_flags
from operascope.acquisition.cli_support import (
    cmd_gui,
    _existing_input,
    _new_output_folder,
    _output_folder,
    _progress_lines,
)
from operascope.acquisition.logs import (
    LEVELS, SHOWN_TO_USER, configure_console, level_from_flags, log_file_beside,
)
from operascope.acquisition.protocol_kinds import PROTOCOL_KINDS as PROTOCOLS

from operascope.analysis import runfile_cli

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# Defaults of `operascope gitt` for LiNi0.88Mn0.05Co0.07O2 (physics reference, section 0).
GITT_DEFAULTS = {"bet_m2_g": 0.6, "molar_mass_g_mol": 97.46, "molar_volume_cm3_mol": 20.39}
#: Longest run `acquire --duration` accepts (s of rig time): one year.
MAX_DURATION_S = 365 * 86_400.0


class UsageError(Exception):
    """A bad flag or flag value: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit status 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _positive_float(name: str, maximum: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{name} must be > 0, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{name} must be at most {maximum:g}, got {text}")
        return value
    return parse


def _whole_number(name: str, what: str) -> Callable[[str], int]:
    """A parser of whole numbers >= 1 whose errors name ``name`` (the flag) and ``what`` it counts."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number of {what} >= 1, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number of {what} >= 1, got {text}")
        return value
    return parse


_bin_size = _whole_number("--bin", "frames")


def _finite_float(name: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{name} must be finite, got {text}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="operascope", description="Operando optical scattering microscope: acquisition and analysis.")
    parser.add_argument("--version", action="version", version=f"operascope {_version()}")
    _add_log_flags(parser, None)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    dev = sub.add_parser("devices", help="open each configured device and say whether it answers")
    dev.add_argument("--config", help="rig TOML (default: the simulated rig)")

    acq = sub.add_parser("acquire", help="record a run (imaging + electrochemistry) to an HDF5 file")
    acq.add_argument("--config", help="rig TOML (default: the simulated rig)")
    acq.add_argument("--out", required=True, help="run file to write (.h5); an existing file is refused")
    acq.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    acq.add_argument("--duration", type=_positive_float("--duration", MAX_DURATION_S),
                     help="seconds of rig time to record (at most one year)")
    acq.add_argument("--bin", type=_bin_size, help="camera frames per binned frame (>= 1)")
    acq.add_argument("--exposure", type=_positive_float("--exposure"), help="exposure time in ms")
    acq.add_argument("--fps", type=_positive_float("--fps"), help="camera frame rate in Hz")
    acq.add_argument("--protocol", choices=PROTOCOLS, help="electrochemistry protocol")
    acq.add_argument("--c-rate", type=_positive_float("--c-rate"), help="C-rate n (I = n x 200 mAh/g x mass)")
    acq.add_argument("--v-min", type=_finite_float("--v-min"), help="lower voltage cut-off (V)")
    acq.add_argument("--v-max", type=_finite_float("--v-max"), help="upper voltage cut-off (V)")
    acq.add_argument("--cycles", type=_whole_number("--cycles", "cycles"), help="number of charge/discharge cycles (protocol cycle)")
    acq.add_argument("--focus-lock", action=argparse.BooleanOptionalAction, default=None,
                     help="calibrate (or load) and lock the focus during the run")
    acq.add_argument("--autofocus", action="store_true",
                     help="image-based autofocus before the run (before the focus lock engages, so it holds best focus)")
    acq.add_argument("--save-raw", action="store_true", default=None, help="also store every raw frame")
    add_position_flags(acq, _whole_number)
    acq.add_argument("--speed", type=_positive_float("--speed"), help="simulation only: rig seconds per wall second")
    acq.add_argument("--seed", type=int, help="simulation only: random seed")

    ana = sub.add_parser("analyze", help="figures (PNG) + summary.json from a run file")
    ana.add_argument("run", nargs="+", help="run file (.h5); several run files or a study TOML: a Dask study")
    ana.add_argument("--out", help="output folder (default: <run>_report next to the run)")
    from operascope.analysis.distributed.cli import add_arguments as add_dask_arguments

    add_dask_arguments(ana)

    gitt = sub.add_parser("gitt", help="GITT: D(x) table + plot from a run file or CSV",
                          description="Defaults are for LiNi0.88Mn0.05Co0.07O2: BET 0.6 m2/g, M 97.46 g/mol, "
                                      "V_m 20.39 cm3/mol; active mass from the run file, else 1 mg.")
    gitt.add_argument("data", help="run file (.h5) or CSV (time_s, voltage_v, current_a[, step])")
    gitt.add_argument("--out", help="output folder (default: <data>_gitt)")
    gitt.add_argument("--active-mass-mg", type=_positive_float("--active-mass-mg"),
                      help="active mass in mg (default: from the run file, else 1 mg)")
    gitt.add_argument("--bet-m2-g", type=_positive_float("--bet-m2-g"), default=GITT_DEFAULTS["bet_m2_g"],
                      help="BET specific surface area in m2/g (default 0.6)")
    gitt.add_argument("--molar-mass-g-mol", type=_positive_float("--molar-mass-g-mol"),
                      default=GITT_DEFAULTS["molar_mass_g_mol"], help="molar mass in g/mol (default 97.46)")
    gitt.add_argument("--molar-volume-cm3-mol", type=_positive_float("--molar-volume-cm3-mol"),
                      default=GITT_DEFAULTS["molar_volume_cm3_mol"], help="molar volume in cm3/mol (default 20.39)")
    gitt.add_argument("--x-start", type=_positive_float("--x-start"),
                      help="Li per formula unit at the start of the data, 0 < x <= 1.2 (default: from the OCV of the first sample)")

    model = sub.add_parser("model", help="single-particle diffusion model run")
    model.add_argument("--c-rate", type=_positive_float("--c-rate"), default=1.0, help="C-rate (default 1)")
    model.add_argument("--eta", type=_finite_float("--eta"), default=1.0, help="rock-salt/NMC flux ratio (0..1)")
    model.add_argument("--gamma", type=_finite_float("--gamma"), default=0.0, help="rock-salt perimeter fraction")
    model.add_argument("--rsl-angle", type=_finite_float("--rsl-angle"), default=0.0, metavar="DEG",
                       help="direction of the rock-salt arc's centre (deg, image axes: from +x towards +y)")
    model.add_argument("--diameter-um", type=_positive_float("--diameter-um"), default=3.0, help="particle diameter")
    model.add_argument("--out", default="model_out", help="output folder (default model_out)")
    model.add_argument("--sweep", action="store_true", help="sweep eta and gamma")

    runfile_cli.add_parsers(sub)
    gui = sub.add_parser("gui", help="the microscope window")
    gui.add_argument("--config", help="rig TOML (default: the simulated rig)")
    gui.add_argument("--screenshot", metavar="PATH", help="save a screenshot of the window and quit")
    gui.add_argument("--quit-after", type=float, metavar="S", help="quit after S seconds")
    gui.add_argument("--protocol", choices=PROTOCOLS, help="start this electrochemistry protocol once the rig is open")
    gui.add_argument("--focus-lock", action="store_true", help="calibrate and lock the focus once the rig is open")
    gui.add_argument("--speed", type=_positive_float("--speed"), help="simulation only: rig seconds per wall second")
    gui.add_argument("--open", dest="open_path", metavar="RUN.h5", help="browse this run file (the run browser)")
    gui.add_argument("--attach", action="store_true", help="attach to the engine started by `operascope serve`")
    selftest.add_parser(sub)
    from operascope.service.cli_commands import add_parsers as add_service_parsers

    add_service_parsers(sub, _positive_float, PROTOCOLS)
    for subparser in sub.choices.values():
        _add_log_flags(subparser, argparse.SUPPRESS)
    return parser


def _add_log_flags(parser: argparse.ArgumentParser, default: Any) -> None:
    """``--log-level``, ``-v``, ``-q`` (on the main parser and, without defaults, on each command)."""
    parser.add_argument("--log-level", choices=LEVELS, default=default,
                        help="console log level (default warning; the run's log file always has info)")
    parser.add_argument("-v", "--verbose", action="count", default=default if default is not None else 0,
                        help="more log lines on the console (-v info, -vv debug)")
    parser.add_argument("-q", "--quiet", action="count", default=default if default is not None else 0,
                        help="fewer log lines on the console (errors only)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("operascope")
    except PackageNotFoundError:
        return "0+unknown"


def _one_line(message: str) -> str:
    """``message`` with line breaks and other unprintable characters escaped (e.g. from a file name)."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in message)


def _say(message: str) -> None:
    print(f"operascope: error: {_one_line(message)}", file=sys.stderr)


# --------------------------------------------------------------------------- devices


def cmd_devices(args: argparse.Namespace) -> int:
    from operascope.acquisition.rig import ROLES, build_rig, describe_device
    from operascope.config.loader import load_config

    config = load_config(args.config)
    rig = build_rig(config)
    rows = []
    try:
        for role in ROLES:
            rows.append(describe_device(role, rig.devices[role], getattr(config.devices, role).driver))
    finally:
        if rig.stop_emulators is not None:
            rig.stop_emulators()
    header = ("role", "driver", "model / serial", "status")
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return EXIT_OK if all(r[3] == "answering" for r in rows) else EXIT_FAILED


# --------------------------------------------------------------------------- acquire


#: acquire flag (argparse dest) -> (config section, key)
ACQUIRE_FLAG_KEYS: dict[str, tuple[str, str]] = {
    "exposure": ("acquisition", "exposure_ms"), "fps": ("acquisition", "frame_rate_hz"),
    "bin": ("acquisition", "bin_size"), "save_raw": ("acquisition", "save_raw"),
    "c_rate": ("electrochemistry", "c_rate"), "v_min": ("electrochemistry", "v_min"),
    "v_max": ("electrochemistry", "v_max"), "cycles": ("electrochemistry", "cycles"),
    "speed": ("simulation", "speed"), "seed": ("simulation", "seed")}


def acquire_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config overrides (nested) given by the acquire flags."""
    out: dict[str, Any] = {}
    for dest, (section, key) in ACQUIRE_FLAG_KEYS.items():
        value = getattr(args, dest)
        if value is not None:
            out.setdefault(section, {})[key] = value
    if args.focus_lock is not None:
        out["focus_lock"] = {"enabled": bool(args.focus_lock)}
    return out


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def load_acquire_config(args: argparse.Namespace) -> Any:
    """The config file with the acquire flags applied. A bad flag value is reported by its flag
    (``--v-max 9: ...``), not as a key of the config file; a bad file is reported by the file."""
    from operascope.config.loader import ConfigError, load_config

    load_config(args.config)   # the file alone: its own errors name the file
    for dest, (section, key) in ACQUIRE_FLAG_KEYS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        try:
            load_config(args.config, {section: {key: value}})
        except ConfigError as exc:
            raise ValueError(f"{_flag(dest)} {value} ({section}.{key}): {_problem(str(exc))}") from None
    try:
        return load_config(args.config, acquire_overrides(args))
    except ConfigError as exc:   # a combination, e.g. --v-min above --v-max
        given = [_flag(d) for d in ACQUIRE_FLAG_KEYS if getattr(args, d) is not None]
        raise ValueError(f"{', '.join(given) or 'the flags'}: {_problem(str(exc))}") from None


def _problem(config_message: str) -> str:
    """The 'what is wrong' part of a ConfigError line (after the file and key)."""
    return config_message.rsplit(": ", 1)[-1]


def check_acquire_settings(args: argparse.Namespace, config: Any) -> None:
    """Impossible combinations that the schema alone does not catch (ValueError, one line)."""
    if args.duration is None and args.protocol is None:
        raise ValueError("give --duration S, --protocol, or both (otherwise the run would never end)")
    if args.protocol == "ocv" and args.duration is None:
        raise ValueError("--protocol ocv needs --duration S (an OCV rest has no cut-off)")
    acq = config.acquisition
    if acq.exposure_ms > 1000.0 / acq.frame_rate_hz:
        raise ValueError(f"exposure {acq.exposure_ms:g} ms does not fit in a frame period at {acq.frame_rate_hz:g} Hz "
                         f"({1000.0 / acq.frame_rate_hz:.3g} ms); lower --exposure or --fps")
    if (args.speed is not None or args.seed is not None) and not config.is_fully_simulated:
        raise ValueError("--speed and --seed apply only to a fully simulated rig (every driver = \"simulated\")")
    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name such as {out / 'run.h5'}")
    _output_folder(out.parent, "--out", f"the folder of --out {out}")
    if out.exists() and not getattr(args, "overwrite", False):
        raise ValueError(f"--out {out} exists (a previous run?); give another --out or --overwrite to replace it")
    check_positions_flags(args)



def _loud_focus_faults(event: Any) -> None:
    """Print focus-lock error events (faults, restated with the reaction by lock_faults.py) on stderr at once."""
    if event.level == "error" and event.source == "focus_lock" and "-> fault" not in event.message[:40]:
        print(f"\noperascope: FOCUS LOCK: {_one_line(event.message)}", file=sys.stderr, flush=True)


def cmd_acquire(args: argparse.Namespace) -> int:
    from operascope.acquisition.speed_cap import capped_speed_or_warn

    config = load_acquire_config(args)
    check_acquire_settings(args, config)
    out = Path(args.out)
    with log_file_beside(out) as log_path:
        log.info("operascope %s acquire -> %s (log %s)", _version(), out, log_path)
        config = capped_speed_or_warn(config)
        return _record(args, config, out)


def _record(args: argparse.Namespace, config: Any, out: Path) -> int:
    from operascope.acquisition.microscope import Microscope
    from operascope.acquisition.progress import ProgressPrinter

    printer = ProgressPrinter(sys.stderr)
    scope = Microscope(config)
    scope.autofocus_before_lock = bool(getattr(args, "autofocus", False))
    scope.subscribe_events(_loud_focus_faults)   # a focus-lock fault is never silent (issue 15 item 4)
    previous = {}

    def on_signal(signum: int, _frame: Any) -> None:
        scope.request_stop(f"stopped by {signal.Signals(signum).name}")

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, on_signal)
    try:
        with scope:
            summary = scope.record(out, duration_s=args.duration, protocol=args.protocol, progress=printer,
                                   focus_lock=config.focus_lock.enabled, overwrite=args.overwrite,
                                   positions=getattr(args, "position_list", None),
                                   dwell_bins=getattr(args, "dwell_bins", None) or 1)
    finally:
        printer.finish()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"{summary.path}: {summary.bins} binned frames ({summary.partial_bins} partial) from {summary.frames_in} "
          f"frames, {summary.frames_dropped} dropped, {summary.raw_frames} raw; {summary.duration_s:.1f} s; "
          f"stopped: {summary.stop_reason}")
    log.info("run ended: %s, %d bins", summary.stop_reason, summary.bins)
    for error in summary.errors:
        log.error("%s", error, extra=SHOWN_TO_USER)
        _say(error)
    if summary.focus_faults or summary.focus_unlocked_s > 0:
        print(f"operascope: warning: focus lock faulted {len(summary.focus_faults)} time(s), unlocked "
              f"{summary.focus_unlocked_s:.0f} s of the run; " + "; ".join(summary.focus_faults), file=sys.stderr)
    return EXIT_FAILED if summary.errors or summary.stop_reason.startswith("error") else EXIT_OK


# --------------------------------------------------------------------------- analysis commands


def cmd_analyze(args: argparse.Namespace) -> int:
    from operascope.analysis.distributed.cli import cmd_analyze_dask, wants_dask
    from operascope.analysis.report import analyze_run

    if wants_dask(args):
        return cmd_analyze_dask(args)
    run = _existing_input(args.run[0])
    with _new_output_folder(Path(args.out) if args.out else run.with_name(run.stem + "_report"), "--out") as out:
        summary = analyze_run(run, out, progress=_progress_lines("analyze"))
    print(f"report written to {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
    from operascope.analysis.summary_text import analyze_line

    print(analyze_line(summary))
    return EXIT_OK


def cmd_gitt(args: argparse.Namespace) -> int:
    from operascope.analysis.gitt.report import gitt_from_file

    data = _existing_input(args.data)
    kwargs = dict(bet_m2_g=args.bet_m2_g, molar_mass_g_mol=args.molar_mass_g_mol,
                  molar_volume_cm3_mol=args.molar_volume_cm3_mol, progress=_progress_lines("gitt"))
    if args.active_mass_mg is not None:
        kwargs["active_mass_mg"] = args.active_mass_mg
    if args.x_start is not None:
        kwargs["x_start"] = args.x_start
    with _new_output_folder(Path(args.out) if args.out else data.with_name(data.stem + "_gitt"), "--out") as out:
        rows = gitt_from_file(data, out, **kwargs)
    print(f"GITT: {len(rows)} steps analysed; table and plot in {out}")
    return EXIT_OK


def cmd_model(args: argparse.Namespace) -> int:
    from operascope.analysis.particle_model.cli import run_model

    with _new_output_folder(Path(args.out), "--out"):
        result = run_model(args.c_rate, args.eta, args.gamma, args.diameter_um, args.out, sweep=args.sweep,
                           progress=_progress_lines("model"), rsl_angle_deg=args.rsl_angle)
    out = Path(result.get("out_dir", args.out))
    print(f"model written to {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
    return EXIT_OK


COMMANDS = {"devices": cmd_devices, "acquire": cmd_acquire, "analyze": cmd_analyze, "gitt": cmd_gitt,
            "model": cmd_model, "gui": cmd_gui, "selftest": selftest.run, **runfile_cli.COMMANDS}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 failed, 2 usage/config error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        _say(str(exc))
        return EXIT_USAGE
    if args.command is None:
        _say(f"give a command: {', '.join(COMMANDS)} (operascope COMMAND --help for its flags)")
        return EXIT_USAGE
    configure_console(level_from_flags(args.log_level, args.verbose, args.quiet))
    from operascope.config.loader import ConfigError

    try:
        from operascope.analysis.errors import RunFileError
    except ImportError:  # pragma: no cover
        RunFileError = ValueError  # type: ignore[misc,assignment]
    try:
        from operascope.service.cli_commands import COMMANDS as SERVICE_COMMANDS

        return {**COMMANDS, **SERVICE_COMMANDS}[args.command](args)
    except (ConfigError, RunFileError, ValueError, FileNotFoundError) as exc:
        _say(str(exc))
        return EXIT_USAGE
    except ImportError as exc:
        _say(f"{args.command} is not available: {exc}")
        return EXIT_FAILED
    except (KeyboardInterrupt, InterruptedError) as exc:
        _say(str(exc) or "interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - devices fail in many ways; one line, no traceback
        log.debug("%s failed", args.command, exc_info=exc)
        _say(f"{type(exc).__name__}: {exc}")
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
