"""The real window on a real X server (Xvfb), clicked through with real pointer events (xdotool).

Skips with the reason when Xvfb or xdotool is missing (``.ci/run`` installs them where it can:
``apt-get install xvfb xdotool`` plus Qt's xcb libraries, see the README).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def x_display():
    """A fresh Xvfb server on a free display number; its DISPLAY string."""
    missing = [tool for tool in ("Xvfb", "xdotool") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} (Debian: apt-get install xvfb xdotool)")
    for number in range(90, 110):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            break
    else:
        pytest.skip("no free X display number in :90-:109")
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10.0
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.skip(f"Xvfb did not start: {server.stderr.read().decode(errors='replace')[-300:]}")
        time.sleep(0.05)
    try:
        yield f":{number}"
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()


def test_calibrate_lock_charge_record_stop_in_the_real_window(x_display, tmp_path):
    env = dict(os.environ, DISPLAY=x_display, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "tests.gui.xvfb_session", str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=420)
    if "could not load the Qt platform plugin" in (done.stderr + done.stdout).lower():
        pytest.skip("Qt's xcb platform plugin cannot load (libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 ...)")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    seen = json.loads(lines[-1])
    assert "error" not in seen, f"{seen['error']} (screenshot: {tmp_path / 'xvfb_failure.png'})\n{done.stderr[-2000:]}"
    assert seen["platform"] == "xcb"                     # a real X window, not the offscreen platform
    assert seen["clicks"] == ["Calibrate", "Lock", "Start protocol", "● Record", "■ Stop", "Stop"]
    assert seen["focus_state"] == "locked"
    # the live COM curve grows during the charge, for every particle of the mask
    assert seen["particles"] >= 2
    assert seen["science_points_late"] >= seen["science_points_early"] + 6
    assert all(n >= 3 for n in seen["com_points_late"]), seen["com_points_late"]
    # the differential view on the X screen: neutral grey outside the particle mask
    assert seen["grey_pixels_early"] > 1000 and seen["grey_pixels_late"] > 1000, seen
    assert seen["bins_written"] >= 9
    for name in ("xvfb_early.png", "xvfb_late.png"):
        assert (tmp_path / name).stat().st_size > 10_000
