"""Issue 20 through the window over the simulated rig: a 10 mm z move in a locked recording is refused,
the refusal stays visible, a confirmed move lands in /entry/events; errors stay; counters mean one thing."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import h5py
import pytest
from PyQt5 import QtCore

from operascope.analysis import runfile_layout as layout
from operascope.config.loader import load_config
from operascope.gui.app import build_window, make_settings


def _config(speed: float = 5.0):
    return load_config(overrides={
        "acquisition": {"roi": [0, 0, 160, 160], "bin_size": 4, "frame_rate_hz": 10.0},
        "simulation": {"speed": speed, "seed": 3},
        "focus_lock": {"calibration_range_nm": 600.0, "calibration_step_nm": 100.0},
    })


def _messages(path) -> list[str]:
    with h5py.File(path, "r") as f:
        return [m.decode() if isinstance(m, bytes) else str(m) for m in f[layout.EVENTS]["message"][()]]


@pytest.fixture
def window(qtbot, tmp_path):
    """The window over a simulated rig; closed without the "recording is running" question even when the
    test fails (a modal question in the offscreen teardown would wait forever)."""
    window = build_window(_config(), make_settings(tmp_path / "gui.ini"))   # not qtbot.addWidget: its close asks
    window.show()
    yield window
    window.close_without_asking()


def test_a_10_mm_z_move_in_a_locked_recording_is_refused_in_the_window_and_a_confirmed_one_is_logged(
        qtbot, tmp_path, window):
    qtbot.waitUntil(lambda: window.live_panel.frames_shown >= 2, timeout=20_000)
    engine = window.bridge.microscope
    asked: list[str] = []
    answers = [False, True]
    window.confirm_manual_move = lambda message: asked.append(message) or answers.pop(0)

    qtbot.mouseClick(window.focus_panel.lock_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: window.focus_panel.state == "locked", timeout=30_000)
    run = tmp_path / "locked.h5"
    window.recording_panel.path_edit.setText(str(run))
    qtbot.mouseClick(window.recording_panel.start_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: window.last_snapshot.recording, timeout=10_000)
    qtbot.waitUntil(lambda: window.last_snapshot.stage_nm is not None, timeout=5_000)

    z_before = engine.stage.axis("z").target_nm()
    qtbot.mouseClick(window.stage_panel.here_button, QtCore.Qt.LeftButton)
    window.stage_panel.goto_um["z"].setValue(99999.0)        # clamped to the spin box's 12 500 µm
    qtbot.mouseClick(window.stage_panel.goto_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: len(asked) == 1, timeout=10_000)
    assert "focus lock is active" in asked[0] and "recording is running" in asked[0]
    # refused: nothing was commanded (the lock keeps moving z by nanometres; 10 mm was never asked of it)
    assert abs(engine.stage.axis("z").target_nm() - z_before) < 1_000.0
    for _ in range(10):                                                  # the refresh does not clear it
        qtbot.wait(40)
    assert "needs confirmation" in window.stage_panel.error_label.text()
    assert "needs confirmation" in window.status_error.text()

    x_before = engine.stage.axis("x").target_nm()
    window.stage_panel.step_um.setValue(2.0)
    qtbot.mouseClick(window.stage_panel.jog_buttons[("x", +1)], QtCore.Qt.LeftButton)
    # a jog steps from the last read position (closed-loop jitter of a few nm): 2 µm, not refused
    qtbot.waitUntil(lambda: abs(engine.stage.axis("x").target_nm() - (x_before + 2000.0)) < 50.0, timeout=10_000)
    assert len(asked) == 2 and window.stage_panel.error_label.text() == ""
    qtbot.mouseClick(window.recording_panel.stop_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: not window.last_snapshot.recording, timeout=20_000)
    qtbot.waitUntil(lambda: window.bridge.commands.pending == 0, timeout=20_000)
    messages = _messages(run)
    assert any(m.startswith("manual move needs confirmation (gui)") and "z" in m for m in messages)
    assert any(m.startswith("manual move (gui)") and "confirmed" in m for m in messages)


def test_a_refused_protocol_start_stays_visible_and_no_camera_drops_are_claimed(qtbot, tmp_path):
    window = build_window(_config(speed=2.0), make_settings(tmp_path / "gui.ini"))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.live_panel.frames_shown >= 3, timeout=20_000)
    panel = window.echem_panel
    panel.protocol.setCurrentText("charge")
    panel.params["v_max"].setValue(3.0)
    panel.params["v_min"].setValue(4.5)
    qtbot.mouseClick(panel.start_button, QtCore.Qt.LeftButton)
    qtbot.wait(200)   # five refreshes
    assert "v_min" in panel.error_label.text() and panel.status_label.text() == "idle"
    text = window.live_panel.rates_label.text()
    assert "camera dropped 0 (frame-id gaps)" in text and "not shown" in text
    assert "dropped" not in window.status_state.text()
    window.close_without_asking()
