"""Check, before any QApplication exists, that Qt can load its platform plugin.

Qt aborts the process (SIGABRT, exit 134) when the platform plugin (on Linux usually "xcb") cannot be
loaded, e.g. on a bare desktop without the xcb helper libraries. The check starts a throw-away Python
that creates a QApplication; if that dies, the window is not attempted and the caller prints one line.
Platforms that need no display libraries (offscreen, minimal) are not checked.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

log = logging.getLogger(__name__)

#: Debian/Ubuntu packages the xcb platform plugin of the PyQt5 wheels needs (README "Installing")
XCB_PACKAGES = ("libxcb-icccm4", "libxcb-keysyms1", "libxcb-xinerama0", "libxcb-image0",
                "libxcb-render-util0", "libxkbcommon-x11-0")
UNCHECKED_PLATFORMS = ("offscreen", "minimal", "minimalegl", "vnc")
PROBE = "import sys\nfrom PyQt5 import QtWidgets\napp = QtWidgets.QApplication(sys.argv[:1])\nprint('ok')\n"
PROBE_TIMEOUT_S = 30.0


def platform_name(environ: dict[str, str] | None = None) -> str:
    """The platform Qt will use: QT_QPA_PLATFORM's first entry, else the Linux default "xcb"."""
    env = os.environ if environ is None else environ
    requested = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if requested:
        return requested
    return "xcb" if sys.platform.startswith("linux") else sys.platform


def missing_xcb_libraries() -> list[str]:
    """Shared libraries the xcb platform plugin needs but the system lacks (``ldd``; [] if unknown)."""
    from PyQt5.QtCore import QLibraryInfo

    plugin = os.path.join(QLibraryInfo.location(QLibraryInfo.PluginsPath), "platforms", "libqxcb.so")
    if not os.path.exists(plugin):
        return []
    try:
        out = subprocess.run(["ldd", plugin], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    names = [line.split("=>")[0].strip() for line in out.splitlines() if "not found" in line]
    return sorted(set(names))


def platform_problem(environ: dict[str, str] | None = None, python: str = sys.executable) -> str | None:
    """None if Qt can start here, else one line saying why and what to install or set."""
    env = dict(os.environ if environ is None else environ)
    platform = platform_name(env)
    if platform in UNCHECKED_PLATFORMS or not sys.platform.startswith("linux"):
        return None
    try:
        probe = subprocess.run([python, "-c", PROBE], env=env, capture_output=True, text=True,
                               timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("Qt platform probe did not run (%s); starting the window anyway", exc)
        return None
    if probe.returncode == 0 and "ok" in probe.stdout:
        return None
    detail = probe.stderr
    log.debug("Qt platform probe exit %s: %s", probe.returncode, detail)
    missing = missing_xcb_libraries() if platform == "xcb" else []
    no_display = platform == "xcb" and not env.get("DISPLAY")
    if no_display and not missing:
        return ("the GUI needs an X display: DISPLAY is not set (log in to a desktop, use ssh -X, or make "
                "screenshots with QT_QPA_PLATFORM=offscreen)")
    if "platform plugin" in detail or probe.returncode < 0 or probe.returncode == 134:
        if platform == "xcb":
            why = f"missing {', '.join(missing)}" if missing else "missing system libraries?"
            display = "; and DISPLAY is not set" if no_display else ""
            return (f"Qt cannot load its platform plugin 'xcb' ({why}); install: sudo apt-get install "
                    f"{' '.join(XCB_PACKAGES)}{display}")
        return (f"Qt cannot load its platform plugin {platform!r}; check QT_QPA_PLATFORM "
                f"(e.g. xcb, wayland, offscreen)")
    last = detail.strip().splitlines()[-1] if detail.strip() else f"exit status {probe.returncode}"
    return f"Qt cannot start on platform {platform!r}: {last}"
