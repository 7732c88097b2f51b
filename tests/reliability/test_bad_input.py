"""Reliability item 8: bad input gets one clear error, never a traceback.

* operascope.config.loader fuzzed with random TOML values in every section: only ConfigError escapes,
  with one line naming the file and the key;
* operascope.acquisition.cli.main fuzzed with random argv lists: exit 0/1/2 only, nothing on stderr but
  ``operascope: error:`` lines, one line for exit 2 (the acquisition itself is replaced by a
  recorder, so only parsing and validation run);
* truncated, foreign, empty and non-HDF5 files given to ``operascope analyze`` / ``gitt`` in a
  real subprocess: one line on stderr, exit status 2.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import types
from pathlib import Path
from unittest import mock

import h5py
import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from operascope.acquisition import cli
from operascope.analysis.synthetic_run import make_synthetic_run
from operascope.config.loader import ConfigError, load_config, preset_path
from operascope.config.schema import RigConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# --------------------------------------------------------------------------- config loader


def _base_config() -> dict:
    return tomllib.loads(preset_path("simulated").read_text(encoding="utf-8"))


def _key_paths() -> list[tuple[str, ...]]:
    """Every (section, key) of the schema plus each device's driver table keys."""
    paths: list[tuple[str, ...]] = []
    for section, field in RigConfig.model_fields.items():
        model = field.annotation
        for key in getattr(model, "model_fields", {}):
            if section == "devices":
                paths.append((section, key, "driver"))
                paths.append((section, key, "port"))
                paths.append((section, key, "timeout_s"))
            else:
                paths.append((section, key))
    paths += [("simulation", "particles", "0", "x_um"), ("simulation", "particles", "1", "gamma"),
              ("simulation", "faults", "0", "kind"), ("simulation", "faults", "0", "at_s")]
    return paths


KEY_PATHS = _key_paths()

toml_scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.booleans(),
    st.sampled_from([0, -1, 1, 1e308, -1e-308, "simulated", "attocube", "flir", "", "Mono16", "nan"]),
)
toml_values = st.recursive(
    toml_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=3)),
    max_leaves=6,
)


def _set(data: dict, path: tuple[str, ...], value) -> None:
    node = data
    for part in path[:-1]:
        if isinstance(node, list):
            index = int(part)
            while len(node) <= index:
                node.append({"device": "camera", "kind": "timeout", "at_s": 1.0} if path[1] == "faults" else {"x_um": 1.0, "y_um": 1.0})
            node = node[index]
        else:
            node = node.setdefault(part, [] if part in ("particles", "faults") else {})
    node[path[-1]] = value


edits = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.sampled_from(KEY_PATHS), toml_values),
        st.tuples(st.just("unknown"), st.sampled_from(["acquisition", "focus_lock", "simulation", "devices", "sample", ""]),
                  st.text(min_size=1, max_size=8)),
        st.tuples(st.just("drop"), st.sampled_from([p for p in KEY_PATHS if len(p) == 2]), st.none()),
    ),
    min_size=1,
    max_size=4,
)


@FUZZ
@given(edits=edits)
def test_fuzzed_config_files_give_only_one_line_config_errors(tmp_path, edits):
    data = _base_config()
    touched = []
    for kind, where, value in edits:
        if kind == "set":
            _set(data, where, value)
            touched.append(where[-1])
        elif kind == "unknown":
            (data.setdefault(where, {}) if where else data)[f"zz_{value}"] = 1
            touched.append(f"zz_{value}")
        else:
            data.get(where[0], {}).pop(where[1], None)
    try:
        text = tomli_w.dumps(data)
    except (TypeError, ValueError):
        event("not TOML")
        return  # not representable as TOML (e.g. mixed-type arrays in old TOML); nothing to load
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8")
    try:
        config = load_config(path)
    except ConfigError as exc:
        event("config refused")
        message = str(exc)
        assert len(message.splitlines()) == 1 and len(message) < len(str(path)) + 400, message
        assert message.startswith(str(path) + ": "), message
        shown_keys = ["".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in key)
                      for key in touched]  # unprintable characters are shown escaped
        assert any(key in message for key in shown_keys) or "driver" in message or "missing key" in message, message
        return
    event("config accepted")
    # accepted: every number in it is finite and the cut-offs are ordered
    assert isinstance(config, RigConfig)
    assert config.electrochemistry.v_min < config.electrochemistry.v_max
    for section in (config.acquisition, config.focus_lock, config.electrochemistry, config.simulation):
        for name, value in section.model_dump().items():
            if isinstance(value, float):
                assert np.isfinite(value), f"{name} = {value} accepted"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[acquisition]\nexposure_ms = nan\n", "acquisition.exposure_ms"),
        ("[acquisition]\nmask_threshold = nan\n", "acquisition.mask_threshold"),
        ("[simulation]\ndrift_xy_nm_s = [inf, 0.0]\n", "simulation.drift_xy_nm_s"),
        ("[simulation]\nstage_limits_nm = [-inf, inf]\n", "simulation.stage_limits_nm"),
        ("[focus_lock]\nsaturation_counts = inf\n", "focus_lock.saturation_counts"),
        ("[[simulation.faults]]\ndevice = 'camera'\nkind = 'timeout'\nat_s = inf\n", "simulation.faults"),
        ("[acquisition\n", "not valid TOML"),
        ("\udcff", "not valid"),
    ],
)
def test_non_finite_numbers_and_broken_files_are_refused(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value) and fragment in str(info.value)


def test_unreadable_config_paths_are_config_errors(tmp_path):
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="folder.toml"):
        load_config(folder)
    locked = tmp_path / "locked.toml"
    locked.write_text("[acquisition]\n")
    denied = PermissionError(13, "Permission denied")
    with mock.patch.object(Path, "read_text", side_effect=denied):  # chmod is no barrier to root
        with pytest.raises(ConfigError, match="locked.toml: config file cannot be read .Permission denied"):
            load_config(locked)


# --------------------------------------------------------------------------- CLI argv fuzz


class RecordingMicroscope:
    """Stands in for operascope.acquisition.microscope.Microscope: records what would have been recorded."""

    started: list = []

    def __init__(self, config) -> None:
        self.config = config

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def request_stop(self, reason: str) -> None:
        pass

    def record(self, out, duration_s=None, protocol=None, progress=None, focus_lock=False):
        RecordingMicroscope.started.append((self.config, duration_s, protocol))
        return types.SimpleNamespace(path=out, bins=0, partial_bins=0, frames_in=0, frames_dropped=0, raw_frames=0,
                                     duration_s=0.0, stop_reason="duration", errors=[])


FLAGS = ["--config", "--out", "--duration", "--bin", "--exposure", "--fps", "--protocol", "--c-rate", "--v-min",
         "--v-max", "--cycles", "--focus-lock", "--no-focus-lock", "--save-raw", "--speed", "--seed", "--active-mass-mg",
         "--bet-m2-g", "--eta", "--gamma", "--diameter-um", "--sweep", "--screenshot", "--quit-after", "--bogus", "-x",
         "--", "-h"]
VALUES = ["1", "0", "-1", "2.5", "1e9", "1e400", "nan", "inf", "-inf", "abc", "", " ", "3.0", "4.3", "4.5", "0.001",
          "charge", "ocv", "gitt", "cycle", "discharge", "fly", "10", "99999999999999999999", "١٢", "0x10", "1_0"]


ACQUIRE_VALUES = {
    "--duration": ["5", "0.5", "0", "-1", "nan", "inf", "abc", "1e400"],
    "--bin": ["1", "20", "0", "-2", "2.5", "x"],
    "--exposure": ["2.5", "50", "150", "0.001", "0", "nan"],
    "--fps": ["10", "5", "200", "500", "0", "-inf"],
    "--protocol": ["ocv", "charge", "discharge", "cycle", "gitt", "fly"],
    "--c-rate": ["1", "0.1", "100", "1000", "0", "nan"],
    "--v-min": ["3.0", "4.5", "-1", "7", "nan"],
    "--v-max": ["4.3", "3.0", "6.5", "inf"],
    "--cycles": ["1", "3", "0", "x"],
    "--speed": ["10", "1e9", "0", "-5"],
    "--seed": ["0", "7", "-3", "1.5", "99999999999999999999"],
    "--config": ["{good_toml}", "{bad_toml}", "{empty}", "{folder}", "/no/such.toml"],
}


@st.composite
def argvs(draw, files: dict[str, str]) -> list[str]:
    """Either words at random, or an acquire line built from plausible and implausible flag values."""
    if draw(st.booleans()):
        flags = draw(st.lists(st.sampled_from(sorted(ACQUIRE_VALUES)), unique=True, max_size=6))
        argv = ["acquire", "--out", files["out"]]
        for flag in flags:
            values = ACQUIRE_VALUES[flag]
            value = draw(st.one_of(st.sampled_from(values[:2]), st.sampled_from(values[:2]), st.sampled_from(values)))
            argv += [flag, value.format(**files)]
        argv += draw(st.lists(st.sampled_from(["--focus-lock", "--no-focus-lock", "--save-raw"]), max_size=2))
        return argv
    command = draw(st.sampled_from(["acquire", "analyze", "gitt", "model", "devices", "gui", "nonsense", ""]))
    pool = VALUES + list(files.values())
    words = draw(st.lists(st.one_of(st.sampled_from(FLAGS), st.sampled_from(pool), st.text(max_size=6)), max_size=8))
    return ([command] if command else []) + words


@pytest.fixture
def input_files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("cli_inputs")
    bad_toml = folder / "bad.toml"
    bad_toml.write_text("[acquisition]\nexposure_ms = -3\n")
    good_toml = folder / "good.toml"
    good_toml.write_text(preset_path("simulated").read_text())
    empty = folder / "empty.h5"
    empty.write_bytes(b"")
    text = folder / "text.h5"
    text.write_text("not hdf5\n")
    return {"bad_toml": str(bad_toml), "good_toml": str(good_toml), "empty": str(empty), "text": str(text),
            "folder": str(folder), "out": str(folder / "runs" / "run.h5")}


def _run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as exc:  # argparse's -h/--help
            status = exc.code if isinstance(exc.code, int) else 2
    return status, out.getvalue(), err.getvalue()


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_fuzzed_command_lines_exit_0_1_or_2_with_one_line_errors(input_files, data):
    argv = data.draw(argvs(input_files))
    parsed_only = lambda args: 0  # noqa: E731 - these commands would open devices, Qt or run the model
    RecordingMicroscope.started.clear()
    with mock.patch("operascope.acquisition.microscope.Microscope", RecordingMicroscope), \
            mock.patch.dict(cli.COMMANDS, {"devices": parsed_only, "gui": parsed_only, "model": parsed_only}):
        status, stdout, stderr = _run_main(argv)
    assert status in (0, 1, 2), (argv, status, stderr)
    assert "Traceback" not in stderr, (argv, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    if status == 2 and "-h" not in argv:
        assert len(lines) == 1 and lines[0].startswith("operascope: error: "), (argv, stderr)
    for config, duration_s, protocol in RecordingMicroscope.started:  # accepted acquisitions are sane
        assert duration_s is not None or protocol is not None
        assert duration_s is None or (np.isfinite(duration_s) and duration_s > 0)
        assert config.electrochemistry.v_min < config.electrochemistry.v_max
        assert config.acquisition.exposure_ms <= 1000.0 / config.acquisition.frame_rate_hz
    if RecordingMicroscope.started:
        assert status == 0
    event(f"exit {status}" + (" (acquisition started)" if RecordingMicroscope.started else ""))


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["acquire", "--out", "{tmp}/r.h5", "--duration", "nan"], "--duration"),
        (["acquire", "--out", "{tmp}/r.h5", "--duration", "1", "--v-min", "4.5", "--v-max", "3.0"], "v_min"),
        (["acquire", "--out", "{tmp}/r.h5", "--duration", "1", "--seed", "-3"], "seed"),
        (["acquire", "--out", "{tmp}/r.h5", "--duration", "1", "--config", "{tmp}/none.toml"], "not found"),
        (["acquire", "--out", "{tmp}", "--duration", "1"], "is a folder"),
        (["acquire", "--out", "{tmp}/a_file/run.h5", "--duration", "1"], "is a file, not a folder"),
        (["acquire", "--out", "{tmp}/a_file/deeper/run.h5", "--duration", "1"], "cannot be created"),
        (["analyze", "{tmp}/a_file", "--out", "{tmp}/a_file"], "--out"),
        (["gitt", "{tmp}/a_file", "--out", "{tmp}/a_file/x"], "--out"),
        (["analyze"], "run"),
        (["gitt", "{tmp}/none.h5"], "does not exist"),
    ],
)
def test_bad_command_lines_name_the_problem(tmp_path, argv, fragment):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    (tmp_path / "a_file").write_text("not a folder")
    RecordingMicroscope.started.clear()
    with mock.patch("operascope.acquisition.microscope.Microscope", RecordingMicroscope):
        status, _, stderr = _run_main(argv)
    assert status == 2 and stderr.count("\n") == 1 and fragment in stderr, stderr
    assert not RecordingMicroscope.started


# --------------------------------------------------------------------------- bad files to analyze / gitt


@pytest.fixture(scope="module")
def bad_run_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad_runs")
    good = folder / "good.h5"
    make_synthetic_run(good, n_frames=3, shape=(32, 48), fiducial_xy_px=(40.0, 20.0))
    files: dict[str, Path] = {}
    raw = good.read_bytes()
    files["truncated"] = folder / "truncated.h5"
    files["truncated"].write_bytes(raw[: len(raw) // 2])
    files["header_only"] = folder / "header_only.h5"
    files["header_only"].write_bytes(raw[:600])
    files["empty"] = folder / "empty.h5"
    files["empty"].write_bytes(b"")
    files["text"] = folder / "notes.h5"
    files["text"].write_text("time,voltage\n1,2\n")
    files["random_bytes"] = folder / "random.h5"
    files["random_bytes"].write_bytes(np.random.default_rng(0).bytes(4096))
    files["no_entry"] = folder / "no_entry.h5"
    with h5py.File(files["no_entry"], "w") as f:
        f["data"] = np.arange(10.0)
    files["other_nexus"] = folder / "other_nexus.nxs"
    with h5py.File(files["other_nexus"], "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data.attrs["signal"] = "counts"
        data["counts"] = np.arange(100.0).reshape(10, 10)
        entry["title"] = "a diffraction scan from another program"
    files["wrong_shapes"] = folder / "wrong_shapes.h5"
    with h5py.File(files["wrong_shapes"], "w") as f:
        f["entry/binned/frames"] = np.arange(3.0)
        f["entry/binned/time"] = np.array([b"a", b"b"])
        f["entry/electrochemistry/time"] = np.zeros((2, 2))
        f["entry/electrochemistry/voltage"] = np.zeros(3)
        f["entry/electrochemistry/current"] = np.array([b"x"])
    files["flat_frames"] = folder / "flat_frames.h5"  # a real run layout, but the camera saw nothing
    files["flat_frames"].write_bytes(raw)
    with h5py.File(files["flat_frames"], "a") as f:
        frames = f["entry/binned/frames"]
        frames[...] = np.zeros(frames.shape, frames.dtype)
    files["csv_empty"] = folder / "empty.csv"
    files["csv_empty"].write_bytes(b"")
    files["csv_binary"] = folder / "binary.csv"
    files["csv_binary"].write_bytes(np.random.default_rng(1).bytes(2048))
    files["csv_columns"] = folder / "columns.csv"
    files["csv_columns"].write_text("a;b;c\n1;2;3\n")
    files["csv_ragged"] = folder / "ragged.csv"
    files["csv_ragged"].write_text("time_s,voltage_v,current_a\n" + "1,3.5,0\n2,3.6\n3,3.7,0,9,9\n" * 20)
    files["folder"] = folder / "a_folder.h5"
    files["folder"].mkdir()
    return files


BAD_KINDS = ["truncated", "header_only", "empty", "text", "random_bytes", "no_entry", "other_nexus", "wrong_shapes",
             "flat_frames", "csv_empty", "csv_binary", "csv_columns", "csv_ragged", "folder"]


@pytest.mark.parametrize("command", ["analyze", "gitt"])
def test_bad_files_in_a_real_process_give_one_line_and_status_2(tmp_path, bad_run_files, command):
    """One interpreter per command (start-up is the slow part): every bad file is tried in it."""
    script = (
        "import sys\nfrom operascope.acquisition.cli import main\n"
        "for path in sys.argv[2:]:\n"
        "    code = main([sys.argv[1], path, '--out', path + '_out'])\n"
        "    print(code, flush=True); print('@@', file=sys.stderr, flush=True)\n"
    )
    paths = [str(bad_run_files[kind]) for kind in BAD_KINDS]
    done = subprocess.run([sys.executable, "-c", script, command, *paths], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr
    codes = done.stdout.split()
    errors = done.stderr.split("@@\n")
    assert len(codes) == len(paths), done.stdout + done.stderr
    for kind, path, code, error in zip(BAD_KINDS, paths, codes, errors):
        # progress lines ("analyze: fiducial fits 1/3") may come first; then exactly one error line
        lines = [line for line in error.splitlines() if line.strip() and not line.startswith(f"{command}: ")]
        assert code == "2", (kind, code, error)
        assert len(lines) == 1 and lines[0].startswith("operascope: error: "), (kind, error)
        assert Path(path).name in lines[0], (kind, lines[0])  # the message names the file


def test_the_installed_entry_point_refuses_an_empty_file(tmp_path):
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    done = subprocess.run([sys.executable, "-m", "operascope.acquisition.cli", "analyze", str(empty)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "empty" in done.stderr and "Traceback" not in done.stderr
