"""Events log widget: time, level, source, message; warnings and errors in colour."""

from __future__ import annotations

from PyQt5 import QtGui, QtWidgets

LEVEL_COLOURS: dict[str, str] = {
    "debug": "#9e9e9e",
    "info": "#e0e0e0",
    "warning": "#ffb300",
    "error": "#ff5252",
}
MAX_ROWS = 2000


class EventsLog(QtWidgets.QListWidget):
    """Append-only list of events; keeps the newest ``MAX_ROWS`` rows and scrolls to the end."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setUniformItemSizes(True)
        self.setAlternatingRowColors(False)
        self.setStyleSheet("QListWidget { background:#202124; font-family: monospace; }")

    def add_event(self, time_s: float | None, level: str, source: str, message: str) -> None:
        """Append one event; ``time_s`` in seconds (rig clock) or None."""
        stamp = f"{time_s:9.2f} s" if time_s is not None else " " * 11
        item = QtWidgets.QListWidgetItem(f"{stamp}  {level.upper():7s} {source}: {message}")
        item.setForeground(QtGui.QColor(LEVEL_COLOURS.get(level, LEVEL_COLOURS["info"])))
        item.setToolTip(message)
        item.setData(0x0100, level)  # Qt.UserRole
        self.addItem(item)
        while self.count() > MAX_ROWS:
            self.takeItem(0)
        self.scrollToBottom()

    def messages(self, level: str | None = None) -> list[str]:
        """Texts of the rows, optionally only those of ``level``."""
        rows = (self.item(i) for i in range(self.count()))
        return [row.text() for row in rows if level is None or row.data(0x0100) == level]
