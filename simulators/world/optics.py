"""Image formation of the simulated microscope: pure functions, no state, no devices.

Model (documented choices, all in electrons per pixel per frame):

* **Background (iSCAT-like reference field).** The LED light reflected at the cover glass
  gives a flat field ``B`` scaled by LED current × exposure relative to the reference values,
  times a smooth illumination fall-off fixed to the sensor (1 at the sensor centre, ``1 − f``
  in the corners). Particles and the fiducial scatter *relative* to that field, so the
  normalised image I/B is what carries the sample.
* **Particles** are discs (diameter from config) with a soft edge: the disc is convolved with
  the Gaussian PSF (σ ≈ 111 nm, widened by defocus) plus an intrinsic edge softness, which
  for a disc much larger than σ is 0.5·erfc((r − R)/(√2 σ)). Inside, I = B (1 + c)(1 + κ(θ0 − θ)):
  c is the particle's base contrast, κ the contrast per unit θ removed (intensity rises on
  delithiation). θ comes from the particle model on a pixel grid around the particle centre.
* **Fiducial:** a sub-diffraction spot, a Gaussian PSF of peak contrast C at focus; defocus
  widens it and lowers its peak as σ0²/σ² (the integrated signal is kept).
* **Defocus:** σ(dz) = σ_psf · sqrt(1 + (dz / z_R)²) with z_R = DOF / 2, so the blur grows by √2
  at the edges of the depth of field.
* **Sensor:** shot noise (Gaussian with variance = mean, which matches Poisson to < 1 % above
  ~100 e⁻; exact Poisson is used for dim frames), read noise, full-well clipping, gain, and a
  12-bit ADC (values 0..4095 stored as uint16). Standard normal variates come from
  :class:`GaussianTable` (inverse-CDF lookup of 65 536 quantiles indexed by random 16-bit
  integers: ~5x faster than ``standard_normal``, exact moments, tails cut at ±4.3 σ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import erfc, ndtri

#: Sensor of the FLIR GS3-U3-23S6M-C: (height, width) in pixels.
SENSOR_SHAPE: tuple[int, int] = (1200, 1920)
#: Largest 12-bit ADC value.
ADC_MAX_COUNTS = 4095
#: Gaussian σ of the in-focus PSF, nm (0.21 λ/NA for 740 nm, NA 1.40).
PSF_SIGMA_NM = 111.0
#: Intrinsic softness of a particle edge, nm (added in quadrature to the blur).
PARTICLE_EDGE_SOFTNESS_NM = 40.0
#: Mean signal below which exact Poisson noise is drawn (e⁻ per pixel).
POISSON_EXACT_BELOW_E = 100.0


def defocus_sigma_nm(defocus_nm: float, depth_of_field_nm: float, psf_sigma_nm: float = PSF_SIGMA_NM) -> float:
    """Gaussian blur σ (nm) of a point at ``defocus_nm`` from focus."""
    z_r = 0.5 * depth_of_field_nm
    return psf_sigma_nm * math.sqrt(1.0 + (defocus_nm / z_r) ** 2)


@dataclass(frozen=True)
class ParticleView:
    """One particle as the renderer needs it (image coordinates of the full sensor, nm)."""

    x_nm: float
    y_nm: float
    radius_nm: float
    contrast: float
    kappa: float
    theta0: float
    theta_mean: float
    #: θ on a square grid of pixel pitch centred on the particle, or None if uniform.
    theta_grid: np.ndarray | None = None


@dataclass(frozen=True)
class SceneView:
    """Everything that varies per frame, sampled at the exposure time."""

    background_e: float
    pixel_size_nm: float
    blur_sigma_nm: float
    fiducial_x_nm: float
    fiducial_y_nm: float
    fiducial_peak_contrast: float
    particles: tuple[ParticleView, ...] = field(default_factory=tuple)
    #: Further fiducials of a sample with several (image coordinates, nm); same spot as the first.
    extra_fiducials_nm: tuple[tuple[float, float], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class SensorModel:
    """Camera response: read noise and full well in e⁻, 12-bit output."""

    read_noise_e: float = 7.0
    full_well_e: float = 32_000.0

    @property
    def electrons_per_count(self) -> float:
        """e⁻ per ADC count at 0 dB gain (full well maps to 4095)."""
        return self.full_well_e / ADC_MAX_COUNTS


class RoiGeometry:
    """Static per-ROI pieces: pixel-centre coordinates (nm) and the illumination map."""

    def __init__(self, x0_px: int, y0_px: int, width_px: int, height_px: int, pixel_size_nm: float, falloff: float) -> None:
        self.x0_px, self.y0_px = x0_px, y0_px
        self.width_px, self.height_px = width_px, height_px
        self.pixel_size_nm = pixel_size_nm
        cols = np.arange(x0_px, x0_px + width_px, dtype=np.float64)
        rows = np.arange(y0_px, y0_px + height_px, dtype=np.float64)
        self.x_nm = (cols * pixel_size_nm).astype(np.float64)
        self.y_nm = (rows * pixel_size_nm).astype(np.float64)
        h, w = SENSOR_SHAPE
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        ux = ((cols - cx) ** 2 / (cx**2 + cy**2)).astype(np.float32)
        uy = ((rows - cy) ** 2 / (cx**2 + cy**2)).astype(np.float32)
        self.illumination = (1.0 - falloff * (uy[:, None] + ux[None, :])).astype(np.float32)


def particle_reach_nm(radius_nm: float, blur_sigma_nm: float) -> float:
    """How far from its centre (nm) a particle changes the image: radius + 4 edge σ."""
    return radius_nm + 4.0 * math.hypot(blur_sigma_nm, PARTICLE_EDGE_SOFTNESS_NM)


def fiducial_reach_nm(blur_sigma_nm: float) -> float:
    """How far from its centre (nm) a fiducial spot is drawn: 5 σ."""
    return 5.0 * blur_sigma_nm


def _span(coords_nm: np.ndarray, low_nm: float, high_nm: float) -> slice:
    """Index slice of sorted pixel coordinates within [low, high]."""
    start = int(np.searchsorted(coords_nm, low_nm, side="left"))
    stop = int(np.searchsorted(coords_nm, high_nm, side="right"))
    return slice(start, stop)


def expected_electrons(scene: SceneView, geom: RoiGeometry) -> np.ndarray:
    """Noise-free image (float32, e⁻ per pixel) of the ROI for ``scene``."""
    image = geom.illumination * np.float32(scene.background_e)
    if scene.background_e <= 0:
        return image
    sigma_nm = scene.blur_sigma_nm
    edge_sigma_nm = math.hypot(sigma_nm, PARTICLE_EDGE_SOFTNESS_NM)
    for particle in scene.particles:
        reach = particle_reach_nm(particle.radius_nm, sigma_nm)
        rows = _span(geom.y_nm, particle.y_nm - reach, particle.y_nm + reach)
        cols = _span(geom.x_nm, particle.x_nm - reach, particle.x_nm + reach)
        if rows.start >= rows.stop or cols.start >= cols.stop:
            continue
        dx = (geom.x_nm[cols] - particle.x_nm).astype(np.float32)
        dy = (geom.y_nm[rows] - particle.y_nm).astype(np.float32)
        radius = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
        edge = erfc((radius - np.float32(particle.radius_nm)) * np.float32(1.0 / (math.sqrt(2.0) * edge_sigma_nm)))
        edge *= np.float32(0.5)
        if particle.theta_grid is None:
            gain = (1.0 + particle.contrast) * (1.0 + particle.kappa * (particle.theta0 - particle.theta_mean)) - 1.0
            factor = edge * np.float32(gain)
        else:
            grid = particle.theta_grid
            half = grid.shape[0] // 2
            iy = np.clip(np.rint(dy / geom.pixel_size_nm).astype(np.intp) + half, 0, grid.shape[0] - 1)
            ix = np.clip(np.rint(dx / geom.pixel_size_nm).astype(np.intp) + half, 0, grid.shape[1] - 1)
            theta = grid[iy[:, None], ix[None, :]]
            gain = np.float32(1.0 + particle.contrast) * (np.float32(1.0) + np.float32(particle.kappa) * (np.float32(particle.theta0) - theta)) - np.float32(1.0)
            factor = edge * gain
        image[rows, cols] *= np.float32(1.0) + factor
    if scene.fiducial_peak_contrast > 0:
        peak = scene.fiducial_peak_contrast * (PSF_SIGMA_NM / sigma_nm) ** 2
        for x_nm, y_nm in ((scene.fiducial_x_nm, scene.fiducial_y_nm), *scene.extra_fiducials_nm):
            _draw_spot(image, geom, x_nm, y_nm, sigma_nm, peak)
    return image


def _draw_spot(image: np.ndarray, geom: RoiGeometry, x_nm: float, y_nm: float, sigma_nm: float, peak: float) -> None:
    """Multiply ``image`` by 1 + peak·Gaussian(σ) centred on (x, y) nm, within 5 σ (in place)."""
    reach = fiducial_reach_nm(sigma_nm)
    rows = _span(geom.y_nm, y_nm - reach, y_nm + reach)
    cols = _span(geom.x_nm, x_nm - reach, x_nm + reach)
    if rows.start < rows.stop and cols.start < cols.stop:
        gx = np.exp(-((geom.x_nm[cols] - x_nm) ** 2) / (2 * sigma_nm**2)).astype(np.float32)
        gy = np.exp(-((geom.y_nm[rows] - y_nm) ** 2) / (2 * sigma_nm**2)).astype(np.float32)
        image[rows, cols] *= np.float32(1.0) + np.float32(peak) * gy[:, None] * gx[None, :]


class GaussianTable:
    """Fast standard-normal sampler: the 65 536 quantiles (i + ½)/65 536 of N(0, 1), indexed
    by uniformly random 16-bit integers (inverse-transform sampling on a fine grid)."""

    def __init__(self) -> None:
        self._table = ndtri((np.arange(65_536) + 0.5) / 65_536).astype(np.float32)

    def standard_normal(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """float32 array of N(0, 1) variates."""
        index = rng.integers(0, 65_536, size=int(np.prod(shape)), dtype=np.uint16)
        return self._table.take(index).reshape(shape)


def sensor_counts(
    expected_e: np.ndarray,
    sensor: SensorModel,
    gain_db: float,
    rng: np.random.Generator,
    normal: GaussianTable,
    exact_poisson: bool | None = None,
) -> np.ndarray:
    """One noisy 12-bit frame (uint16, 0..4095) from the expected electrons per pixel.

    ``exact_poisson``: draw exact Poisson shot noise (default: when the mean is below
    :data:`POISSON_EXACT_BELOW_E`); otherwise Gaussian with variance = mean + read noise².
    """
    counts_per_e = np.float32(10.0 ** (gain_db / 20.0) / sensor.electrons_per_count)
    if exact_poisson is None:
        exact_poisson = bool(expected_e.size) and float(expected_e.mean()) < POISSON_EXACT_BELOW_E
    if exact_poisson:
        electrons = rng.poisson(expected_e).astype(np.float32)
        if sensor.read_noise_e > 0:
            electrons += np.float32(sensor.read_noise_e) * normal.standard_normal(expected_e.shape, rng)
        np.clip(electrons, 0.0, sensor.full_well_e, out=electrons)
        electrons *= counts_per_e
        electrons += np.float32(0.5)
    else:
        sigma = expected_e + np.float32(sensor.read_noise_e**2)
        np.sqrt(sigma, out=sigma)
        electrons = normal.standard_normal(expected_e.shape, rng)
        electrons *= sigma
        electrons += expected_e
        # clip to [0, full well] e-, scale to counts, round: folded into one scale and one clip
        electrons *= counts_per_e
        electrons += np.float32(0.5)
        np.clip(electrons, 0.0, np.float32(sensor.full_well_e * counts_per_e + 0.5), out=electrons)
    np.minimum(electrons, np.float32(ADC_MAX_COUNTS), out=electrons)
    return electrons.astype(np.uint16)


def focus_line_profile(
    n_pixels: int,
    centre_px: float,
    sigma_px: float,
    peak_counts: float,
    dark_counts: float,
    noise_counts: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """A 1-D focus-sensor profile (float64 counts): Gaussian line + dark level + Gaussian noise.

    A line whose centre lies off the sensor contributes only its tail (nothing if far away).
    """
    x = np.arange(n_pixels, dtype=np.float64)
    values = dark_counts + peak_counts * np.exp(-((x - centre_px) ** 2) / (2.0 * sigma_px**2))
    if noise_counts > 0:
        values += noise_counts * rng.standard_normal(n_pixels)
    return values
