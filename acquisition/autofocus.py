"""Image-based autofocus: a coarse-to-fine z search on an image sharpness measure (Qt-free).

Coarse pass: a wide z scan scored by the high-pass normalised variance of the image (robust far
from focus, where a fiducial is too faint to fit); the best plane is refined by a parabola
through it and its neighbours. Fine pass: a narrow scan around the coarse peak scored by

* ``"fiducial"`` (default): the squared width σ² of the fiducial spot, fitted with
  :func:`operascope.analysis.fiducial.fit_spot`. For a Gaussian-beam-like PSF
  σ²(z) = σ0²·(1 + (z − z_f)²/z_R²) is exactly a parabola in z, so a least-squares parabola
  through σ²(z) has its minimum at best focus z_f;
* ``"variance"``: the high-pass normalised variance (inside ``mask`` when given), a maximum at
  focus (parabolic near it).

The fitted vertex must lie inside the scanned range (else the scan is re-centred, at most
``max_fine_rounds`` times). The axis ends at the best z. Everything is on the rig clock; frames
come from a :class:`FrameSource` and must be exposed after the stage settled.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np
from scipy import ndimage

from operascope.analysis.fiducial import fit_spot, locate_fiducial
from operascope.devices.base import Camera, Clock, Frame, Positioner

log = logging.getLogger(__name__)

__all__ = [
    "AutofocusError",
    "AutofocusResult",
    "AutofocusSettings",
    "CameraFrameSource",
    "FrameSource",
    "LiveFrameSource",
    "ParabolaFit",
    "fiducial_width_sq_px2",
    "fit_parabola",
    "highpass_normalized_variance",
    "run_autofocus",
]

METRICS = ("fiducial", "variance")


class AutofocusError(RuntimeError):
    """Autofocus could not find best focus; the message says why (the axis is back at its start)."""


class FrameSource(Protocol):
    """Frames for focus measurements."""

    def grab(self, n_frames: int) -> np.ndarray:
        """Mean image (float) of ``n_frames`` frames all exposed after this call started."""


@dataclass(frozen=True)
class AutofocusSettings:
    """Scan ranges (nm, ± around the start z), steps (nm), frames averaged per plane, metric."""

    coarse_range_nm: float = 1500.0
    coarse_step_nm: float = 250.0
    fine_range_nm: float = 300.0
    fine_step_nm: float = 50.0
    frames_per_plane: int = 3
    metric: str = "fiducial"
    max_fine_rounds: int = 3
    settle_timeout_s: float = 10.0
    skip_coarse: bool = False

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"autofocus metric {self.metric!r} is not one of {', '.join(METRICS)}")
        for name in ("coarse_range_nm", "coarse_step_nm", "fine_range_nm", "fine_step_nm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"autofocus {name} must be > 0, got {value}")
        if self.fine_range_nm < 2 * self.fine_step_nm or self.coarse_range_nm < self.coarse_step_nm:
            raise ValueError("autofocus ranges must hold at least 3 planes (range >= 2 x step for the fine scan)")
        if self.frames_per_plane < 1:
            raise ValueError(f"autofocus frames_per_plane must be >= 1, got {self.frames_per_plane}")


@dataclass(frozen=True)
class ParabolaFit:
    """y = a·(z − z0)² + c fitted by least squares; ``z0_sigma_nm`` from the fit covariance."""

    a: float
    z0_nm: float
    c: float
    r2: float
    z0_sigma_nm: float


@dataclass(frozen=True)
class AutofocusResult:
    """Outcome of one autofocus: best z, the metric curves and the fit; times on the rig clock."""

    best_z_nm: float
    start_z_nm: float
    metric: str
    z_nm: tuple[float, ...]
    values: tuple[float, ...]
    coarse_z_nm: tuple[float, ...]
    coarse_values: tuple[float, ...]
    fit: ParabolaFit
    duration_s: float
    wall_s: float
    planes: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """Plain numbers for an event or a JSON file."""
        return asdict(self)

    def summary(self) -> str:
        """One line for the event log."""
        return (f"autofocus: best z {self.best_z_nm:.1f} nm (moved {self.best_z_nm - self.start_z_nm:+.1f} nm, "
                f"± {self.fit.z0_sigma_nm:.1f} nm, {self.metric} fit R² {self.fit.r2:.3f}); {self.planes} planes in "
                f"{self.duration_s:.1f} s rig time")


# --------------------------------------------------------------------------- metrics


def highpass_normalized_variance(image: np.ndarray, mask: np.ndarray | None = None, scale_px: float = 8.0) -> float:
    """Variance of I / smooth(I) − 1 (the illumination field divided out), inside ``mask`` if given."""
    img = np.asarray(image, dtype=np.float64)
    smooth = ndimage.gaussian_filter(img, scale_px, mode="nearest")
    ratio = img / np.maximum(smooth, 1e-9) - 1.0
    values = ratio[mask] if mask is not None else ratio
    if values.size < 2:
        raise ValueError("the mask for the variance metric selects fewer than 2 pixels")
    return float(np.var(values))


def fiducial_width_sq_px2(image: np.ndarray, guess_xy: tuple[float, float]) -> float:
    """σ² (px²) of the fiducial spot near ``guess_xy``; NaN when the fit is rejected."""
    fit = fit_spot(np.asarray(image, dtype=np.float64), guess_xy, box_px=21, max_box_px=41, min_snr=3.0)
    return fit.sigma_px ** 2 if fit.ok else float("nan")


def fit_parabola(z_nm: Sequence[float], values: Sequence[float]) -> ParabolaFit:
    """Least-squares parabola through the finite points; ValueError with fewer than 3."""
    z = np.asarray(z_nm, dtype=float)
    y = np.asarray(values, dtype=float)
    ok = np.isfinite(z) & np.isfinite(y)
    if ok.sum() < 3:
        raise ValueError(f"a parabola needs 3 usable planes, got {int(ok.sum())}")
    z, y = z[ok], y[ok]
    centre = float(np.mean(z))
    scale = float(np.ptp(z)) or 1.0
    u = (z - centre) / scale
    if ok.sum() > 3:
        coeffs, cov = np.polyfit(u, y, 2, cov=True)
    else:
        coeffs, cov = np.polyfit(u, y, 2), np.full((3, 3), np.nan)   # exact through 3 points: no error estimate
    a, b, c = (float(v) for v in coeffs)
    residual = y - np.polyval(coeffs, u)
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual ** 2)) / total if total > 0 else 0.0
    if a == 0.0:
        return ParabolaFit(0.0, float("nan"), c, r2, float("inf"))
    u0 = -b / (2.0 * a)
    grad = np.array([b / (2.0 * a * a), -1.0 / (2.0 * a), 0.0])   # d u0 / d(a, b, c)
    u0_var = float(grad @ cov @ grad)
    return ParabolaFit(a / scale ** 2, centre + u0 * scale, c - b * b / (4.0 * a), r2,
                       math.sqrt(max(u0_var, 0.0)) * scale)


# --------------------------------------------------------------------------- frame sources


class CameraFrameSource:
    """Reads frames straight from a camera that nobody else streams (started/stopped per grab)."""

    def __init__(self, camera: Camera, timeout_s: float = 5.0, skip_frames: int = 1) -> None:
        self._camera = camera
        self._timeout_s = timeout_s
        self._skip = skip_frames

    def grab(self, n_frames: int) -> np.ndarray:
        if self._camera.is_streaming:
            raise AutofocusError("the camera is already streaming; use LiveFrameSource on the live view instead")
        self._camera.start()
        try:
            frames = [self._camera.read(self._timeout_s) for _ in range(n_frames + self._skip)]
        finally:
            self._camera.stop()
        return np.mean([f.pixels for f in frames[self._skip:]], axis=0, dtype=np.float64)


class LiveFrameSource:
    """Frames from a streaming camera's newest-frame slot (``peek() -> Frame | None``).

    With ``latch`` (the camera's :meth:`~operascope.devices.base.Camera.timestamp_now_ns`) only frames whose
    exposure *started* after :meth:`grab` was called are used, however late the host reads them (a
    frame read from the camera's buffer after a z move may have been exposed before it). Without a
    latch (or a camera that does not stamp its frames) only frames with an id at least two above the
    newest id seen when :meth:`grab` starts are used, which holds only while the reader keeps up.
    """

    def __init__(self, peek: Callable[[], Frame | None], timeout_wall_s: float = 30.0, poll_wall_s: float = 0.001,
                 latch: Callable[[], int | None] | None = None) -> None:
        self._peek = peek
        self._timeout_wall_s = timeout_wall_s
        self._poll_wall_s = poll_wall_s
        self._latch = latch

    def _is_new(self, since_ns: int | None, first_id: int) -> Callable[[Frame], bool]:
        def is_new(frame: Frame) -> bool:
            if since_ns is not None and frame.camera_time_ns > 0:
                return frame.camera_time_ns >= since_ns
            return frame.frame_id >= first_id
        return is_new

    def grab(self, n_frames: int) -> np.ndarray:
        since_ns = self._latch() if self._latch is not None else None
        newest = self._peek()
        is_new = self._is_new(since_ns, newest.frame_id + 2 if newest is not None else -1)
        taken: dict[int, np.ndarray] = {}
        deadline = time.monotonic() + self._timeout_wall_s
        while len(taken) < n_frames:
            frame = self._peek()
            if frame is not None and frame.frame_id not in taken and is_new(frame):
                taken[frame.frame_id] = frame.pixels
            elif time.monotonic() > deadline:
                raise AutofocusError(f"only {len(taken)} of {n_frames} new camera frames within "
                                     f"{self._timeout_wall_s:g} s; is the camera streaming?")
            else:
                time.sleep(self._poll_wall_s)
        return np.mean(list(taken.values()), axis=0, dtype=np.float64)


# --------------------------------------------------------------------------- the search


class _Scanner:
    """Moves the axis plane by plane and scores each plane."""

    def __init__(self, axis: Positioner, clock: Clock, source: FrameSource, settings: AutofocusSettings) -> None:
        self.axis, self.clock, self.source, self.settings = axis, clock, source, settings
        self.planes = 0

    def image_at(self, z_nm: float) -> np.ndarray:
        self.axis.move_to(float(z_nm))
        self.axis.wait_settled(timeout_s=self.settings.settle_timeout_s, clock=self.clock)
        self.planes += 1
        return self.source.grab(self.settings.frames_per_plane)

    def scan(self, z_values: np.ndarray, metric: Callable[[np.ndarray], float]) -> list[float]:
        return [metric(self.image_at(z)) for z in z_values]


def _plane_grid(centre_nm: float, range_nm: float, step_nm: float, limits_nm: tuple[float, float]) -> np.ndarray:
    n = int(math.floor(range_nm / step_nm + 1e-9))
    grid = centre_nm + step_nm * np.arange(-n, n + 1)
    inside = grid[(grid >= limits_nm[0]) & (grid <= limits_nm[1])]
    if inside.size < 3:
        raise AutofocusError(f"fewer than 3 planes of the scan around {centre_nm:.0f} nm lie within the z soft limits")
    return inside


def _coarse_peak(z: np.ndarray, values: list[float]) -> float:
    """z of the largest value, refined by a parabola through it and its two neighbours."""
    y = np.asarray(values, dtype=float)
    if not np.isfinite(y).any():
        raise AutofocusError("no plane of the coarse scan gave a usable image")
    k = int(np.nanargmax(y))
    if 0 < k < len(z) - 1 and np.all(np.isfinite(y[k - 1:k + 2])):
        fit = fit_parabola(z[k - 1:k + 2], y[k - 1:k + 2])
        if fit.a < 0 and abs(fit.z0_nm - z[k]) <= abs(z[1] - z[0]):
            return float(fit.z0_nm)
    return float(z[k])


def run_autofocus(axis: Positioner, clock: Clock, source: FrameSource, settings: AutofocusSettings | None = None,
                  mask: np.ndarray | None = None, fiducial_xy_px: tuple[float, float] | None = None) -> AutofocusResult:
    """Find best focus around the axis' current target and leave the axis there.

    Raises :class:`AutofocusError` (axis back at its start) when no peak is found.
    """
    settings = settings or AutofocusSettings()
    t0, wall0 = clock.now_s(), time.monotonic()
    start_z = float(axis.target_nm())
    limits = axis.limits_nm
    scanner = _Scanner(axis, clock, source, settings)
    notes: list[str] = []

    def variance(image: np.ndarray) -> float:
        return highpass_normalized_variance(image, mask)

    try:
        centre = start_z
        coarse_z: np.ndarray = np.empty(0)
        coarse_values: list[float] = []
        if not settings.skip_coarse:
            coarse_z = _plane_grid(start_z, settings.coarse_range_nm, settings.coarse_step_nm, limits)
            coarse_values = scanner.scan(coarse_z, variance)
            centre = _coarse_peak(coarse_z, coarse_values)
        metric_name = settings.metric
        if metric_name == "fiducial":
            guess = fiducial_xy_px or locate_fiducial(scanner.image_at(centre))
            metric: Callable[[np.ndarray], float] = lambda image: fiducial_width_sq_px2(image, guess)  # noqa: E731
        else:
            metric = variance
        fit, z_fine, fine_values = None, np.empty(0), []
        for _round in range(settings.max_fine_rounds):
            z_fine = _plane_grid(centre, settings.fine_range_nm, settings.fine_step_nm, limits)
            fine_values = scanner.scan(z_fine, metric)
            usable = int(np.isfinite(fine_values).sum())
            if metric_name == "fiducial" and usable < 5:
                notes.append(f"fiducial fits failed on {len(z_fine) - usable} of {len(z_fine)} planes; "
                             "used the variance metric instead")
                metric_name, metric = "variance", variance
                fine_values = scanner.scan(z_fine, metric)
            fit = fit_parabola(z_fine, fine_values)
            opens_correctly = fit.a > 0 if metric_name == "fiducial" else fit.a < 0
            if not opens_correctly or not math.isfinite(fit.z0_nm):
                raise AutofocusError(f"the {metric_name} metric has no {'minimum' if metric_name == 'fiducial' else 'maximum'} "
                                     f"between {z_fine[0]:.0f} and {z_fine[-1]:.0f} nm (fit R² {fit.r2:.2f})")
            if z_fine[0] <= fit.z0_nm <= z_fine[-1]:
                break
            notes.append(f"peak {fit.z0_nm:.0f} nm outside the fine scan; re-centred")
            centre = float(min(max(fit.z0_nm, z_fine[0] - settings.fine_range_nm), z_fine[-1] + settings.fine_range_nm))
        else:
            raise AutofocusError(f"best focus not bracketed after {settings.max_fine_rounds} fine scans "
                                 f"(last estimate {fit.z0_nm:.0f} nm)")
        best = float(fit.z0_nm)
        axis.move_to(best)
        axis.wait_settled(timeout_s=settings.settle_timeout_s, clock=clock)
    except BaseException:
        axis.move_to(start_z)
        axis.wait_settled(timeout_s=settings.settle_timeout_s, clock=clock)
        raise
    result = AutofocusResult(
        best_z_nm=best, start_z_nm=start_z, metric=metric_name,
        z_nm=tuple(float(v) for v in z_fine), values=tuple(float(v) for v in fine_values),
        coarse_z_nm=tuple(float(v) for v in coarse_z), coarse_values=tuple(float(v) for v in coarse_values),
        fit=fit, duration_s=clock.now_s() - t0, wall_s=time.monotonic() - wall0, planes=scanner.planes,
        notes=tuple(notes))
    log.info(result.summary())
    return result
