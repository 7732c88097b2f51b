"""Graphics items that survive teardown order.

When a panel is destroyed, Qt may still ask an InfiniteLine for its bounding rect after its
ViewBox wrapper is gone; pyqtgraph then raises inside a C++ virtual call, which can crash the
process. This line answers with an empty rect instead.
"""

from __future__ import annotations

import pyqtgraph as pg
from PyQt5 import QtCore


class SafeInfiniteLine(pg.InfiniteLine):
    """pg.InfiniteLine whose bounding rect is empty (not an exception) without a view box."""

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt override
        try:
            return super().boundingRect()
        except AttributeError:  # the view box is gone (teardown): nothing to draw
            return QtCore.QRectF()
