"""A simulated --speed beyond the machine's render rate is capped, with a warning naming the achievable speed."""

from __future__ import annotations

import pytest

from operascope.acquisition.settings import config_with_overrides
from operascope.acquisition.speed_cap import (RENDER_SHARE, achievable_speed, cap_config_speed, check_speed,
                                              measure_render_rate_hz)


def test_achievable_speed_is_the_render_share_over_the_frame_rate():
    assert achievable_speed(500.0, 10.0, share=0.5) == pytest.approx(25.0)
    with pytest.raises(ValueError, match="render rate"):
        achievable_speed(0.0, 10.0)


def test_a_speed_within_reach_is_kept_and_one_beyond_is_capped_with_its_figure():
    kept = check_speed(5.0, render_rate_hz=500.0, frame_rate_hz=10.0, share=0.5)
    assert not kept.capped and kept.allowed == 5.0 and kept.warning() is None
    capped = check_speed(60.0, render_rate_hz=500.0, frame_rate_hz=10.0, share=0.5)
    assert capped.capped and capped.allowed == pytest.approx(25.0)
    text = capped.warning()
    assert "--speed 60" in text and "achievable speed 25" in text and "500 frames/s" in text


def test_render_rate_is_measured_on_the_configured_roi():
    small = config_with_overrides(None, {"roi": (0, 0, 64, 64), "particle_model": "uniform"})
    large = config_with_overrides(None, {"roi": (0, 0, 640, 576), "particle_model": "uniform"})
    assert measure_render_rate_hz(small, seconds=0.1) > measure_render_rate_hz(large, seconds=0.1) > 0


def test_simulated_config_too_fast_is_capped_and_real_time_left_alone():
    fast = config_with_overrides(None, {"speed": 10000, "frame_rate_hz": 100.0, "particle_model": "uniform"})
    capped, check = cap_config_speed(fast)
    assert check is not None and check.capped
    assert capped.simulation.speed == pytest.approx(check.allowed) and check.allowed < 10000
    assert check.allowed == pytest.approx(RENDER_SHARE * check.render_rate_hz / 100.0)
    real_time = config_with_overrides(None, {"speed": 1.0})
    same, none = cap_config_speed(real_time)
    assert same is real_time and none is None
