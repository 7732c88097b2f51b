"""Fiducial fit: exact CRLB against the reference table, and fit precision against the bound."""

import numpy as np
import pytest

from operascope.analysis.fiducial import crlb_of_fit, crlb_xy, fit_boxes, fit_spot, locate_fiducial, spot_model


@pytest.mark.parametrize(
    "photons, background, expected_px",
    [(1e3, 10.0, 0.0563), (5e3, 50.0, 0.0252), (1e5, 1e3, 0.0056)],
)
def test_crlb_matches_reference_table(photons, background, expected_px):
    sx, sy = crlb_xy(photons, background, sigma_px=1.3, box_px=15)
    assert sx == pytest.approx(expected_px, rel=0.01)
    assert sy == pytest.approx(sx, rel=1e-9)


def test_crlb_background_dominated_check_value():
    # C = 0.1 on N_ref = 2e4 photons/px, s = 1.3 px: numeric 0.0605 px in the reference.
    photons = 0.1 * 2e4 * 2 * np.pi * 1.3**2
    assert crlb_xy(photons, 2e4, 1.3, 15)[0] == pytest.approx(0.0605, rel=0.01)


def test_crlb_grows_with_read_noise_and_free_width():
    base = crlb_xy(2e4, 100.0, 3.2, 21)[0]
    assert crlb_xy(2e4, 100.0, 3.2, 21, read_variance=49.0)[0] > base
    assert crlb_xy(2e4, 100.0, 3.2, 21, fit_sigma=True)[0] >= base


def _trials(rng, n, photons, background, sigma, box):
    centre = (box - 1) / 2
    truth = np.column_stack([
        centre + rng.uniform(-0.5, 0.5, n), centre + rng.uniform(-0.5, 0.5, n),
        np.full(n, sigma), np.full(n, photons), np.full(n, background),
    ])
    mu, _ = spot_model(truth, (box, box))
    return truth, rng.poisson(mu).astype(float)


@pytest.mark.parametrize(
    "photons, background, sigma, box",
    [(1e3, 10.0, 1.3, 15), (5e3, 50.0, 1.3, 15), (2e4, 100.0, 3.2, 21), (1e5, 1e3, 3.2, 21)],
)
def test_fit_precision_reaches_crlb(photons, background, sigma, box):
    rng = np.random.default_rng(int(photons))
    truth, data = _trials(rng, 600, photons, background, sigma, box)
    fit = fit_boxes(data)  # 5 free parameters, width fitted
    bound = crlb_xy(photons, background, sigma, box, fit_sigma=True)[0]
    err_x = fit.x_px - truth[:, 0]
    err_y = fit.y_px - truth[:, 1]
    assert fit.converged.all()
    for err in (err_x, err_y):
        rms = np.sqrt(np.mean(err**2))
        assert rms <= 1.2 * bound, (rms, bound)
        assert abs(err.mean()) < 0.15 * bound
    assert np.median(fit.sigma_px) == pytest.approx(sigma, rel=0.03)
    assert np.median(fit.noise_gain) == pytest.approx(1.0, rel=0.1)


def test_fit_spot_full_image_in_adu_with_read_noise():
    rng = np.random.default_rng(5)
    shape = (120, 160)
    truth = np.array([[97.37, 41.81, 3.2, 3e4, 200.0]])
    mu, _ = spot_model(truth, shape)
    gain_adu_per_e = 0.25
    image = (rng.poisson(mu[0]) + rng.normal(0, 7, shape)) * gain_adu_per_e
    fit = fit_spot(image, guess_xy=(95.0, 44.0), read_variance=(7 * gain_adu_per_e) ** 2)
    assert fit.ok, fit.reason
    bound = crlb_xy(3e4, 200.0, 3.2, 21, read_variance=49.0, fit_sigma=True)[0]
    assert abs(fit.x_px - 97.37) < 5 * bound
    assert abs(fit.y_px - 41.81) < 5 * bound
    assert fit.sigma_px == pytest.approx(3.2, rel=0.1)
    # Noise gain recovers the camera gain, so the bound from the fit matches the true one.
    assert crlb_of_fit(fit)[0] == pytest.approx(crlb_xy(3e4, 200.0, 3.2, 21, fit_sigma=True)[0], rel=0.3)


def test_fit_spot_finds_spot_without_guess_and_follows_it_off_centre():
    rng = np.random.default_rng(6)
    truth = np.array([[30.4, 60.2, 3.0, 5e4, 50.0]])
    mu, _ = spot_model(truth, (90, 90))
    image = rng.poisson(mu[0]).astype(float)
    assert fit_spot(image).x_px == pytest.approx(30.4, abs=0.1)
    off = fit_spot(image, guess_xy=(36.0, 55.0))  # 6 px off: box re-centres
    assert off.ok and off.x_px == pytest.approx(30.4, abs=0.1) and off.y_px == pytest.approx(60.2, abs=0.1)


def test_fit_spot_rejects_pure_noise():
    rng = np.random.default_rng(7)
    fit = fit_spot(rng.poisson(100.0, (60, 60)).astype(float), guess_xy=(30.0, 30.0))
    assert not fit.ok
    assert fit.reason != "ok"


def test_fit_spot_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="2-D"):
        fit_spot(np.zeros((3, 30, 30)))
    with pytest.raises(ValueError, match="smaller than the fit box"):
        fit_spot(np.zeros((10, 10)), box_px=21)
    with pytest.raises(ValueError, match="box_px"):
        fit_spot(np.zeros((40, 40)), box_px=3)
    with pytest.raises(ValueError, match="photons"):
        crlb_xy(-1.0, 10.0, 1.3)


def test_locate_fiducial_prefers_small_spot_over_bright_particle():
    rng = np.random.default_rng(8)
    yy, xx = np.mgrid[0:150, 0:200]
    image = 1000.0 + 1500.0 * ((xx - 60) ** 2 + (yy - 70) ** 2 < 35**2)
    spot, _ = spot_model(np.array([[160.2, 40.7, 3.2, 1.5e5, 0.0]]), (150, 200))
    x, y = locate_fiducial(rng.poisson(image + spot[0]).astype(float))
    assert abs(x - 160.2) <= 1.5 and abs(y - 40.7) <= 1.5
