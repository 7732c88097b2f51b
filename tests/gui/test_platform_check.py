"""Start-up without a usable Qt platform plugin (issue 20 item 3): one line, exit 2, never SIGABRT."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from operascope.gui.platform_check import XCB_PACKAGES, platform_name, platform_problem

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb check is Linux-only")


def _env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def test_platform_name():
    assert platform_name({}) == "xcb"
    assert platform_name({"QT_QPA_PLATFORM": "offscreen"}) == "offscreen"
    assert platform_name({"QT_QPA_PLATFORM": "vnc:size=800x600;xcb"}) == "vnc"
    assert platform_problem({"QT_QPA_PLATFORM": "offscreen"}) is None


def test_an_unknown_platform_plugin_is_one_line():
    problem = platform_problem(_env(QT_QPA_PLATFORM="nosuchplatform"))
    assert problem is not None and "nosuchplatform" in problem and "QT_QPA_PLATFORM" in problem


def test_operascope_gui_without_a_usable_xcb_exits_2_with_one_line():
    """DISPLAY unset: the xcb plugin cannot start (missing libraries or no display); never exit 134."""
    result = subprocess.run([sys.executable, "-m", "operascope.gui", "--quit-after", "1"],
                            env=_env(QT_QPA_PLATFORM=None, DISPLAY=None, WAYLAND_DISPLAY=None),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("operascope-gui: error:")
    assert "DISPLAY" in lines[0] or all(p in lines[0] for p in XCB_PACKAGES)
    assert "Traceback" not in result.stderr and "Aborted" not in result.stderr
