"""acquisition.logs: console levels, the run's rotating log file, the GUI's user log folder."""

from __future__ import annotations

import logging
import re

import pytest

from operascope.acquisition import logs
from operascope.acquisition.cli import main
from operascope.acquisition.events import EventBus, EventLevel

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d ")


def test_level_from_flags():
    assert logs.level_from_flags(None) == logging.WARNING
    assert logs.level_from_flags(None, verbose=1) == logging.INFO
    assert logs.level_from_flags(None, verbose=2) == logging.DEBUG
    assert logs.level_from_flags(None, quiet=1) == logging.ERROR
    assert logs.level_from_flags("debug", quiet=3) == logging.DEBUG
    with pytest.raises(ValueError, match="--log-level"):
        logs.level_from_flags("loud")


def test_log_file_beside_a_run_has_iso_lines_and_is_detached_after(tmp_path):
    run = tmp_path / "run.h5"
    with logs.log_file_beside(run) as path:
        logging.getLogger("operascope.acquisition.test").info("inside")
    logging.getLogger("operascope.acquisition.test").info("outside")
    assert path == tmp_path / "run.log"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and ISO.match(lines[0]) and "inside" in lines[0]


def test_event_bus_logs_events_and_broken_subscribers(caplog):
    bus = EventBus(lambda: 1.0)

    def broken(_event):
        raise RuntimeError("subscriber bug")

    bus.subscribe(broken)
    with caplog.at_level(logging.INFO, logger="operascope"):
        event = bus.emit("warning", "camera", "frame late")
    assert event.level is EventLevel.WARNING and event.level == "warning"
    assert any(r.levelno == logging.WARNING and "frame late" in r.getMessage() for r in caplog.records)
    assert any("subscriber" in r.getMessage() and r.exc_info for r in caplog.records)
    with pytest.raises(ValueError):
        bus.emit("loud", "camera", "no such level")


def test_user_log_dir_follows_the_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(logs.LOG_DIR_ENV, str(tmp_path / "state"))
    path = logs.attach_user_log("gui-test.log")
    try:
        assert path.parent == tmp_path / "state" and path.parent.is_dir()
        logging.getLogger("operascope.gui.test").warning("hello")
        assert "hello" in path.read_text(encoding="utf-8")
    finally:
        root = logging.getLogger("operascope")
        for handler in [h for h in root.handlers if getattr(h, "baseFilename", "") == str(path)]:
            root.removeHandler(handler)
            handler.close()


def test_acquire_leaves_a_log_file_with_engine_and_device_lines(tmp_path):
    out = tmp_path / "run.h5"
    assert main(["acquire", "--out", str(out), "--duration", "2", "--speed", "20", "-q"]) == 0
    lines = (tmp_path / "run.log").read_text(encoding="utf-8").splitlines()
    assert lines and all(ISO.match(line) for line in lines)
    text = "\n".join(lines)
    assert "operascope.acquisition.events" in text and "recording to" in text
    assert "operascope.simulators.devices.camera" in text


def test_acquire_log_file_has_writer_lines(tmp_path):
    out = tmp_path / "run.h5"
    assert main(["acquire", "--out", str(out), "--duration", "2", "--speed", "20", "-q"]) == 0
    assert "operascope.acquisition.run_writer" in (tmp_path / "run.log").read_text(encoding="utf-8")


def test_a_run_log_is_attached_once_even_inside_log_file_beside(tmp_path):
    run = tmp_path / "run.h5"
    with logs.log_file_beside(run) as path:
        assert logs.attach_run_log(run) is None       # the CLI already sends the lines there
    handler = logs.attach_run_log(run)
    try:
        assert handler is not None
        logging.getLogger("operascope.acquisition.test").warning("once")
    finally:
        logs.detach(handler)
    assert path.read_text(encoding="utf-8").count("once") == 1
