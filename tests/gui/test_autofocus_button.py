"""The focus panel's Autofocus button drives the engine's image-based autofocus (EngineAPI.autofocus)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PyQt5 import QtCore

from operascope.config.loader import load_config
from operascope.gui.app import build_window, make_settings

Z_FOCUS_NM = 350.0
ROI_WITH_FIDUCIAL = [0, 150, 128, 128]   # holds the fiducial (1.2, 7.5) µm and a particle edge
FIDUCIAL_XY_UM = [1.2, 7.5]


def _window(qtbot, tmp_path):
    config = load_config(overrides={
        "acquisition": {"roi": ROI_WITH_FIDUCIAL, "bin_size": 5, "frame_rate_hz": 10.0},
        "simulation": {"speed": 20.0, "seed": 5, "z_focus_nm": Z_FOCUS_NM, "particle_model": "uniform",
                       "fiducial_xy_um": FIDUCIAL_XY_UM},
    })
    window = build_window(config, make_settings(tmp_path / "gui.ini"))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.live_panel.frames_shown >= 2, timeout=20_000)
    return window


def test_autofocus_button_runs_the_engine_autofocus_and_reports_its_outcome(qtbot, tmp_path):
    window = _window(qtbot, tmp_path)
    panel = window.focus_panel
    microscope = window.bridge.microscope
    real_autofocus = microscope.autofocus
    outcomes: list[str] = []

    def spy(settings=None):
        try:
            result = real_autofocus(settings)
        except Exception as exc:
            outcomes.append(f"autofocus: {exc}")
            raise
        outcomes.append(result.summary())
        return result

    microscope.autofocus = spy
    assert panel.autofocus_button.isEnabled()
    qtbot.mouseClick(panel.autofocus_button, QtCore.Qt.LeftButton)
    assert not panel.autofocus_button.isEnabled() and "searching" in panel.autofocus_label.text()
    qtbot.waitUntil(lambda: not panel.autofocus_running, timeout=60_000)
    assert len(outcomes) == 1 and panel.autofocus_button.isEnabled()
    # the panel shows exactly what the engine's autofocus ended with: best focus found on the live stream
    assert panel.autofocus_label.text() == outcomes[0]
    assert "best z" in outcomes[0], outcomes[0]
    qtbot.waitUntil(lambda: window.last_snapshot.stage_nm is not None
                    and abs(window.last_snapshot.stage_nm["z"] - Z_FOCUS_NM) < 150.0, timeout=10_000)
    qtbot.waitUntil(lambda: any("autofocus: best z" in row for row in window.recording_panel.events.messages()),
                    timeout=5_000)


def test_a_failed_autofocus_stays_in_red_until_the_next_one(qtbot, tmp_path, monkeypatch):
    window = _window(qtbot, tmp_path)
    panel = window.focus_panel

    def refuse(settings=None):
        raise RuntimeError("no image contrast to focus on")

    monkeypatch.setattr(window.bridge.microscope, "autofocus", refuse)
    qtbot.mouseClick(panel.autofocus_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: not panel.autofocus_running, timeout=10_000)
    assert "no image contrast" in panel.autofocus_label.text() and "e53935" in panel.autofocus_label.styleSheet()
    qtbot.wait(200)                       # several refreshes: the message stays
    assert "no image contrast" in panel.autofocus_label.text()
    assert panel.autofocus_button.isEnabled()


@pytest.mark.parametrize("state", ["calibrating"])
def test_autofocus_is_not_offered_while_the_lock_calibrates(qtbot, state):
    from operascope.gui.focus_panel import FocusPanel

    panel = FocusPanel()
    qtbot.addWidget(panel)
    panel.show_state(state)
    assert not panel.autofocus_button.isEnabled()
    panel.show_state("locked")
    assert panel.autofocus_button.isEnabled()
