"""Shared pytest set-up: Qt runs headless; the shared fakes live in tests/fakes/."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# GUI sessions write a user-level log; keep the suite's out of the user's folder
os.environ.setdefault("OPERASCOPE_LOG_DIR", os.path.join(tempfile.gettempdir(), f"operascope-test-logs-{os.getuid()}"))
