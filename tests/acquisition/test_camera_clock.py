"""Camera clock: exposure mid-times from camera stamps, robust to late host reads."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.acquisition.binner import Binner
from operascope.acquisition.camera_clock import CameraClock, ExposureStamper
from operascope.devices.base import Frame


def _frames(n, period_s=0.25, exposure_ms=10.0, offset_s=1234.5, rate=1 + 40e-6, jitter_s=0.5, seed=0):
    """Camera counter from 0 (its own origin, own rate); host reads late by up to ``jitter_s`` (exponential)."""
    rng = np.random.default_rng(seed)
    out, truth = [], []
    for k in range(n):
        cam_ns = int(round(k * period_s * 1e9))
        start_rig = offset_s + rate * k * period_s
        late = rng.exponential(jitter_s / 5) if k % 7 else 0.0   # every 7th read is on time
        out.append(Frame(np.zeros((2, 2), np.uint16), k, cam_ns, start_rig + exposure_ms / 1e3 + late))
        truth.append(start_rig + 0.5 * exposure_ms / 1e3)
    return out, np.array(truth)


def test_lower_envelope_recovers_offset_and_rate_despite_late_reads():
    frames, true_mid = _frames(2000)
    stamper = ExposureStamper(exposure_ms=10.0)
    for f in frames:
        stamper.observe(f)
    fit = stamper.clock.fit()
    assert fit.rate == pytest.approx(1 + 40e-6, abs=2e-6)
    mapped = np.array([stamper.mid_time_s(f.camera_time_ns) for f in frames])
    host = np.array([f.host_time_s for f in frames])
    assert np.max(np.abs(mapped - true_mid)) < 1e-3                 # < 1 ms everywhere
    assert np.median(host - true_mid) > 0.05                         # host times are far off


def test_bin_time_is_the_mean_exposure_mid_time_and_host_time_is_kept():
    frames, true_mid = _frames(40, jitter_s=2.0)
    binner = Binner(20, ExposureStamper(exposure_ms=10.0))
    bins = [b for f in frames if (b := binner.add(f)) is not None]
    assert len(bins) == 2
    # the first bin is mapped with the pairs seen so far (20), the error is still small
    assert bins[0].mid_time_s == pytest.approx(true_mid[:20].mean(), abs=5e-3)
    assert bins[1].mid_time_s == pytest.approx(true_mid[20:].mean(), abs=2e-3)
    assert bins[1].host_time_s == pytest.approx(np.mean([f.host_time_s for f in frames[20:]]))
    assert bins[1].host_time_s > bins[1].mid_time_s
    assert bins[1].camera_times_ns == tuple(f.camera_time_ns for f in frames[20:])


def test_camera_reset_starts_a_new_estimate():
    clock = CameraClock()
    clock.add(5_000_000_000, 100.0)
    clock.add(6_000_000_000, 101.0)
    clock.add(1_000_000_000, 200.0)          # counter went back: power cycle
    assert clock.resets == 1 and clock.pairs == 1
    assert clock.to_rig_s(2_000_000_000) == pytest.approx(201.0)


def test_a_camera_without_running_stamps_falls_back_to_host_times():
    stamper = ExposureStamper(exposure_ms=5.0)
    binner = Binner(3, stamper)
    out = [binner.add(Frame(np.zeros((2, 2), np.uint16), k, 0, 10.0 + k)) for k in range(3)]
    assert stamper.unstamped
    assert out[-1].frame_times_s == (10.0, 11.0, 12.0) and out[-1].mid_time_s == pytest.approx(11.0)


def test_bad_exposure_is_refused():
    with pytest.raises(ValueError, match="exposure"):
        ExposureStamper(exposure_ms=0.0)
