"""Panel widgets and display helpers, without the engine (pytest-qt, offscreen)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PyQt5 import QtCore

from operascope.gui.differential_panel import PICK_FIDUCIAL, PICK_PARTICLE, DifferentialPanel
from operascope.gui.differential_view import NEUTRAL_GREY_RGBA, format_percent
from operascope.gui.display_math import (RateMeter, display_stride, mask_outline, nice_scale_bar_um, robust_levels,
                              symmetric_levels)
from operascope.gui.echem_panel import EchemPanel, ProtocolRequest
from operascope.gui.focus_panel import STATE_COLOURS, FocusPanel
from operascope.gui.illumination_panel import IlluminationPanel
from operascope.gui.live_panel import LivePanel
from operascope.gui.recording_panel import RecordingPanel, RecordingRequest
from operascope.gui.stage_panel import SavedPosition, StagePanel


# --------------------------------------------------------------------------- pure helpers


def test_symmetric_levels_are_centred_and_follow_the_data():
    rng = np.random.default_rng(1)
    image = rng.normal(0.002, 0.01, (64, 64)).astype(np.float32)
    image[0, 0] = np.nan
    low, high = symmetric_levels(image, percentile=99.0)
    assert low == -high
    assert 0.02 < high < 0.04  # 99th percentile of |N(0.002, 0.01)| is ≈ 0.027
    assert symmetric_levels(np.zeros((4, 4))) == (-1e-4, 1e-4)
    with pytest.raises(ValueError, match="percentile"):
        symmetric_levels(image, percentile=0)


def test_robust_levels_ignore_a_few_hot_pixels():
    image = np.full((100, 100), 1000, dtype=np.uint16)
    image[50:, :] = 2000
    image[0, :5] = 4095
    low, high = robust_levels(image)
    assert low == pytest.approx(1000) and high == pytest.approx(2000)


@pytest.mark.parametrize("width_um, expected", [(11.1, 2.0), (66.6, 10.0), (3.0, 0.5), (400.0, 50.0)])
def test_scale_bar_is_a_round_length_near_a_fifth_of_the_field(width_um, expected):
    assert nice_scale_bar_um(width_um) == pytest.approx(expected)


def test_display_stride_and_mask_outline():
    assert display_stride(0.5) == 1 and display_stride(1.9) == 1 and display_stride(3.2) == 3
    assert display_stride(float("nan")) == 1 and display_stride(100.0) == 16
    mask = np.zeros((7, 7), bool)
    mask[1:6, 2:5] = True  # 5 x 3 block: 13 of 15 pixels on the boundary, only the middle column inside
    outline = mask_outline(mask)
    assert outline.sum() == 15 - 3 and not outline[2:5, 3].any() and not outline[~mask].any()


def test_live_panel_shows_full_frame_with_a_stride_when_zoomed_out(qtbot):
    panel = LivePanel(pixel_size_nm=34.7)
    qtbot.addWidget(panel)
    panel.resize(500, 400)
    panel.show()
    qtbot.waitExposed(panel)
    frame = np.random.default_rng(0).integers(0, 4096, (1200, 1920), dtype=np.uint16)
    panel.show_frame(frame, frame_id=1)
    panel.show_frame(frame, frame_id=2)
    stride = panel.displayed_stride
    assert stride >= 3  # ~1920 image px into < 500 screen px
    np.testing.assert_array_equal(panel.image_item.image, frame[::stride, ::stride])
    rect = panel.image_item.mapRectToParent(panel.image_item.boundingRect())
    assert (rect.width(), rect.height()) == pytest.approx((1920, 1200))  # still in full-frame pixel units
    assert panel.scale_bar_label() == "10 µm"


def test_rate_meter_measures_rate_and_survives_counter_restart():
    meter = RateMeter(window_s=2.0)
    for i in range(11):
        meter.add(i * 0.1, i * 3)  # 30 per second
    assert meter.rate_per_s() == pytest.approx(30.0)
    meter.add(1.1, 0)  # restarted
    assert meter.rate_per_s() == 0.0


# --------------------------------------------------------------------------- live


def test_live_panel_shows_newest_frame_once_with_scale_bar(qtbot):
    panel = LivePanel(pixel_size_nm=34.7)
    qtbot.addWidget(panel)
    frame = np.arange(288 * 320, dtype=np.uint16).reshape(288, 320) % 4096
    panel.show_frame(frame, frame_id=7)
    panel.show_frame(frame, frame_id=7)  # same id: not counted again
    panel.show_frame(frame, frame_id=9)
    assert panel.frames_shown == 2
    stride = panel.displayed_stride
    np.testing.assert_array_equal(panel.image_item.image, frame[::stride, ::stride])
    # 320 px * 34.7 nm = 11.1 µm wide -> a 2 µm bar that is 2000/34.7 px long
    assert panel.scale_bar_label() == "2 µm"
    assert panel.scale_bar.size == pytest.approx(2000 / 34.7)
    assert panel.crosshair_v.value() == pytest.approx(160) and panel.crosshair_h.value() == pytest.approx(144)
    panel.set_rates(10.0, 9.5, 3)
    assert "dropped 3" in panel.rates_label.text()
    with pytest.raises(ValueError, match="2-D"):
        panel.show_frame(np.zeros(5), frame_id=10)


# --------------------------------------------------------------------------- differential


def test_differential_levels_symmetric_and_click_picks_fiducial(qtbot):
    panel = DifferentialPanel()
    qtbot.addWidget(panel)
    panel.resize(500, 450)
    panel.show()
    qtbot.waitExposed(panel)
    image = np.zeros((100, 120), np.float32)
    image[20:40, 30:60] = 0.05
    image[60:70, 10:20] = -0.02
    image[0, 0] = np.nan
    mask = image != 0
    panel.show_differential(image, mask, bin_index=3)
    low, high = panel.levels
    assert low == -high and high == pytest.approx(0.05)
    # NaN outside the mask is painted neutral grey, not the colour of 0 (issue 20 item 5; was: shown as 0)
    rgba = panel.image_item.image
    assert tuple(rgba[0, 0]) == NEUTRAL_GREY_RGBA
    assert tuple(rgba[50, 100]) != NEUTRAL_GREY_RGBA    # a true zero inside the image
    assert panel.colorbar.levels() == pytest.approx((-5.0, 5.0))   # the colour bar is in %
    assert panel.display.scale_bar_label() == "500 nm"   # 120 px * 34.7 nm = 4.2 µm wide

    panel.pick_choice.setCurrentText(PICK_FIDUCIAL)
    picked = []
    panel.fiducial_picked.connect(lambda x, y: picked.append((x, y)))
    # a real mouse click at image pixel (45, 30)
    scene_point = panel.view.mapViewToScene(QtCore.QPointF(45.5, 30.5))
    widget_point = panel.graphics.mapFromScene(scene_point)
    qtbot.mouseClick(panel.graphics.viewport(), QtCore.Qt.LeftButton, pos=widget_point)
    assert len(picked) == 1
    assert picked[0][0] == pytest.approx(45.5, abs=1.0) and picked[0][1] == pytest.approx(30.5, abs=1.0)

    panel.pick_choice.setCurrentText(PICK_PARTICLE)
    regions = []
    panel.particle_region_changed.connect(lambda *r: regions.append(r))
    panel.pick_at(45.0, 30.0)
    assert regions[-1] == (5, -10, 80, 80)
    # mean over the finite pixels of the region clipped to the image: [0:70, 5:85]
    expected = image[0:70, 5:85]
    assert panel.mean_in_particle_region() == pytest.approx(float(np.nan_to_num(expected).mean()), rel=1e-5)
    panel.show_differential(image * 2, mask, bin_index=4)
    (index, mean), = panel.region_trace()
    assert index == 4 and mean == pytest.approx(2 * float(np.nan_to_num(expected).mean()), rel=1e-5)


# --------------------------------------------------------------------------- focus


def test_focus_panel_state_buttons_and_traces(qtbot):
    panel = FocusPanel()
    qtbot.addWidget(panel)
    panel.show_state("locked")
    assert STATE_COLOURS["locked"] in panel.state_label.styleSheet()
    assert "LOCKED" in panel.state_label.text()
    assert panel.unlock_button.isEnabled() and not panel.lock_button.isEnabled()
    panel.show_state("off")
    assert panel.lock_button.isEnabled() and not panel.unlock_button.isEnabled()
    offsets = []
    panel.offset_requested.connect(offsets.append)
    panel.offset_nm.setValue(-120)
    qtbot.mouseClick(panel.offset_button, QtCore.Qt.LeftButton)
    assert offsets == [-120.0]
    panel.add_samples([0.0, 0.1, 0.2], [5.0, 3.0, -1.0], [10.0, 11.0, 12.0])
    panel.refresh()
    x, y = panel.z_curve.getData()
    np.testing.assert_allclose(y, [10.0, 11.0, 12.0])
    assert "error -1.0 nm" in panel.readout_label.text()
    panel.show_profile(np.ones(64), 31.5)
    assert panel.position_line.value() == pytest.approx(31.5) and panel.position_line.isVisible()
    panel.show_calibration({"slope_px_per_nm": 0.02, "residual_nm": 3.2, "capture_range_nm": 1400.0})
    assert "0.0200 px/nm" in panel.calibration_label.text()


# --------------------------------------------------------------------------- stage


def test_stage_jog_goto_and_saved_positions(qtbot):
    panel = StagePanel()
    qtbot.addWidget(panel)
    moves = []
    panel.move_requested.connect(moves.append)
    panel.jog("x", +1)
    assert moves == []  # position unknown: no blind move
    panel.show_position({"x": 1000.0, "y": -2000.0, "z": 50.0})
    assert panel.readout_labels["y"].text().strip() == "-2.000 µm"
    panel.step_um.setValue(0.25)   # steps in µm like the positions (issue 20 item 8; was step_nm = 250)
    qtbot.mouseClick(panel.jog_buttons[("z", -1)], QtCore.Qt.LeftButton)
    assert moves[-1] == {"z": pytest.approx(-200.0)}
    saved = panel.save_current("particle A")
    assert saved == SavedPosition("particle A", 1000.0, -2000.0, 50.0)
    panel.show_position({"x": 0.0, "y": 0.0, "z": 0.0})
    panel.go_to_saved(0)
    assert moves[-1] == {"x": 1000.0, "y": -2000.0, "z": 50.0}
    panel.goto_um["x"].setValue(1.5)
    qtbot.mouseClick(panel.goto_button, QtCore.Qt.LeftButton)
    assert moves[-1] == {"x": pytest.approx(1500.0), "y": 0.0, "z": 0.0}
    assert SavedPosition.from_list(saved.to_list()) == saved


# --------------------------------------------------------------------------- illumination


def test_illumination_readback_does_not_echo_requests(qtbot):
    panel = IlluminationPanel()
    qtbot.addWidget(panel)
    requests = []
    panel.led_enable_requested.connect(requests.append)
    panel.laser_enable_requested.connect(requests.append)
    panel.show_led(True, 0.5, 0.49)
    panel.show_laser(True, 0.005, 0.0049, interlock_ok=False)
    assert panel.led_on.isChecked() and requests == []
    assert "TRIPPED" in panel.interlock_label.text()
    panel.led_on.click()  # the user switches it off
    assert requests == [False]
    currents = []
    panel.led_current_requested.connect(currents.append)
    panel.led_current_ma.setValue(250)
    qtbot.mouseClick(panel.led_apply, QtCore.Qt.LeftButton)
    assert currents == [pytest.approx(0.25)]


# --------------------------------------------------------------------------- electrochemistry and recording


def test_echem_panel_builds_requests_and_refuses_reversed_cutoffs(qtbot):
    panel = EchemPanel(ProtocolRequest("charge", c_rate=2.0))
    qtbot.addWidget(panel)
    panel.show()
    started = []
    panel.start_requested.connect(started.append)
    panel.protocol.setCurrentText("gitt")
    assert panel.params["gitt_pulse_s"].isVisible() and not panel.params["c_rate"].isVisible()
    panel.params["gitt_pulse_s"].setValue(60)
    qtbot.mouseClick(panel.start_button, QtCore.Qt.LeftButton)
    assert started[-1].kind == "gitt" and started[-1].gitt_pulse_s == 60
    panel.params["v_min"].setValue(4.4)
    qtbot.mouseClick(panel.start_button, QtCore.Qt.LeftButton)
    assert len(started) == 1 and "v_min" in panel.error_label.text()
    for _ in range(3):   # the 25 Hz refresh rewrites the status line but never the error (issue 20 item 2)
        panel.show_running(False, "")
    assert panel.status_label.text() == "idle" and "v_min" in panel.error_label.text()
    with pytest.raises(ValueError, match="allowed"):
        ProtocolRequest("constant-phase")


def test_recording_panel_validates_name_and_bin(qtbot, tmp_path):
    panel = RecordingPanel(bin_size=20, folder=tmp_path)
    qtbot.addWidget(panel)
    requests = []
    panel.start_requested.connect(requests.append)
    qtbot.mouseClick(panel.start_button, QtCore.Qt.LeftButton)
    assert requests[-1].bin_size == 20 and requests[-1].path.parent == tmp_path
    panel.path_edit.setText(str(tmp_path / "run.txt"))
    qtbot.mouseClick(panel.start_button, QtCore.Qt.LeftButton)
    assert len(requests) == 1
    assert any(".h5" in m for m in panel.events.messages("error"))
    with pytest.raises(ValueError, match="bin size"):
        RecordingRequest(tmp_path / "a.h5", 0, False)
    assert panel.show_free_disk() > 0


def test_growing_columns_keep_every_row_in_order():
    from operascope.gui.engine_bridge import GrowingColumns

    columns = GrowingColumns(2, capacity=4)
    columns.extend([(0.0, 10.0), (1.0, 11.0)])
    first_t, _ = columns.columns()
    columns.extend((float(i), 10.0 + i) for i in range(2, 11))  # grows past the capacity twice
    t, v = columns.columns()
    assert len(columns) == 11
    np.testing.assert_array_equal(t, np.arange(11.0))
    np.testing.assert_array_equal(v, 10.0 + np.arange(11.0))
    np.testing.assert_array_equal(first_t, [0.0, 1.0])  # earlier results are not changed by growth
