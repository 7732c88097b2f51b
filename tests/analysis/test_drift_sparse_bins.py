"""Fiducial tracking over sparse bins (a multi-position run's bins of one field are a whole cycle apart):
the spot moves further within one 64-bin chunk than the chunk's window reaches, so the tracker fits such a
chunk again in halves, each re-centred, instead of losing the spot for good."""

from __future__ import annotations

import numpy as np

from operascope.analysis.drift import CHUNK_BINS, measure_drift
from operascope.analysis.fiducial import spot_model


def _frames(n: int, step_px: float, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (200, 200)
    x = 30.0 + step_px * np.arange(n) + rng.normal(0.0, 0.6, n)     # drift plus a return error per visit
    y = 40.0 + 0.5 * step_px * np.arange(n) + rng.normal(0.0, 0.6, n)
    params = np.column_stack([x, y, np.full(n, 1.6), np.full(n, 40_000.0), np.full(n, 100.0)])
    mean, _jac = spot_model(params, shape)
    return rng.poisson(mean).astype(np.float32), np.column_stack([x, y])


def test_a_spot_that_outruns_the_chunk_window_is_never_lost_for_good():
    frames, truth = _frames(CHUNK_BINS + 16, step_px=1.6)      # ~100 px across one chunk, < 5 px per bin
    trace = measure_drift(frames, guess_xy=tuple(truth[0]))
    assert trace.ok.mean() >= 0.8 and trace.ok[-8:].sum() >= 6, [r for r in trace.reasons if r != "ok"][:3]
    ok = trace.ok
    np.testing.assert_allclose(trace.dx_px[ok], (truth[:, 0] - truth[0, 0])[ok], atol=0.1)
    np.testing.assert_allclose(trace.dy_px[ok], (truth[:, 1] - truth[0, 1])[ok], atol=0.1)


def test_a_field_revisited_once_per_cycle_is_tracked_in_every_bin():
    # slow drift (0.3 px per cycle) plus the stage's return error (0.6 px SD) at every visit
    frames, truth = _frames(2 * CHUNK_BINS, step_px=0.3)
    trace = measure_drift(frames, guess_xy=tuple(truth[0]))
    assert trace.ok.all(), [r for r in trace.reasons if r != "ok"][:3]
    np.testing.assert_allclose(trace.dx_px, truth[:, 0] - truth[0, 0], atol=0.1)


def test_dense_bins_are_fitted_a_chunk_at_a_time_as_before():
    frames, truth = _frames(CHUNK_BINS, step_px=0.05)
    trace = measure_drift(frames, guess_xy=tuple(truth[0]))
    assert trace.ok.all()
    np.testing.assert_allclose(trace.dx_px, truth[:, 0] - truth[0, 0], atol=0.1)
