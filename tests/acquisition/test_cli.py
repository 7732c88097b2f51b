"""The operascope command line: one-line errors with exit status 2, devices table, acquire end to end,
clean stops on SIGINT / SIGTERM / end of protocol."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from operascope.acquisition.cli import main
from operascope.analysis import runfile_layout as L
from operascope.analysis.runfile import open_run
from operascope.config.loader import preset_path

REPO = Path(__file__).resolve().parents[2]


def run_main(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    """Status 2 and one error line; a warning line before it (e.g. --speed capped on a busy machine) is allowed."""
    lines = [line for line in err.strip().splitlines() if not line.startswith("operascope: warning: ")]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("operascope: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("flags, fragments", [
    (["--bin", "0"], ["--bin", ">= 1"]),
    (["--duration", "-5"], ["--duration", "> 0"]),
    (["--duration", "abc"], ["--duration", "number"]),
    (["--v-min", "4.3", "--v-max", "3.0"], ["v_min", "below v_max"]),
    (["--fps", "500"], ["frame_rate_hz", "500"]),
    (["--exposure", "150", "--fps", "10", "--duration", "5"], ["exposure 150 ms", "frame period"]),
    (["--protocol", "boil"], ["--protocol", "boil"]),
    ([], ["--duration", "--protocol"]),
    (["--protocol", "ocv"], ["ocv needs --duration"]),
    (["--duration", "5", "--bogus"], ["unrecognized arguments", "--bogus"]),
])
def test_bad_acquire_flags_give_one_line_and_status_2_before_any_device_moves(tmp_path, capsys, flags, fragments):
    out = tmp_path / "run.h5"
    code, _, err = run_main(capsys, "acquire", "--out", str(out), *flags)
    assert_one_line_error(code, err, *fragments)
    assert not out.exists()


def test_a_frame_rate_the_camera_cannot_do_is_refused_with_status_2(tmp_path, capsys):
    text = preset_path("simulated").read_text().replace("roi = [0, 0, 320, 288]", "")
    config = tmp_path / "full_frame.toml"
    config.write_text(text)
    out = tmp_path / "run.h5"
    code, _, err = run_main(capsys, "acquire", "--config", str(config), "--out", str(out), "--fps", "150",
                            "--duration", "5")
    assert_one_line_error(code, err, "frame rate 150")
    assert not out.exists()


@pytest.mark.parametrize("edit, fragments", [
    (lambda t: t + "\n[acquisition.extra]\nfoo = 1\n", ["unknown key"]),
    (lambda t: t.replace("bin_size = 20", 'bin_size = "twenty"'), ["bin_size"]),
    (lambda t: t.replace("exposure_ms = 2.5", "exposure_ms = -1.0"), ["exposure_ms", "-1.0"]),
    (None, ["not found"]),
])
def test_bad_config_gives_one_line_and_status_2(tmp_path, capsys, edit, fragments):
    config = tmp_path / "rig.toml"
    if edit is not None:
        config.write_text(edit(preset_path("simulated").read_text()))
    for command in (["devices"], ["acquire", "--out", str(tmp_path / "r.h5"), "--duration", "5"]):
        code, _, err = run_main(capsys, *command, "--config", str(config))
        assert_one_line_error(code, err, str(config), *fragments)


def test_devices_lists_every_role_as_answering(capsys):
    code, out, _ = run_main(capsys, "devices")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert set(rows) == {"camera", "stage", "led", "focus_laser", "focus_sensor", "potentiostat"}
    assert all(line.rstrip().endswith("answering") and "simulated" in line for line in rows.values())


def test_missing_input_files_are_user_errors(tmp_path, capsys):
    for command in (["analyze", str(tmp_path / "none.h5")], ["gitt", str(tmp_path / "none.csv")]):
        code, _, err = run_main(capsys, *command)
        assert_one_line_error(code, err, "none.")


def test_acquire_charge_stops_at_the_cut_off_and_writes_a_complete_file(tmp_path, capsys):
    out = tmp_path / "sub" / "charge.h5"
    code, stdout, err = run_main(capsys, "acquire", "--out", str(out), "--protocol", "charge", "--c-rate", "10",
                                 "--v-max", "3.8", "--speed", "20", "--fps", "4", "--bin", "4", "--seed", "2")
    assert code == 0, err
    assert "protocol ended (cut-off)" in stdout
    with open_run(out) as run:
        echem = run.require_echem()
        assert echem.voltage_v.size > 20
        assert echem.voltage_v[-1] >= 3.8 and echem.voltage_v[:-1].max() < 3.8
        assert run.n_frames >= 1 and run.binned.n_frames_in_bin.sum() > 0
        assert run.echem.techniques.kind == ("charge",)
        assert run.truth is not None and run.truth.time_s.size >= 2
        assert run.truth.particle_theta.shape[1] == 3
    code, stdout, err = run_main(capsys, "analyze", str(out))
    assert code == 0, err
    report = out.with_name("charge_report")
    assert "summary.json" in stdout and (report / "summary.json").is_file()


def _wait_for_bins(path: Path, n: int, proc: subprocess.Popen, timeout_s: float = 60.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        if path.exists():
            try:
                with h5py.File(path, "r", swmr=True, libver="latest", locking=False) as f:
                    count = f[L.BINNED]["frames"].shape[0]
                if count >= n:
                    return count
            except (OSError, KeyError):
                pass
        time.sleep(0.1)
    raise AssertionError(f"no {n} bins in {path} after {timeout_s} s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_acquire_cleanly_and_the_file_keeps_every_completed_bin(tmp_path, sig):
    out = tmp_path / "signalled.h5"
    proc = subprocess.Popen([sys.executable, "-m", "operascope.acquisition.cli", "acquire", "--out", str(out),
                             "--duration", "100000", "--speed", "10", "--fps", "5", "--bin", "5",
                             "--protocol", "ocv"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        seen = _wait_for_bins(out, 3, proc)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert f"stopped by {sig.name}" in stdout
    with open_run(out) as run:
        assert run.n_frames >= seen
        n_in = run.binned.n_frames_in_bin
        assert (n_in[:-1] == 5).all() and 1 <= n_in[-1] <= 5
    with h5py.File(out, "r") as f:
        assert f[L.ENTRY]["stop_reason"][()].decode() == f"stopped by {sig.name}"
        assert f[L.ENTRY]["end_time"][()].decode() != ""


def test_model_runs_and_refuses_impossible_parameters(tmp_path, capsys):
    code, out, err = run_main(capsys, "model", "--c-rate", "1", "--diameter-um", "2", "--out", str(tmp_path / "m"))
    assert code == 0, err
    assert "summary.json" in out and (tmp_path / "m" / "summary.json").is_file()
    code, _, err = run_main(capsys, "model", "--eta", "2", "--out", str(tmp_path / "m2"))
    assert_one_line_error(code, err, "eta", "2")


def test_devices_on_the_emulated_rig_uses_the_real_drivers(capsys):
    code, out, err = run_main(capsys, "devices", "--config", str(preset_path("emulated")))
    assert code == 0, err
    drivers = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:]}
    assert drivers == {"camera": "flir", "stage": "attocube", "led": "thorlabs", "focus_laser": "serial_laser",
                       "focus_sensor": "flir_line", "potentiostat": "biologic"}
    assert out.count("answering") == 6
