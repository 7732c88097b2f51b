"""Main window behaviour that does not need a running rig: open failure, layout memory, app arguments."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PyQt5 import QtCore

from operascope.config.loader import load_config
from operascope.gui.app import build_window, main, make_settings


def _unavailable_rig():
    raise ConnectionError("camera: no camera found; check the USB cable")


def test_rig_that_cannot_open_is_reported_in_the_window(qtbot, tmp_path):
    config = load_config()
    window = build_window(config, make_settings(tmp_path / "gui.ini"), open_microscope=_unavailable_rig)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: "no camera found" in window.status_error.text(), timeout=5000)
    assert any("no camera found" in m for m in window.recording_panel.events.messages("error"))
    # commands without a rig are refused with a message, not an exception
    window.focus_panel.lock_button.click()
    qtbot.waitUntil(lambda: "not open" in window.status_error.text(), timeout=5000)
    assert window.isVisible()
    window.close()


def test_layout_is_remembered_between_sessions(qtbot, tmp_path):
    config = load_config()
    settings_file = tmp_path / "gui.ini"
    first = build_window(config, make_settings(settings_file), open_microscope=_unavailable_rig)
    qtbot.addWidget(first)
    first.show()
    first.docks["echem"].setFloating(True)
    first.docks["focus"].hide()
    first.stage_panel.show_position({"x": 1.0, "y": 2.0, "z": 3.0})
    first.stage_panel.save_current("particle 7")
    first.close()
    assert settings_file.exists()

    second = build_window(config, make_settings(settings_file), open_microscope=_unavailable_rig)
    qtbot.addWidget(second)
    second.show()
    assert second.docks["echem"].isFloating()
    assert not second.docks["focus"].isVisible()
    assert [p.name for p in second.stage_panel.saved_positions()] == ["particle 7"]
    second.close()


def test_main_rejects_bad_arguments_and_config(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[acquisition]\nbin_size = 0\n")
    assert main(str(bad)) == 2
    assert "bin_size" in capsys.readouterr().err
    assert main(None, screenshot=str(tmp_path / "shot.gif")) == 2
    assert main(None, quit_after_s=-1.0) == 2
    assert main(str(tmp_path / "missing.toml")) == 2
    assert "not found" in capsys.readouterr().err


def test_settings_file_is_an_ini_at_the_given_path(tmp_path):
    settings = make_settings(tmp_path / "x.ini")
    settings.setValue("a/b", 3)
    settings.sync()
    assert settings.format() == QtCore.QSettings.IniFormat
    assert (tmp_path / "x.ini").read_text().count("b=3") == 1


@pytest.mark.parametrize("rate", [0.5, 500.0])
def test_refresh_rate_out_of_range_is_refused(qtbot, tmp_path, rate):
    from operascope.gui.engine_bridge import EngineBridge
    from operascope.gui.main_window import MainWindow

    with pytest.raises(ValueError, match="refresh_hz"):
        MainWindow(EngineBridge(_unavailable_rig), load_config(), make_settings(tmp_path / "g.ini"), refresh_hz=rate)


def test_a_display_bug_is_shown_not_fatal(qtbot, tmp_path):
    window = build_window(load_config(), make_settings(tmp_path / "gui.ini"), open_microscope=_unavailable_rig)
    qtbot.addWidget(window)

    def broken_snapshot():
        raise KeyError("frame")

    window.bridge.snapshot = broken_snapshot
    window.refresh()
    window.refresh()
    assert "status unavailable" in window.status_error.text()
    assert sum("status unavailable" in m for m in window.recording_panel.events.messages("error")) == 1
    window.live_panel.show_frame = lambda *a: 1 / 0  # a panel that fails while drawing
    window.bridge.snapshot = lambda: __import__("operascope.gui.snapshot", fromlist=["GuiSnapshot"]).GuiSnapshot(
        frame=np.zeros((4, 4), np.uint16), frame_id=1)
    window.refresh()
    assert "ZeroDivisionError" in window.status_error.text()
    window.close()
