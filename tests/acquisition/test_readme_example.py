"""The README's API example runs from a user's folder that holds its own config.py and analysis.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_example_runs_beside_a_users_config_py_and_analysis_py(tmp_path):
    shutil.copy(REPO / "tests" / "fixtures" / "readme_example.py", tmp_path / "example.py")
    (tmp_path / "config.py").write_text("raise SystemExit('the user config.py was imported')\n", encoding="utf-8")
    (tmp_path / "analysis.py").write_text("raise SystemExit('the user analysis.py was imported')\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "duration reached" in lines[-2] and "(288, 320)" in lines[-1]
    assert (tmp_path / "example_run.h5").is_file()
