"""Shared pytest set-up: Qt runs headless; the shared fakes live in tests/fakes/."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
