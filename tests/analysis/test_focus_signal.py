"""Pure signal processing of the focus lock: estimators, quality gate, calibration fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from operascope.analysis.focus_signal import (
    ESTIMATORS,
    CalibrationRefused,
    FocusCalibration,
    QualityGate,
    background_subtract,
    estimate_position_px,
    fit_calibration,
    measure_profile,
)

N_PIXELS = 256


def line(centre_px: float, sigma_px: float = 4.0, peak: float = 1000.0, dark: float = 100.0,
         noise: float = 20.0, seed: int = 0) -> np.ndarray:
    x = np.arange(N_PIXELS, dtype=float)
    values = dark + peak * np.exp(-0.5 * ((x - centre_px) / sigma_px) ** 2)
    return values + np.random.default_rng(seed).normal(0.0, noise, N_PIXELS)


@pytest.mark.parametrize("method", ESTIMATORS)
def test_estimators_are_unbiased_and_subpixel(method):
    rng = np.random.default_rng(1)
    errors = []
    for seed in range(150):
        centre = 128.0 + rng.uniform(-20, 20)
        q = background_subtract(line(centre, seed=seed))
        errors.append(estimate_position_px(q, method) - centre)
    errors = np.asarray(errors)
    assert abs(errors.mean()) < 0.03
    assert errors.std() < 0.1  # px, for SNR 50 and a 4 px line


def test_gaussian_beats_centroid_in_precision():
    rng = np.random.default_rng(2)
    err = {m: [] for m in ("centroid", "gaussian")}
    for seed in range(200):
        centre = 128.0 + rng.uniform(-3, 3)
        q = background_subtract(line(centre, seed=seed, noise=40.0))
        for m in err:
            err[m].append(estimate_position_px(q, m) - centre)
    assert np.std(err["gaussian"]) < np.std(err["centroid"])


def test_position_is_independent_of_reflectivity():
    positions = [measure_profile(line(101.3, peak=peak, noise=0.0)).position_px for peak in (200.0, 1000.0, 3000.0)]
    assert np.ptp(positions) < 1e-3
    assert positions[0] == pytest.approx(101.3, abs=1e-3)


def test_dark_profile_is_subtracted():
    dark = 50.0 * np.sin(np.arange(N_PIXELS) / 5.0) + 300.0
    values = line(90.0, noise=2.0) + dark
    with_dark = measure_profile(values, dark=dark)
    assert with_dark.ok and with_dark.position_px == pytest.approx(90.0, abs=0.05)


def test_gate_passes_a_clean_line_and_reports_width():
    m = measure_profile(line(128.0, sigma_px=5.0))
    assert m.ok, m.reason
    assert m.width_px == pytest.approx(5.0, rel=0.2)
    assert m.snr > 20


@pytest.mark.parametrize(
    "values, reason_word",
    [
        (line(128.0, peak=0.0), "signal-to-noise"),                   # laser off
        (line(1.0), "edge"),                                          # line at the edge
        (np.minimum(line(128.0, peak=3000.0, noise=1.0), 2000.0), "saturated"),  # clipped top
        (line(128.0, sigma_px=0.2, noise=1.0), "width"),              # too narrow (a hot pixel)
    ],
)
def test_gate_rejects_bad_profiles_with_a_reason(values, reason_word):
    m = measure_profile(values)
    assert not m.ok
    assert reason_word in m.reason


def test_gate_against_calibration_reference():
    reference = measure_profile(line(128.0))
    gate = QualityGate().with_reference(reference.intensity, reference.width_px)
    assert measure_profile(line(128.0, seed=5), gate).ok
    dim = measure_profile(line(128.0, peak=150.0, noise=5.0), gate)
    assert not dim.ok and "intensity" in dim.reason
    wide = measure_profile(line(128.0, sigma_px=8.0), gate)
    assert not wide.ok and "width" in wide.reason


def test_saturation_counts_threshold():
    gate = QualityGate(saturation_counts=1000.0)
    m = measure_profile(line(128.0, peak=1200.0), gate)
    assert not m.ok and m.saturated


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="1-D"):
        measure_profile(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="estimator 'magic'"):
        estimate_position_px(np.ones(32), "magic")


# --------------------------------------------------------------------------- calibration fit


def scan(slope=0.02, z_center=1000.0, noise_px=0.02, span=1500.0, step=50.0, seed=0):
    z = z_center + np.arange(-span, span + step / 2, step)
    x = 128.0 + slope * (z - z_center) + np.random.default_rng(seed).normal(0, noise_px, z.size)
    return z, x


def test_fit_recovers_slope_offset_and_residual():
    z, x = scan(slope=-0.02, noise_px=0.02)
    cal = fit_calibration(z, x, np.ones(z.size, bool), 1000.0, 1e4, 4.0)
    assert cal.slope_px_per_nm == pytest.approx(-0.02, rel=0.01)
    assert cal.offset_px == pytest.approx(128.0, abs=0.02)
    assert cal.residual_nm == pytest.approx(1.0, rel=0.35)  # 0.02 px / 0.02 px/nm
    assert cal.r2 > 0.999
    assert (cal.capture_low_nm, cal.capture_high_nm) == (z[0], z[-1])
    assert cal.capture_range_nm == pytest.approx(1500.0)
    assert cal.error_nm(128.0 - 0.02 * 100.0, 128.0) == pytest.approx(100.0, rel=0.01)


def test_capture_range_is_the_contiguous_valid_monotonic_span():
    z, x = scan()
    valid = np.ones(z.size, bool)
    valid[:10] = False          # line off the sensor at one end
    x[-5:] = x[-6]              # the line stops moving at the other end (sensor edge)
    cal = fit_calibration(z, x, valid, 1000.0, 1e4, 4.0)
    assert (cal.capture_low_nm, cal.capture_high_nm) == (z[10], z[-6])
    assert cal.capture_range_nm == pytest.approx(1000.0 - z[10])  # nearer end from the lock point
    assert cal.n_points == z.size - 10 - 5


def test_poor_fits_are_refused_with_a_reason():
    z, x = scan(noise_px=3.0)
    with pytest.raises(CalibrationRefused, match="R²|residual|monotonic"):
        fit_calibration(z, x, np.ones(z.size, bool), 1000.0, 1e4, 4.0)
    z, x = scan()
    with pytest.raises(CalibrationRefused, match="usable line"):
        fit_calibration(z, x, np.zeros(z.size, bool), 1000.0, 1e4, 4.0)
    z, x = scan(slope=1e-6, noise_px=0.0)
    with pytest.raises(CalibrationRefused, match="slope"):
        fit_calibration(z, x, np.ones(z.size, bool), 1000.0, 1e4, 4.0)
    valid = np.ones(z.size, bool)
    valid[25:40] = False        # lock point not inside the capture range
    z, x = scan()
    with pytest.raises(CalibrationRefused, match="does not contain"):
        fit_calibration(z, x, valid, 1000.0, 1e4, 4.0)


def test_calibration_round_trips_through_json():
    z, x = scan()
    cal = fit_calibration(z, x, np.ones(z.size, bool), 1000.0, 1e4, 4.0, n_pixels=256, created_time_s=12.5)
    again = FocusCalibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal
    with pytest.raises(ValueError, match="missing keys"):
        FocusCalibration.from_dict({"slope_px_per_nm": 0.02})
    bad = cal.to_dict() | {"slope_px_per_nm": 0.0}
    with pytest.raises(ValueError, match="non-zero"):
        FocusCalibration.from_dict(bad)
