"""A simulated rig asked to run faster than this machine renders is capped, with a warning naming the speed."""

from __future__ import annotations

import subprocess
import sys

from operascope.acquisition.speed_cap import achievable_speed, cap_speed
from operascope.config.loader import load_config


def _config(speed: float, fps: float = 10.0):
    return load_config(overrides={"simulation": {"speed": speed, "particle_model": "uniform"},
                                  "acquisition": {"frame_rate_hz": fps}})


def test_an_impossible_speed_is_capped_to_the_achievable_one_and_said():
    config, warning = cap_speed(_config(10_000.0))
    assert warning is not None and "--speed 10000 is more than this machine renders" in warning
    assert config.simulation.speed < 10_000.0
    assert f"--speed {config.simulation.speed:g} instead" in warning


def test_a_possible_speed_is_kept_and_a_slower_frame_rate_allows_more():
    config, warning = cap_speed(_config(0.5))
    assert warning is None and config.simulation.speed == 0.5
    assert achievable_speed(_config(1.0, fps=1.0)) > achievable_speed(_config(1.0, fps=10.0))


def test_acquire_warns_on_stderr_and_runs_at_the_capped_speed(tmp_path):
    out = tmp_path / "capped.h5"
    done = subprocess.run([sys.executable, "-m", "operascope", "acquire", "--out", str(out), "--duration", "20",
                           "--speed", "10000", "--fps", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "operascope: warning: --speed 10000 is more than this machine renders at 2 Hz" in done.stderr
    assert done.stderr.count("--speed 10000 is more than") == 1, done.stderr   # not again as a log line
    assert "--speed 10000 is more than" in out.with_suffix(".log").read_text(encoding="utf-8")
    assert out.exists()
