"""Entry point of ``operascope gui``: build the window over the engine, optionally screenshot and quit."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

from PyQt5 import QtCore, QtWidgets

from operascope.config.schema import RigConfig

log = logging.getLogger(__name__)

DEFAULT_SCREENSHOT_DELAY_S = 5.0
SETTINGS_ORGANISATION = "operascope"
SETTINGS_APPLICATION = "operascope-gui"


def make_settings(settings_file: str | Path | None = None) -> QtCore.QSettings:
    """QSettings in an INI file at ``settings_file`` (tests use a temp dir), else the user's default place."""
    if settings_file is not None:
        return QtCore.QSettings(str(settings_file), QtCore.QSettings.IniFormat)
    return QtCore.QSettings(QtCore.QSettings.IniFormat, QtCore.QSettings.UserScope,
                            SETTINGS_ORGANISATION, SETTINGS_APPLICATION)


def default_microscope_factory(config: RigConfig) -> Callable[[], Any]:
    """A callable that builds (not yet opens) the engine for ``config``; called on the worker thread."""

    def build() -> Any:
        from operascope.acquisition.microscope import Microscope

        return Microscope(config)  # its focus service publishes the focus-sensor profiles

    return build


def attach_factory() -> Callable[[], Any]:
    """A callable that attaches to the running engine service (``operascope serve``) as the GUI client."""

    def attach() -> Any:
        from operascope.service.client import connect

        return connect(client_name="gui")

    return attach


def build_window(config: RigConfig, settings: QtCore.QSettings,
                 open_microscope: Callable[[], Any] | None = None, refresh_hz: float | None = None,
                 attached: bool = False):
    """Create the bridge and the main window, start opening the rig; returns the window (shown by caller)."""
    from operascope.gui.engine_bridge import EngineBridge
    from operascope.gui.main_window import DEFAULT_REFRESH_HZ, MainWindow

    bridge = EngineBridge(open_microscope or (attach_factory() if attached else default_microscope_factory(config)))
    bridge.is_attached = attached
    window = MainWindow(bridge, config, settings, refresh_hz=refresh_hz or DEFAULT_REFRESH_HZ)
    bridge.setParent(window)
    bridge.open()
    return window


def save_screenshot(window: QtWidgets.QWidget, path: str | Path) -> bool:
    """Render ``window`` into a PNG at ``path``; True on success."""
    target = Path(path)
    if target.parent and not target.parent.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
    return bool(window.grab().save(str(target)))


_QUIET_QT_MESSAGES = ("propagateSizeHints", "XDG_RUNTIME_DIR")


def _qt_cannot_start() -> bool:
    """Print one line and return True if Qt's platform plugin cannot load (checked before any QApplication)."""
    from operascope.gui.platform_check import platform_problem

    if QtWidgets.QApplication.instance() is not None:
        return False
    problem = platform_problem()
    if problem is not None:
        print(f"operascope-gui: error: {problem}", file=sys.stderr)
    return problem is not None


def _quiet_qt_messages(mode, context, message: str) -> None:
    """Drop known harmless platform-plugin chatter (offscreen screenshots); print the rest."""
    if not any(part in message for part in _QUIET_QT_MESSAGES):
        print(message, file=sys.stderr)


def main(config_path: str | None = None, screenshot: str | None = None, quit_after_s: float | None = None,
         settings_file: str | None = None, protocol: str | None = None, focus_lock: bool = False,
         speed: float | None = None, open_path: str | None = None, attach: bool = False) -> int:
    """Run the GUI. With ``screenshot`` save the window after ``quit_after_s`` (default 5 s) and exit.

    ``protocol`` (e.g. "charge") starts that protocol with the config's parameters as soon as the rig
    is open, ``focus_lock`` locks the focus then; ``speed`` sets a simulated rig's clock speed.
    ``open_path`` opens that run file in the run browser instead of the live window (no rig).

    Returns the process exit status: 0 ok, 1 screenshot failed, 2 bad configuration or arguments, or Qt
    cannot load its platform plugin (one line naming the packages to install).
    """
    from operascope.config.loader import ConfigError, load_config

    if quit_after_s is not None and not (quit_after_s >= 0):
        print(f"operascope: error: --quit-after must be >= 0 seconds, got {quit_after_s}", file=sys.stderr)
        return 2
    if screenshot is not None and Path(screenshot).suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
        print(f"operascope: error: --screenshot must end in .png, .jpg or .bmp, got {screenshot!r}", file=sys.stderr)
        return 2
    if _qt_cannot_start():
        return 2
    if open_path is not None:
        return _browse(open_path, screenshot, quit_after_s)
    try:
        config = load_config(config_path)
        if speed is not None:
            config.simulation.speed = speed
    except (ConfigError, ValueError) as exc:
        print(f"operascope: error: {exc}", file=sys.stderr)
        return 2

    from operascope.acquisition.logs import attach_user_log

    log.info("GUI session log: %s", attach_user_log("gui.log"))   # $OPERASCOPE_LOG_DIR or ~/.local/state/operascope
    previous_handler = QtCore.qInstallMessageHandler(_quiet_qt_messages)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    window = build_window(config, make_settings(settings_file), attached=attach)
    window.show()
    if protocol is not None:
        window.bridge.opened.connect(lambda: window.bridge.start_protocol(protocol))
    if focus_lock:
        window.bridge.opened.connect(window.bridge.focus_lock)
    status = {"code": 0}

    def report_unhandled(kind, value, trace) -> None:
        """An exception escaping a Qt slot is printed and shown; PyQt would otherwise abort the process."""
        traceback.print_exception(kind, value, trace)
        window.report_error("gui", f"unexpected {kind.__name__}: {value}")

    previous_hook, sys.excepthook = sys.excepthook, report_unhandled
    try:
        return _run_event_loop(app, window, screenshot, quit_after_s, status)
    finally:
        sys.excepthook = previous_hook
        QtCore.qInstallMessageHandler(previous_handler)


def _browse(open_path: str, screenshot: str | None, quit_after_s: float | None) -> int:
    """The run browser over ``open_path`` (exit 2 with one line if the file is not a readable run)."""
    from operascope.analysis.errors import RunFileError
    from operascope.gui.run_browser import RunBrowser

    previous_handler = QtCore.qInstallMessageHandler(_quiet_qt_messages)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    try:
        try:
            window = RunBrowser(open_path)
        except RunFileError as exc:
            print(f"operascope: error: --open: {exc}", file=sys.stderr)
            return 2
        window.show()
        return _run_event_loop(app, window, screenshot, quit_after_s, {"code": 0})
    finally:
        QtCore.qInstallMessageHandler(previous_handler)


def _run_event_loop(app: QtWidgets.QApplication, window: QtWidgets.QWidget, screenshot: str | None,
                    quit_after_s: float | None, status: dict) -> int:
    """Run Qt until the window closes; with ``screenshot``/``quit_after_s`` save and close after the delay."""
    if screenshot is not None or quit_after_s is not None:
        delay_s = quit_after_s if quit_after_s is not None else DEFAULT_SCREENSHOT_DELAY_S

        def finish() -> None:
            if screenshot is not None:
                if save_screenshot(window, screenshot):
                    print(f"screenshot saved to {screenshot}", flush=True)
                else:
                    print(f"operascope: error: could not write screenshot {screenshot}", file=sys.stderr)
                    status["code"] = 1
            window.close_without_asking()

        QtCore.QTimer.singleShot(int(delay_s * 1000), finish)

    app.exec_()
    return status["code"]
