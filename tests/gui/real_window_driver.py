"""Drive the REAL window on a real X server (run by test_real_window_xvfb.py under Xvfb, QT_QPA_PLATFORM=xcb).

Clicks calibrate -> lock -> start protocol -> record -> stop with mouse clicks on the widgets of the shown
window, grabs screenshots from the X server (QScreen.grabWindow of the root window, cropped to the window)
and writes what it measured as JSON: ``python real_window_driver.py OUT_DIR``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from PyQt5 import QtCore, QtGui, QtWidgets
from PyQt5.QtTest import QTest

from operascope.config.loader import load_config
from operascope.gui.app import build_window, make_settings
from operascope.gui.differential_view import NEUTRAL_GREY_RGBA


def wait_until(app: QtWidgets.QApplication, condition, timeout_s: float, what: str) -> float:
    """Process events until ``condition()``; returns the wall seconds waited (raises on timeout)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{what} not reached within {timeout_s:g} s")
        app.processEvents(QtCore.QEventLoop.AllEvents, 20)
        time.sleep(0.01)
    return time.monotonic() - start


def click(app: QtWidgets.QApplication, button: QtWidgets.QAbstractButton) -> None:
    """A left click at the middle of the shown, enabled button."""
    if not (button.isVisible() and button.isEnabled()):
        raise RuntimeError(f"button {button.text()!r} is not visible and enabled")
    QTest.mouseClick(button, QtCore.Qt.LeftButton, QtCore.Qt.NoModifier, button.rect().center())
    app.processEvents()


def settle(app: QtWidgets.QApplication, wall_s: float = 0.3) -> None:
    """Let the window repaint (the X server shows what was painted)."""
    end = time.monotonic() + wall_s
    while time.monotonic() < end:
        app.processEvents(QtCore.QEventLoop.AllEvents, 20)
        time.sleep(0.01)


def screen_grab(window: QtWidgets.QWidget) -> QtGui.QImage:
    """What the X server shows of ``window`` (the root window grabbed, cropped to the window's frame)."""
    screen = window.screen()
    root = screen.grabWindow(0)
    top_left = window.mapToGlobal(QtCore.QPoint(0, 0))
    return root.copy(QtCore.QRect(top_left, window.size())).toImage()


def region_rgb(image: QtGui.QImage, window: QtWidgets.QWidget, widget: QtWidgets.QWidget) -> np.ndarray:
    """RGB pixels (h, w, 3) of ``widget`` in a grab of ``window``."""
    image = image.convertToFormat(QtGui.QImage.Format_RGB32)
    pointer = image.constBits()
    pointer.setsize(image.byteCount())
    pixels = np.frombuffer(pointer, np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)
    origin = widget.mapTo(window, QtCore.QPoint(0, 0))
    crop = pixels[origin.y(): origin.y() + widget.height(), origin.x(): origin.x() + widget.width(), :3]
    return crop[..., ::-1].copy()     # BGRA in memory -> RGB


def colour_pixels(rgb: np.ndarray, colour: tuple[int, int, int], tolerance: int = 12) -> int:
    return int((np.abs(rgb.astype(int) - np.array(colour)).max(axis=2) <= tolerance).sum())


def main(out_dir: str) -> int:
    out = Path(out_dir)
    app = QtWidgets.QApplication(sys.argv[:1])
    config = load_config(overrides={
        "acquisition": {"bin_size": 5, "frame_rate_hz": 4.0},
        "simulation": {"speed": 6.0, "seed": 2},      # 24 frames per wall s: what the simulator renders
        "focus_lock": {"enabled": True, "calibration_range_nm": 600.0, "calibration_step_nm": 100.0},
    })
    window = build_window(config, make_settings(out / "gui.ini"))
    window.show()
    window.raise_()
    result: dict = {"platform": app.platformName(), "steps": {}}
    steps = result["steps"]
    steps["first_frames_s"] = wait_until(app, lambda: window.live_panel.frames_shown >= 2, 30, "first frames")

    focus = window.focus_panel
    click(app, focus.calibrate_button)
    steps["calibrated_s"] = wait_until(app, lambda: window.bridge.commands.pending == 0
                                       and "calibration:" in focus.calibration_label.text()
                                       and focus.lock_button.isEnabled(), 30, "calibration")
    click(app, focus.lock_button)
    steps["locked_s"] = wait_until(app, lambda: window.last_snapshot.focus_state == "locked", 30, "lock")

    echem = window.echem_panel
    echem.protocol.setCurrentText("charge")
    echem.params["c_rate"].setValue(8.0)
    click(app, echem.start_button)
    steps["protocol_s"] = wait_until(app, lambda: window.last_snapshot.echem_running, 15, "protocol running")

    recording = window.recording_panel
    run_path = out / "real_window_run.h5"
    recording.path_edit.setText(str(run_path))
    click(app, recording.start_button)
    steps["recording_s"] = wait_until(app, lambda: window.last_snapshot.recording, 15, "recording")

    science = window.science_panel

    def com_points() -> int:
        return sum(int(np.isfinite(values).sum()) for values in science.com_nm)

    wait_until(app, lambda: com_points() >= 3, 30, "first COM points")
    settle(app)
    mask = window.last_snapshot.mask
    first = screen_grab(window)
    first.save(str(out / "window_early.png"))
    points_early = com_points()
    wait_until(app, lambda: com_points() >= points_early + 4, 30, "more COM points")
    settle(app)
    second = screen_grab(window)
    second.save(str(out / "window_later.png"))
    points_later = com_points()

    click(app, recording.stop_button)
    steps["stopped_s"] = wait_until(app, lambda: not window.last_snapshot.recording, 30, "recording stopped")
    click(app, echem.stop_button)
    wait_until(app, lambda: not window.last_snapshot.echem_running, 15, "protocol stopped")

    grey = NEUTRAL_GREY_RGBA[:3]
    diff_view = window.differential_panel.graphics
    com_plot = science.com_plot
    from operascope.gui.science_panel import CURVE_COLOURS

    result.update({
        "window_size": [first.width(), first.height()],
        "com_points": [points_early, points_later],
        "particles": science.labels(),
        "mask_outside_fraction": None if mask is None else float(1.0 - np.mean(mask)),
        "diff_grey_px": [colour_pixels(region_rgb(img, window, diff_view), grey) for img in (first, second)],
        "diff_view_px": diff_view.width() * diff_view.height(),
        "com_curve_px": [sum(colour_pixels(region_rgb(img, window, com_plot), c) for c in CURVE_COLOURS[:4])
                         for img in (first, second)],
        "com_plot_changed_px": int((np.abs(region_rgb(first, window, com_plot).astype(int)
                                           - region_rgb(second, window, com_plot).astype(int)).max(axis=2) > 30).sum()),
        "run_file": str(run_path),
        "bins_written": window.last_snapshot.bins_written,
        "frames_not_binned": window.last_snapshot.frames_not_binned,
        "camera_dropped": window.last_snapshot.frames_dropped,
    })
    window.close_without_asking()
    wait_until(app, lambda: not window.isVisible(), 30, "window closed")
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
