"""A person's session in the real window, driven by real X mouse clicks (run by test_real_window_xvfb.py).

Runs in its own process on an X server (``DISPLAY``, ``QT_QPA_PLATFORM=xcb``): builds the window on the
simulated rig, clicks Calibrate -> Lock -> Start protocol -> Record -> Stop with ``xdotool`` (pointer
events through the X server, as a mouse makes them), grabs the X screen twice while the charge runs and
prints one JSON line with what it saw. Usage: ``python -m tests.gui.xvfb_session OUT_DIR``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from PyQt5 import QtCore, QtWidgets


def _wait(app: QtWidgets.QApplication, condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:g} s for {what}")
        app.processEvents(QtCore.QEventLoop.AllEvents, 50)
        time.sleep(0.01)


def _click(app: QtWidgets.QApplication, widget: QtWidgets.QWidget, clicks: list[str]) -> None:
    """Move the X pointer to the widget's centre and press button 1 there."""
    widget.window().raise_()
    _wait(app, lambda: widget.isVisible() and widget.isEnabled(), 20.0, f"{widget.text()!r} to be enabled")
    centre = widget.mapToGlobal(widget.rect().center())
    subprocess.run(["xdotool", "mousemove", "--sync", str(centre.x()), str(centre.y()), "click", "1"],
                   check=True, timeout=10)
    clicks.append(widget.text())
    app.processEvents(QtCore.QEventLoop.AllEvents, 100)


def _grab(app: QtWidgets.QApplication, path: Path):
    """The whole X screen (the real framebuffer, not a widget render) saved as PNG; its QImage."""
    app.processEvents(QtCore.QEventLoop.AllEvents, 100)
    pixmap = app.primaryScreen().grabWindow(0)
    pixmap.save(str(path))
    return pixmap.toImage()


def _count_rgb(image, rect: QtCore.QRect, rgb: tuple[int, int, int]) -> int:
    count = 0
    for y in range(rect.top(), rect.bottom(), 2):
        for x in range(rect.left(), rect.right(), 2):
            c = image.pixelColor(x, y)
            if (c.red(), c.green(), c.blue()) == rgb:
                count += 1
    return count


def _screen_rect(widget: QtWidgets.QWidget) -> QtCore.QRect:
    return QtCore.QRect(widget.mapToGlobal(QtCore.QPoint(0, 0)), widget.size())


def main(out_dir: str) -> int:
    from operascope.config.loader import load_config
    from operascope.gui.app import build_window, make_settings
    from operascope.gui.differential_view import NEUTRAL_GREY_RGBA

    out = Path(out_dir)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["operascope-xvfb"])
    config = load_config(overrides={
        "acquisition": {"bin_size": 5, "frame_rate_hz": 5.0},
        "simulation": {"speed": 20.0, "seed": 3, "particle_model": "uniform"},
        "focus_lock": {"calibration_range_nm": 600.0, "calibration_step_nm": 100.0},
    })
    window = build_window(config, make_settings(out / "gui.ini"))
    window.resize(1800, 1000)
    window.move(0, 0)
    window.show()
    seen: dict = {"platform": app.platformName(), "clicks": []}
    clicks = seen["clicks"]
    try:
        _wait(app, lambda: window.live_panel.frames_shown >= 2, 60.0, "the first camera frames")
        focus = window.focus_panel
        _click(app, focus.calibrate_button, clicks)
        _wait(app, lambda: window.last_snapshot.focus_calibration is not None
              and window.bridge.commands.pending == 0, 90.0, "the focus calibration")
        _click(app, focus.lock_button, clicks)
        _wait(app, lambda: focus.state == "locked", 60.0, "the focus lock")
        seen["focus_state"] = focus.state
        echem = window.echem_panel
        echem.protocol.setCurrentText("charge")
        echem.params["c_rate"].setValue(2.0)
        _click(app, echem.start_button, clicks)
        _wait(app, lambda: window.last_snapshot.echem_running, 30.0, "the charge to start")
        window.recording_panel.path_edit.setText(str(out / "xvfb_run.h5"))
        _click(app, window.recording_panel.start_button, clicks)
        _wait(app, lambda: window.last_snapshot.recording, 30.0, "the recording to start")
        science = window.science_panel
        _wait(app, lambda: science.n_points >= 3 and science.regions, 120.0, "the first science points")
        first = _grab(app, out / "xvfb_early.png")
        seen["science_points_early"] = science.n_points
        points_early = science.n_points
        _wait(app, lambda: science.n_points >= points_early + 6, 120.0, "more science points")
        second = _grab(app, out / "xvfb_late.png")
        seen["science_points_late"] = science.n_points
        seen["particles"] = len(science.regions)
        seen["com_points_late"] = [sum(1 for v in curve if v == v) for curve in science.com_nm]
        diff_rect = _screen_rect(window.differential_panel)
        seen["grey_pixels_early"] = _count_rgb(first, diff_rect, NEUTRAL_GREY_RGBA[:3])
        seen["grey_pixels_late"] = _count_rgb(second, diff_rect, NEUTRAL_GREY_RGBA[:3])
        seen["diff_rect"] = [diff_rect.x(), diff_rect.y(), diff_rect.width(), diff_rect.height()]
        _click(app, window.recording_panel.stop_button, clicks)
        _wait(app, lambda: not window.last_snapshot.recording, 60.0, "the recording to stop")
        _click(app, echem.stop_button, clicks)
        _wait(app, lambda: not window.last_snapshot.echem_running, 30.0, "the charge to stop")
        seen["bins_written"] = window.last_snapshot.bins_written
        seen["frames_dropped"] = window.last_snapshot.frames_dropped
    except Exception as exc:  # noqa: BLE001 - reported to the test as JSON
        seen["error"] = f"{type(exc).__name__}: {exc}"
        _grab(app, out / "xvfb_failure.png")
    finally:
        window.close()
        app.processEvents()
    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
