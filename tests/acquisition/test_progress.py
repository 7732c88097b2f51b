"""Progress display (one updating line on a TTY, periodic lines otherwise) and keyword overrides."""

from __future__ import annotations

import io
import math

import pytest

from operascope.acquisition.progress import ProgressPrinter, format_status
from operascope.acquisition.settings import config_with_overrides
from operascope.acquisition.status import MicroscopeStatus
from operascope.config.loader import ConfigError


def status(**changes) -> MicroscopeStatus:
    values = dict(state="recording", clock_s=100.0, frames_in=500, frames_dropped=3, incomplete_frames=0,
                  recording_path="r.h5", record_elapsed_s=75.0, record_duration_s=1800.0, frames_recorded=740,
                  frames_dropped_in_run=2, bins_written=37, raw_written=0, binner_queue_depth=1,
                  writer_queue_depth=0, consumers=(), voltage_v=3.912, current_a=4e-4, capacity_mAh_g=12.34,
                  protocol="charge", protocol_step=0, protocol_running=True, focus_state="locked",
                  focus_error_nm=-3.2)
    values.update(changes)
    return MicroscopeStatus(**values)


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_status_line_shows_elapsed_remaining_frames_bins_voltage_current_dropped_focus():
    line = format_status(status())
    for text in ("t 0:01:15 (-0:28:45)", "frames 740", "bins 37", "V 3.912", "I 400.0 uA", "Q 12.3 mAh/g",
                 "dropped 2", "focus locked -3 nm", "charge step 0"):
        assert text in line, line
    unknown = format_status(status(voltage_v=math.nan, current_a=math.nan, record_duration_s=None,
                                   focus_error_nm=math.nan, focus_state="off"))
    assert "V -" in unknown and "(-" not in unknown and "focus off |" in unknown


def test_a_tty_gets_one_rewritten_line_and_a_pipe_gets_periodic_lines():
    tty = FakeTty()
    printer = ProgressPrinter(tty)
    for k in range(5):
        printer(status(bins_written=k))
    printer.finish()
    text = tty.getvalue()
    assert text.count("\r") == 5 and text.count("\n") == 1 and "bins 4" in text

    pipe = io.StringIO()
    printer = ProgressPrinter(pipe, every_s=3600.0)
    for k in range(5):
        printer(status(bins_written=k))
    printer(status(state="idle", bins_written=9))       # the final status is always printed
    lines = pipe.getvalue().splitlines()
    assert len(lines) == 2 and "bins 0" in lines[0] and "bins 9" in lines[1]


def test_keyword_overrides_land_in_their_sections_and_unknown_names_are_refused():
    config = config_with_overrides(None, {"speed": 50, "bin_size": 7, "roi": (0, 0, 64, 48), "v_max": 4.2})
    assert config.simulation.speed == 50 and config.acquisition.bin_size == 7
    assert config.acquisition.roi == (0, 0, 64, 48) and config.electrochemistry.v_max == 4.2
    with pytest.raises(ConfigError, match="unknown setting 'warp_speed'"):
        config_with_overrides(None, {"warp_speed": 9})
    with pytest.raises(ConfigError, match="bin_size"):
        config_with_overrides(None, {"bin_size": 0})
