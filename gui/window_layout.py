"""Layout memory of the main window: geometry, dock layout and saved stage positions in QSettings."""

from __future__ import annotations

import json
import logging
from typing import Any

from PyQt5 import QtCore

from operascope.gui.stage_panel import SavedPosition

log = logging.getLogger(__name__)


def default_dock_sizes(window: Any) -> None:
    """The first-start sizes of the docks (once the window has its real size)."""
    docks = window.docks
    window.resizeDocks([docks["live"], docks["differential"], docks["focus"]], [620, 620, 560], QtCore.Qt.Horizontal)
    window.resizeDocks([docks["echem"], docks["science"], docks["recording"], docks["stage"]], [560, 460, 400, 380],
                       QtCore.Qt.Horizontal)
    window.resizeDocks([docks["live"], docks["echem"]], [580, 370], QtCore.Qt.Vertical)


def restore_layout(window: Any) -> None:
    """Geometry, dock layout and saved stage positions from ``window.settings`` (defaults where absent)."""
    settings = window.settings
    geometry = settings.value("main_window/geometry")
    state = settings.value("main_window/state")
    if geometry is not None:
        window.restoreGeometry(geometry)
    if state is not None:
        window.restoreState(state)
    else:
        QtCore.QTimer.singleShot(0, lambda: default_dock_sizes(window))
    saved = settings.value("stage/saved_positions")
    if saved:
        try:
            window.stage_panel.set_saved_positions([SavedPosition.from_list(row) for row in json.loads(saved)])
        except (ValueError, TypeError) as exc:
            window.log_event("gui", "warning", f"ignored unreadable saved stage positions: {exc}")


def save_layout(window: Any) -> None:
    """Remember window geometry, dock layout and saved stage positions (QSettings)."""
    settings = window.settings
    settings.setValue("main_window/geometry", window.saveGeometry())
    settings.setValue("main_window/state", window.saveState())
    settings.setValue("stage/saved_positions",
                      json.dumps([p.to_list() for p in window.stage_panel.saved_positions()]))
    settings.sync()
