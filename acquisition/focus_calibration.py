"""Focus-lock calibration: the z scan and line-position fit, and the calibration file (JSON)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

import numpy as np

from operascope.acquisition.focus_control import FocusLockError
from operascope.analysis.focus_signal import (
    CalibrationCriteria,
    CalibrationRefused,
    FocusCalibration,
    ProfileMeasurement,
    QualityGate,
    fit_calibration,
)
from operascope.config.schema import FocusLockConfig
from operascope.devices.base import Clock, Positioner

log = logging.getLogger(__name__)


def scan_and_fit(axis: Positioner, clock: Clock, cfg: FocusLockConfig,
                 read_one: Callable[[QualityGate], ProfileMeasurement], n_pixels: int,
                 scan_z: np.ndarray, z_start: float) -> FocusCalibration:
    """Step z through ``scan_z``, read the line at each step, return to ``z_start``, fit position vs z.
    Raises :class:`CalibrationRefused` when no step had a usable line or the fit is poor."""
    gate = QualityGate(min_snr=cfg.min_snr, saturation_counts=cfg.saturation_counts)  # no reference yet
    positions, valid, intensities, widths = [], [], [], []
    try:
        for z in scan_z:
            axis.move_to(float(z))
            axis.wait_settled(timeout_s=10.0, clock=clock)
            clock.sleep_s(cfg.calibration_settle_s)
            reads = [read_one(gate) for _ in range(cfg.calibration_reads)]
            good = [m for m in reads if m.ok]
            enough = len(good) * 2 >= len(reads) and len(good) > 0
            valid.append(enough)
            positions.append(float(np.median([m.position_px for m in good])) if enough else float("nan"))
            intensities.append(float(np.median([m.intensity for m in good])) if enough else float("nan"))
            widths.append(float(np.median([m.width_px for m in good])) if enough else float("nan"))
    finally:
        axis.move_to(z_start)
        axis.wait_settled(timeout_s=10.0, clock=clock)
    ok = np.asarray(valid)
    if not ok.any():
        raise CalibrationRefused(
            "no scan step had a usable line; check that the focus laser is on and the sensor sees the reflection"
        )
    criteria = CalibrationCriteria(
        min_r2=cfg.calibration_min_r2, max_residual_fraction_of_step=cfg.calibration_max_residual_fraction
    )
    return fit_calibration(
        scan_z,
        positions,
        valid,
        z_center_nm=z_start,
        reference_intensity=float(np.nanmedian(intensities)),
        reference_width_px=float(np.nanmedian(widths)),
        criteria=criteria,
        estimator=cfg.estimator,
        n_pixels=n_pixels,
        created_time_s=clock.now_s(),
    )


def save_calibration_file(calibration: FocusCalibration, path: str | Path) -> None:
    """Write ``calibration`` as JSON to ``path``."""
    Path(path).write_text(json.dumps(calibration.to_dict(), indent=2), encoding="utf-8")
    log.info("focus calibration saved to %s", path)


def load_calibration_file(path: str | Path, n_pixels: int) -> FocusCalibration:
    """Read a calibration saved by :func:`save_calibration_file` for a sensor of ``n_pixels``."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        calibration = FocusCalibration.from_dict(data)
    except FileNotFoundError:
        raise FocusLockError(f"{file}: focus calibration file not found") from None
    except (ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file}: not a valid focus calibration: {exc}") from None
    if calibration.n_pixels and calibration.n_pixels != n_pixels:
        raise ValueError(
            f"{file}: calibration was made on a {calibration.n_pixels}-pixel sensor, this one has "
            f"{n_pixels}; calibrate again"
        )
    return calibration
