"""Issue 19 GUI: saved particle positions become a position list (TOML), "record all positions" hands it
to the engine's start_recording(positions=, dwell_bins=), and a per-position status table."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import math

import pytest
from PyQt5 import QtCore

from operascope.acquisition.position_state import PositionState, PositionStatus
from operascope.acquisition.positions import load_positions
from operascope.config.loader import load_config
from operascope.gui.app import build_window, make_settings
from operascope.gui.positions_panel import PositionsPanel, positions_from_saved
from operascope.gui.snapshot import GuiSnapshot
from operascope.gui.stage_panel import SavedPosition

SAVED = [SavedPosition("particle 1", 1000.0, 2000.0, 500.0), SavedPosition("aged/A", -3000.0, 0.0, 800.0),
         SavedPosition("particle 1", 5000.0, 5000.0, 300.0), SavedPosition("", 0.0, 9000.0, 500.0)]


def test_saved_positions_become_a_valid_position_list_with_z_offsets_from_the_first():
    plist = positions_from_saved(SAVED)
    assert plist.names() == ["particle_1", "aged_A", "particle_1_2", "P4"]
    first, second, third, _ = plist
    assert (first.x_um, first.y_um, first.z_offset_um) == (1.0, 2.0, 0.0)
    assert (second.x_um, second.z_offset_um) == (-3.0, pytest.approx(0.3))
    assert third.z_offset_um == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="no saved stage positions"):
        positions_from_saved([])


def test_the_list_is_saved_as_toml_that_loads_back_and_is_never_overwritten_unasked(qtbot, tmp_path):
    panel = PositionsPanel()
    qtbot.addWidget(panel)
    assert not panel.save_button.isEnabled() and not panel.record_all.isEnabled()
    panel.set_from_saved(SAVED)
    assert panel.list_table.rowCount() == 4 and panel.list_table.item(1, 0).text() == "aged_A"
    path = tmp_path / "positions.toml"
    assert panel.save(path)
    assert load_positions(path) == panel.positions
    assert not panel.save(path)                      # exists: refused, the reason stays in red
    assert "already exists" in panel.message_label.text() and "e53935" in panel.message_label.styleSheet()
    assert panel.save(path, overwrite=True)
    other = PositionsPanel()
    qtbot.addWidget(other)
    assert other.load(path) and other.positions == panel.positions
    (tmp_path / "bad.toml").write_text('[[positions]]\nname = "A"\nx_um = 0.0\n')
    assert not other.load(tmp_path / "bad.toml") and "bad.toml" in other.message_label.text()
    assert other.positions == panel.positions        # a refused file leaves the list shown as it was
    panel.set_from_saved([])
    assert "no saved stage positions" in panel.message_label.text()


def test_the_status_table_shows_each_position(qtbot, tmp_path, monkeypatch):
    window = build_window(load_config(None), make_settings(tmp_path / "gui.ini"), open_microscope=_no_rig)
    qtbot.addWidget(window)
    window.timer.stop()
    statuses = [PositionStatus("A", PositionState.RECORDING, visits=3, bins=3, last_visit_time_s=120.5),
                PositionStatus("B", PositionState.SKIPPED, visits=1, bins=1, last_error="move failed: end of travel"),
                PositionStatus("C", PositionState.WAITING)]
    monkeypatch.setattr(window.bridge, "snapshot", lambda: GuiSnapshot(opened=True, positions=statuses))
    for _ in range(5):                         # the table is redrawn on the slow refresh
        window.refresh()
    rows = window.positions_panel.status_rows()
    assert rows[0] == ["A", "recording", "3", "3", "120.5", ""]
    assert rows[1][:2] == ["B", "skipped"] and rows[1][5] == "move failed: end of travel"
    assert rows[2][1] == "waiting" and rows[2][4] == "-"
    assert window.docks["positions"].widget() is window.positions_panel
    assert math.isnan(statuses[2].last_visit_time_s)


def _no_rig():
    raise RuntimeError("no rig in this test")


def _rig_window(qtbot, tmp_path):
    config = load_config(overrides={"acquisition": {"roi": [0, 0, 96, 96], "bin_size": 5},
                                    "simulation": {"speed": 10.0, "seed": 1}})
    window = build_window(config, make_settings(tmp_path / "gui.ini"))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.bridge.microscope is not None and window.live_panel.frames_shown >= 1,
                    timeout=20_000)
    return window


def test_record_all_positions_hands_the_list_and_dwell_to_the_engine(qtbot, tmp_path):
    window = _rig_window(qtbot, tmp_path)
    window.stage_panel.set_saved_positions(SAVED[:2])
    qtbot.mouseClick(window.positions_panel.from_saved_button, QtCore.Qt.LeftButton)
    panel = window.positions_panel
    assert panel.positions is not None and panel.positions.names() == ["particle_1", "aged_A"]
    panel.record_all.setChecked(True)
    panel.dwell_bins.setValue(3)
    calls = []

    def start_recording(out_path, bin_size=None, save_raw=None, duration_s=None, title=None, overwrite=False,
                        positions=None, dwell_bins=1):
        calls.append((out_path, bin_size, positions, dwell_bins))

    window.bridge.microscope.start_recording = start_recording
    run = tmp_path / "runs" / "multi.h5"
    window.recording_panel.path_edit.setText(str(run))
    qtbot.mouseClick(window.recording_panel.start_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=10_000)
    out_path, bin_size, positions, dwell = calls[0]
    assert out_path == str(run) and positions == panel.positions and dwell == 3
    # without the mode: a single-position recording, exactly as before
    panel.record_all.setChecked(False)
    window.recording_panel.path_edit.setText(str(tmp_path / "runs" / "single.h5"))
    qtbot.mouseClick(window.recording_panel.start_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: len(calls) == 2, timeout=10_000)
    assert calls[1][2] is None and calls[1][3] == 1


def test_an_engine_that_cannot_record_positions_says_so_in_the_panel(qtbot, tmp_path):
    window = _rig_window(qtbot, tmp_path)
    panel = window.positions_panel
    panel.set_from_saved(SAVED[:2])
    panel.record_all.setChecked(True)

    def single_only(out_path, bin_size=None, save_raw=None):
        raise AssertionError("must not be called with a position list")

    window.bridge.microscope.start_recording = single_only
    window.recording_panel.path_edit.setText(str(tmp_path / "runs" / "multi.h5"))
    qtbot.mouseClick(window.recording_panel.start_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: "cannot record a position list" in panel.message_label.text(), timeout=10_000)
    assert "e53935" in panel.message_label.styleSheet()
