"""CLI flag errors name the flag; --version; fast --help; no output folder left after a failure."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from operascope.acquisition.cli import main


def _one_line(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("operascope: error: "), err
    return err[0]


@pytest.mark.parametrize("flags, named, not_named", [
    (["--v-max", "9"], "--v-max", "simulated.toml"),
    (["--cycles", "0"], "--cycles", "--bin"),
    (["--duration", "1e308"], "--duration", None),
])
def test_bad_flag_values_name_the_flag(capsys, tmp_path, flags, named, not_named):
    argv = ["acquire", "--out", str(tmp_path / "r.h5")] + flags
    if "--duration" not in flags:
        argv += ["--duration", "1"]
    line = _one_line(capsys, argv)
    assert named in line
    if not_named:
        assert not_named not in line


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("operascope ")


def test_help_imports_neither_numpy_nor_pydantic():
    code = ("import sys\nfrom operascope.acquisition.cli import main\n"
            "for argv in (['--help'], ['acquire', '--help'], ['analyze', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('numpy', 'pydantic', 'h5py') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_model_out_in_a_read_only_folder_is_one_line(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        line = _one_line(capsys, ["model", "--out", str(locked / "out")])
        assert "--out" in line
    finally:
        locked.chmod(0o700)


def test_ctrl_c_during_analyze_leaves_no_output_folder(tmp_path, monkeypatch):
    import operascope.analysis.report as report

    run = tmp_path / "run.h5"
    run.write_bytes(b"not used")

    def interrupted(run_path, out, progress=None):
        (out / "partial.png").write_bytes(b"x")
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "analyze_run", interrupted)
    assert main(["analyze", str(run), "--out", str(tmp_path / "report")]) == 130
    assert not (tmp_path / "report").exists()
