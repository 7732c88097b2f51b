"""acquisition.focus_calibration: the calibration file round trip and its clear errors."""

from __future__ import annotations

import pytest

from operascope.acquisition.focus_calibration import load_calibration_file, save_calibration_file
from operascope.acquisition.focus_control import FocusLockError
from operascope.analysis.focus_signal import fit_calibration


def _calibration(n_pixels: int = 128):
    z = [100.0 * k for k in range(-5, 6)]
    return fit_calibration(z, [60.0 + 0.05 * v for v in z], [True] * len(z), z_center_nm=0.0, reference_intensity=100.0,
                           reference_width_px=3.0, n_pixels=n_pixels, created_time_s=1.0)


def test_round_trip_and_errors_name_the_file(tmp_path):
    path = tmp_path / "cal.json"
    calibration = _calibration()
    save_calibration_file(calibration, path)
    assert load_calibration_file(path, 128).slope_px_per_nm == pytest.approx(calibration.slope_px_per_nm)
    with pytest.raises(ValueError, match="128-pixel sensor"):
        load_calibration_file(path, 64)
    with pytest.raises(FocusLockError, match="not found"):
        load_calibration_file(tmp_path / "missing.json", 128)
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json"):
        load_calibration_file(tmp_path / "bad.json", 128)
