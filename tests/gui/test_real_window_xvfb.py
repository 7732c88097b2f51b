"""Issue 20 item 9: the REAL window on a real X server (Xvfb + Qt's xcb platform, not the offscreen one).

real_window_driver.py (run in its own process: this test process's Qt is offscreen) clicks calibrate ->
lock -> start protocol -> record -> stop on the shown window and grabs screenshots from the X server; this
test checks them: the differential view's neutral grey outside the mask, the live COM curves growing, a valid
run file, zero camera drops and zero frames not binned. Skips, with the reason, where Xvfb or the xcb
libraries are missing (``.ci/run`` installs them when it runs as root with apt-get).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from operascope.analysis import runfile_layout as layout
from operascope.gui.platform_check import XCB_PACKAGES, missing_xcb_libraries

DRIVER = Path(__file__).with_name("real_window_driver.py")
APT_HINT = "apt-get install -y xvfb " + " ".join(XCB_PACKAGES)


@pytest.fixture
def xvfb_display():
    """A fresh Xvfb server (display number chosen by Xvfb itself); yields ':N'."""
    if shutil.which("Xvfb") is None:
        pytest.skip(f"Xvfb is not installed ({APT_HINT})")
    missing = missing_xcb_libraries()
    if missing:
        pytest.skip(f"Qt's xcb platform plugin lacks {', '.join(missing)} ({APT_HINT})")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                              pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number.isdigit():
            pytest.skip(f"Xvfb did not start (exit {server.poll()})")
        yield f":{number}"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def test_real_window_click_through_calibrate_lock_protocol_record_stop(xvfb_display, tmp_path):
    env = dict(os.environ, DISPLAY=xvfb_display, QT_QPA_PLATFORM="xcb", OPERASCOPE_LOG_DIR=str(tmp_path / "logs"))
    done = subprocess.run([sys.executable, str(DRIVER), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["platform"] == "xcb"
    for name in ("window_early.png", "window_later.png"):
        assert (tmp_path / name).stat().st_size > 50_000          # a real picture of the whole window
    # the differential view: a good part of it is the neutral grey of "outside the mask" (not the white of 0)
    outside = result["mask_outside_fraction"]
    assert outside is not None and 0.3 < outside < 0.98
    for grey_px in result["diff_grey_px"]:
        assert grey_px > 0.15 * result["diff_view_px"]
    # the live COM curves grow: more points, drawn, and the plot changed between the two screenshots
    early, later = result["com_points"]
    assert later >= early + 4
    assert result["com_curve_px"][1] > 50
    assert result["com_plot_changed_px"] > 50
    assert any("aged" in label for label in result["particles"]) and any("fresh" in p for p in result["particles"])
    # honest counters and a valid run file
    assert result["camera_dropped"] == 0 and result["frames_not_binned"] == 0
    with h5py.File(result["run_file"], "r") as f:
        assert f[layout.BINNED][layout.FRAMES].shape[0] == result["bins_written"] >= 4
