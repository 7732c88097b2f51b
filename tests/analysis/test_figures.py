"""The report figures drawn for speed still show what they showed: envelope traces, the tiled montage."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from operascope.analysis import figures


def _columns(x: np.ndarray, columns: int) -> np.ndarray:
    edges = np.linspace(x[0], x[-1], columns + 1)[1:-1]
    return np.searchsorted(edges, x, side="right")


def test_envelope_keeps_every_columns_extremes_and_order() -> None:
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(0.0, 100.0, 20_000))
    y = np.sin(x) + rng.normal(0.0, 0.5, x.size)
    ex, ey = figures.envelope(x, y, 300)
    assert ex.size <= 4 * 300 and np.all(np.diff(ex) >= 0)                 # thinned, still in time order
    assert ex[0] == x[0] and ex[-1] == x[-1]
    full, thin = _columns(x, 300), _columns(ex, 300)
    for c in np.unique(full):
        assert ey[thin == c].min() == y[full == c].min()
        assert ey[thin == c].max() == y[full == c].max()
    assert set(zip(ex.tolist(), ey.tolist())) <= set(zip(x.tolist(), y.tolist()))   # real points only


@pytest.mark.parametrize("case", ["short", "nan", "unsorted"])
def test_envelope_leaves_traces_it_cannot_thin_alone(case: str) -> None:
    x = np.linspace(0.0, 1.0, 50 if case == "short" else 5000)
    y = np.cos(7 * x)
    if case == "nan":
        y[100:200] = np.nan          # a gap must stay a gap
    if case == "unsorted":
        x = x[::-1].copy()           # e.g. capacity of a discharge
    ex, ey = figures.envelope(x, y, 500)
    np.testing.assert_array_equal(ex, x)
    np.testing.assert_array_equal(ey, y)


def test_montage_tiles_every_image_with_its_colour(tmp_path) -> None:
    images = [np.full((30, 40), v) for v in (-0.1, 0.0, 0.1)]
    images[1][5:10, 5:10] = np.nan                       # NaN shown as 0 (white)
    path = figures.plot_differential_montage(tmp_path / "m.png", images, ["a", "b", "c"], 34.7, limit=0.1)
    picture = imread(path)
    assert picture.shape[1] > picture.shape[0]           # one row of three tiles beside a colour bar
    rgb = picture[..., :3].reshape(-1, 3)
    blue = np.sum((rgb[:, 2] > 0.2) & (rgb[:, 0] < 0.1))
    red = np.sum((rgb[:, 0] > 0.35) & (rgb[:, 1] < 0.1))
    assert blue > 800 and red > 800                     # the -0.1 and +0.1 tiles, at least a tile's pixels each
    with pytest.raises(ValueError, match="one shape"):
        figures.plot_differential_montage(tmp_path / "bad.png", [np.zeros((3, 4)), np.zeros((4, 4))], ["a", "b"], 34.7)
    with pytest.raises(ValueError, match="no differential images"):
        figures.plot_differential_montage(tmp_path / "none.png", [], [], 34.7)


def test_line_figures_are_written_with_their_labels(tmp_path) -> None:
    t = np.linspace(0.0, 1700.0, 6000)
    path = figures.plot_focus_lock(tmp_path / "f.png", t, np.sin(t), 1000.0 * t / t[-1])
    assert imread(path).shape[:2] == (round(4.8 * figures.DPI), round(6.4 * figures.DPI))
    path = figures.plot_drift(tmp_path / "d.png", t[:300], np.arange(300.0), -np.arange(300.0))
    assert path.stat().st_size > 5_000
