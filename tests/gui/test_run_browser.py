"""Run browser (issue 20 item 7): a synthetic run file, opened finished and while still being written."""

from __future__ import annotations

import os
import subprocess
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import h5py
import numpy as np
import pytest
from PyQt5 import QtCore, QtGui

from operascope.analysis import runfile_layout as layout
from operascope.analysis.errors import RunFileError
from operascope.analysis.synthetic_run import make_synthetic_run
from operascope.gui.app import main as gui_main
from operascope.gui.differential_view import NEUTRAL_GREY_RGBA
from operascope.gui.run_browser import RunBrowser
from operascope.gui.run_browser_data import RunBrowserData


@pytest.fixture()
def run_path(tmp_path):
    path = tmp_path / "run.h5"
    truth = make_synthetic_run(path, n_frames=10)
    with h5py.File(path, "a") as f:
        events = f.create_group(layout.EVENTS)
        events.create_dataset("time", data=np.array([4.0, 50.0]))
        events.create_dataset("level", data=np.array([b"info", b"warning"]))
        events.create_dataset("source", data=np.array([b"protocol", b"stage"]))
        events.create_dataset("message", data=np.array([b"charge started", b"manual z move confirmed"]))
    return path, truth


def test_data_curves_follow_the_synthetic_front(run_path):
    path, truth = run_path
    data = RunBrowserData(path)
    try:
        assert data.n_bins == 10
        big = data.regions[0]          # the particle (the fiducial spot is the second, smaller region)
        assert big.mask.sum() > 500
        com = data.com_nm[0]
        assert com[0] == 0.0
        # the core moves towards (6, -3) px * progress: the COM distance grows with the charge
        assert np.nanmax(com[-3:]) > 150.0
        assert np.all(np.diff(data.mean_differential[0]) > -0.01)
        assert data.mean_differential[0, -1] > 0.05
        np.testing.assert_allclose(data.capacity_mAh_g, truth.capacity_mAh_g)
        diff = data.differential(5)
        assert np.isnan(diff[0, 0]) and np.isfinite(diff[45, 40])
        assert [e.message for e in data.events_until(10.0)] == ["charge started"]
    finally:
        data.close()


def test_slider_moves_images_cursors_and_events(qtbot, run_path, tmp_path):
    path, truth = run_path
    browser = RunBrowser(path)
    qtbot.addWidget(browser)
    browser.show()
    assert browser.events_list.count() == 1
    assert "P1" in browser.particles_label.text() and "P2" in browser.particles_label.text()
    first = browser.diff_view.image_fraction.copy()
    browser.slider.setValue(7)
    assert browser.index == 7
    assert not np.allclose(np.nan_to_num(first), np.nan_to_num(browser.diff_view.image_fraction))
    assert browser.vq_cursor.value() == pytest.approx(truth.capacity_mAh_g[7])
    assert browser.focus_cursor.value() == pytest.approx(truth.time_s[7])
    assert browser.events_list.count() == 2
    assert "manual z move confirmed" in browser.events_list.item(1).text()
    qtbot.mouseClick(browser.play_button, QtCore.Qt.LeftButton)
    assert browser.play_button.isChecked() and browser.play_timer.isActive()
    browser.play_button.setChecked(False)
    browser.show_bin(9)
    browser.step(1)                    # at the end: stays
    assert browser.index == 9
    browser.step(-1)
    assert browser.index == 8
    out = tmp_path / "view.png"
    assert browser.export_png(out)
    image = QtGui.QImage(str(out))
    assert image.width() > 500
    # the ΔI/I view paints outside the mask neutral grey
    rgba = browser.diff_view.image_item.image
    assert tuple(rgba[0, 0]) == NEUTRAL_GREY_RGBA


def test_play_advances_to_the_last_bin_and_stops(qtbot, run_path):
    browser = RunBrowser(run_path[0])
    qtbot.addWidget(browser)
    browser.show()
    browser.play_button.setChecked(True)
    qtbot.waitUntil(lambda: not browser.play_button.isChecked(), timeout=10000)
    assert browser.index == 9


_APPENDER = """
import sys, h5py
path, binned = sys.argv[1], sys.argv[2]
with h5py.File(path, "a", libver="latest") as f:
    f.swmr_mode = True
    frames, extra = f[binned + "/frames"], f[binned + "/pending"][()]
    cols = {name: f[binned + "/" + name] for name in ("time", "voltage", "current", "capacity_mAh_g")}
    logs = {name: f[binned + "/pending_" + name][()] for name in cols}
    print("ready", flush=True)
    for line in sys.stdin:
        n = frames.shape[0]
        frames.resize(n + 1, axis=0)
        frames[n] = extra[n]
        for name, col in cols.items():
            col.resize((n + 1,))
            col[n] = logs[name][n]
        f.flush()
        print("appended", n + 1, flush=True)
"""


def test_a_file_still_being_written_grows_on_refresh(qtbot, tmp_path):
    """A writer in another process appends bins in SWMR mode; Refresh shows them."""
    source = tmp_path / "full.h5"
    make_synthetic_run(source, n_frames=8)
    live = tmp_path / "live.h5"
    names = ("time", "voltage", "current", "capacity_mAh_g")
    with h5py.File(source, "r") as src:
        frames = src[f"{layout.BINNED}/frames"][()]
        logs = {name: src[f"{layout.BINNED}/{name}"][()] for name in names}
    with h5py.File(live, "w", libver="latest") as f:
        f.create_group(layout.ENTRY)
        binned = f.create_group(layout.BINNED)
        binned.create_dataset("frames", data=frames[:3], maxshape=(None, *frames.shape[1:]),
                              chunks=(1, *frames.shape[1:]))
        binned.create_dataset("pending", data=frames)
        for name in names:
            binned.create_dataset(name, data=logs[name][:3], maxshape=(None,), chunks=(16,))
            binned.create_dataset(f"pending_{name}", data=logs[name])
    writer = subprocess.Popen([sys.executable, "-c", _APPENDER, str(live), layout.BINNED], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        browser = RunBrowser(live)
        qtbot.addWidget(browser)
        assert browser.data.n_bins == 3 and browser.slider.maximum() == 2
        for _ in range(5):
            writer.stdin.write("go\n")
            writer.stdin.flush()
            assert writer.stdout.readline().startswith("appended")
        assert browser.refresh() == 5
        assert browser.slider.maximum() == 7
        browser.slider.setValue(7)
        assert browser.data.com_nm.shape[1] == 8
        assert browser.data.mean_differential[0, 7] > browser.data.mean_differential[0, 2]
        browser.close()
    finally:
        writer.stdin.close()
        writer.wait(timeout=30)


def test_cli_open_screenshot_and_bad_file(tmp_path, run_path, capsys):
    shot = tmp_path / "browser.png"
    assert gui_main(open_path=str(run_path[0]), screenshot=str(shot), quit_after_s=0.3) == 0
    assert QtGui.QImage(str(shot)).width() > 500
    assert gui_main(open_path=str(tmp_path / "missing.h5"), quit_after_s=0.1) == 2
    err = capsys.readouterr().err
    assert "missing.h5" in err and "does not exist" in err and "Traceback" not in err
    with pytest.raises(RunFileError):
        RunBrowserData(tmp_path / "missing.h5")


def _unavailable_rig():
    raise RuntimeError("no rig in this test")


def test_file_open_in_the_live_window(qtbot, tmp_path, run_path):
    from operascope.config.loader import load_config
    from operascope.gui.app import build_window, make_settings

    window = build_window(load_config(None), make_settings(tmp_path / "gui.ini"), open_microscope=_unavailable_rig)
    qtbot.addWidget(window)
    assert "Open run…" in [a.text() for a in window.menuBar().actions()[0].menu().actions()]
    browser = window.open_run(str(run_path[0]))
    assert browser is not None and browser.isVisible() and browser.data.n_bins == 10
    assert window.open_run(str(tmp_path / "nothing.h5")) is None
    assert "nothing.h5" in window.status_error.text()
    browser.close()
