"""PNG figures for the analysis reports (matplotlib, Agg canvas; no pyplot global state).

Drawn for speed (issue 16 item 4: the figures were ~40 % of `operascope analyze`): fixed margins in inches instead
of ``tight_layout`` (which lays every text out twice), dense traces drawn as their per-pixel-column min/max
envelope (the same ink, a fraction of the vertices), the differential montage as one tiled image on one axes,
and PNG written with fast zlib compression.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

DPI = 110
#: zlib level of the PNG files (1: fast; the figures are flat colour and lines, so they stay small).
PNG_COMPRESS_LEVEL = 1
#: Margins (inches) around the plot area: left (tick labels + y label), right, bottom (ticks + x label), top (title).
MARGINS_IN = (0.8, 0.2, 0.55, 0.4)


def _new_figure(width_in: float = 6.4, height_in: float = 4.0, margins_in: tuple[float, float, float, float]
                = MARGINS_IN, hspace: float = 0.2) -> Figure:
    """A figure on an Agg canvas with fixed margins (in inches, so text has the same room at any size)."""
    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    left, right, bottom, top = margins_in
    fig.subplots_adjust(left=left / width_in, right=1.0 - right / width_in, bottom=bottom / height_in,
                        top=1.0 - top / height_in, hspace=hspace)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})
    return path


def envelope(x: np.ndarray, y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` thinned for drawing a line ``columns`` pixels wide: in each of ``columns`` equal x bins the
    first, the minimum, the maximum and the last point (in their order), so the drawn line covers the same pixels
    as the full trace. Traces with fewer than 4 points per column, or non-finite / unsorted x, come back as given."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.size < 4 * columns or xs.shape != ys.shape or not np.isfinite(xs).all() or np.any(np.diff(xs) < 0):
        return xs, ys
    if not np.isfinite(ys).all():
        return xs, ys          # gaps must stay gaps: draw such a trace in full
    edges = np.searchsorted(xs, np.linspace(xs[0], xs[-1], columns + 1)[1:-1])
    starts = np.unique(np.concatenate([[0], edges]))
    stops = np.append(starts[1:], xs.size)
    lo = np.minimum.reduceat(ys, starts)
    hi = np.maximum.reduceat(ys, starts)
    # positions of the min and max in each bin (first occurrence), kept in time order with the bin's ends
    bin_of = np.repeat(np.arange(starts.size), stops - starts)
    at_lo = np.flatnonzero(ys == lo[bin_of])
    at_hi = np.flatnonzero(ys == hi[bin_of])
    first_lo = at_lo[np.unique(bin_of[at_lo], return_index=True)[1]]
    first_hi = at_hi[np.unique(bin_of[at_hi], return_index=True)[1]]
    keep = np.unique(np.concatenate([starts, stops - 1, first_lo, first_hi]))
    return xs[keep], ys[keep]


def _add_axes(fig: Figure, *grid: int, **kwargs):
    """``fig.add_subplot(*grid)`` with at most ~6 ticks per linear axis (each tick label is laid out and drawn)."""
    ax = fig.add_subplot(*grid, **kwargs)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    return ax


def _title(ax, text: str) -> None:
    """Axes title at a fixed height (an automatic one measures every tick label to dodge them)."""
    ax.set_title(text, y=1.0, pad=6.0)


def _plot_columns(fig: Figure) -> int:
    """Width of the plot area in pixels."""
    return max(int(fig.get_figwidth() * DPI * (fig.subplotpars.right - fig.subplotpars.left)), 1)


def plot_drift(path: Path, time_s: np.ndarray, dx_nm: np.ndarray, dy_nm: np.ndarray,
               truth: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """Drift trace (nm) against time; dashed ground truth when given."""
    fig = _new_figure()
    ax = _add_axes(fig)
    ax.plot(time_s, dx_nm, ".-", ms=3, label="x (fiducial)")
    ax.plot(time_s, dy_nm, ".-", ms=3, label="y (fiducial)")
    if truth is not None:
        ax.plot(time_s, truth[0], "k--", lw=1, label="x truth")
        ax.plot(time_s, truth[1], "k:", lw=1, label="y truth")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("drift (nm)")
    ax.legend(fontsize=8)
    _title(ax, "Lateral drift from the fiducial spot")
    return _save(fig, path)


def _tile(images: Sequence[np.ndarray], cols: int, gap_px: int, label_px: int) -> np.ndarray:
    """The images (all one shape) on a grid ``cols`` wide: each tile has a strip of ``label_px`` above it, and
    tiles are ``gap_px`` apart; strips and gaps are NaN (drawn as background)."""
    h, w = images[0].shape
    rows = int(np.ceil(len(images) / cols))
    pitch_r, pitch_c = label_px + h + gap_px, w + gap_px
    canvas = np.full((rows * pitch_r - gap_px, cols * pitch_c - gap_px), np.nan, dtype=np.float32)
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        canvas[r * pitch_r + label_px:r * pitch_r + label_px + h, c * pitch_c:c * pitch_c + w] = im
    return canvas


def plot_differential_montage(path: Path, images: Sequence[np.ndarray], labels: Sequence[str],
                              pixel_size_nm: float, scale_bar_um: float = 1.0,
                              limit: float | None = None) -> Path:
    """Montage of differential images, diverging colormap centred on 0, NaN shown as 0, scale bar.

    Drawn as one tiled image on one axes (one artist instead of a subplot per frame), each tile labelled above."""
    n = len(images)
    if n == 0:
        raise ValueError("no differential images to plot")
    shapes = {np.shape(im) for im in images}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"montage images must be 2-D and of one shape, got shapes {sorted(shapes)}")
    cols = min(n, 4)
    h, w = next(iter(shapes))
    if limit is None:
        values = np.concatenate([np.abs(im[np.isfinite(im)]).ravel() for im in images] + [np.zeros(1)])
        limit = float(np.percentile(values, 99)) if values.size > 1 else 0.1
        limit = limit if limit > 0 else 0.1
    gap = max(int(round(0.06 * w)), 2)
    label_px = max(int(round(0.14 * h)), 8)                   # room above each tile for its label
    canvas = _tile([np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0) for im in images], cols, gap, label_px)
    # one screen pixel per image pixel where that fits 5-15 inches (no resampling, no more pixels than data)
    image_w_in = float(np.clip(canvas.shape[1] / DPI, 5.0, 15.0))
    width_in = image_w_in + 1.3
    height_in = image_w_in * canvas.shape[0] / canvas.shape[1] + 0.2
    fig = _new_figure(width_in, height_in, margins_in=(0.1, 1.2, 0.1, 0.1))
    ax = fig.add_subplot()
    # coloured here (one 256-entry lookup; gaps white), so the drawing resamples bytes, not a masked float array
    cmap, norm = _diverging_map(), Normalize(vmin=-limit, vmax=limit)
    ax.imshow(cmap(norm(np.ma.masked_invalid(canvas)), bytes=True), interpolation="nearest", aspect="equal")
    ax.set_axis_off()
    bar_px = scale_bar_um * 1000.0 / pixel_size_nm
    for k, label in enumerate(labels[:n]):
        r, c = divmod(k, cols)
        top, left = r * (label_px + h + gap) + label_px, c * (w + gap)
        ax.text(left + w / 2, top - 1.5, label, ha="center", va="bottom", fontsize=8)
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), w, h, fill=False, lw=0.6, ec="0.3", clip_on=False))
        if bar_px < 0.8 * w:
            x0, y0 = left + w - bar_px - 0.05 * w, top + h - 0.08 * h
            ax.add_patch(Rectangle((x0, y0), bar_px, max(0.02 * h, 1.5), color="black"))
            if k == 0:
                ax.text(x0 + bar_px / 2, y0 - 0.02 * h, f"{scale_bar_um:g} µm", ha="center", va="bottom", fontsize=7)
    cax = fig.add_axes((1.0 - 1.1 / width_in, 0.15, 0.16 / width_in, 0.7))
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, label="ΔI / I₁")
    return _save(fig, path)


def _diverging_map():
    """RdBu_r with masked pixels (the gaps between tiles) drawn white."""
    from matplotlib import colormaps

    return colormaps["RdBu_r"].with_extremes(bad="white")


def plot_com_vs_soc(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """COM distance (nm) against state of charge, one curve per particle."""
    fig = _new_figure()
    ax = _add_axes(fig)
    for name, (soc, distance_nm) in curves.items():
        ax.plot(soc, distance_nm, ".-", ms=3, label=name)
    ax.set_xlabel("state of charge (capacity / nominal)")
    ax.set_ylabel("COM distance unreacted–particle (nm)")
    if curves:
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_voltage_capacity(path: Path, capacity_mAh_g: np.ndarray, voltage_v: np.ndarray) -> Path:
    """Voltage against capacity."""
    fig = _new_figure()
    ax = _add_axes(fig)
    ax.plot(*envelope(capacity_mAh_g, voltage_v, _plot_columns(fig)), "-", lw=1)
    ax.set_xlabel("capacity (mAh/g)")
    ax.set_ylabel("voltage (V vs Li/Li⁺)")
    return _save(fig, path)


def plot_focus_lock(path: Path, time_s: np.ndarray, error_nm: np.ndarray, z_nm: np.ndarray | None) -> Path:
    """Focus-lock error (nm) and objective z (µm) against time."""
    fig = _new_figure(6.4, 4.8, margins_in=(0.8, 0.2, 0.55, 0.15), hspace=0.25)
    columns = _plot_columns(fig)
    ax = _add_axes(fig, 2 if z_nm is not None else 1, 1, 1)
    ax.plot(*envelope(time_s, error_nm, columns), "-", lw=0.8)
    ax.set_ylabel("lock error (nm)")
    if z_nm is not None:
        ax2 = _add_axes(fig, 2, 1, 2, sharex=ax)
        ax2.plot(*envelope(time_s, np.asarray(z_nm) / 1000.0, columns), "-", lw=0.8, color="C1")
        ax2.set_ylabel("z (µm)")
        ax2.set_xlabel("time (s)")
    else:
        ax.set_xlabel("time (s)")
    return _save(fig, path)


def plot_cycling(path: Path, cycles: np.ndarray, charge_mAh_g: np.ndarray, discharge_mAh_g: np.ndarray) -> Path:
    """Capacity per cycle (cyclability)."""
    fig = _new_figure()
    ax = _add_axes(fig)
    ax.plot(cycles, charge_mAh_g, "o-", ms=3, label="charge")
    ax.plot(cycles, discharge_mAh_g, "s-", ms=3, label="discharge")
    ax.set_xlabel("cycle")
    ax.set_ylabel("capacity (mAh/g)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_gitt_diffusivity(
    path: Path, x: np.ndarray, series: dict[str, np.ndarray], x_label: str, flagged: dict[str, np.ndarray] | None = None
) -> Path:
    """D (cm²/s, log axis) against Li content, one series per method; ``flagged`` points drawn hollow
    (and left off the line), so a poor or unphysical value is seen for what it is."""
    fig = _new_figure()
    ax = fig.add_subplot()
    any_flagged = False
    for k, (name, d) in enumerate(series.items()):
        d = np.asarray(d, dtype=float)
        xs = np.asarray(x, dtype=float)
        good = np.isfinite(d) & (d > 0)
        bad = np.zeros(d.shape, bool) if flagged is None or name not in flagged else np.asarray(flagged[name], bool)
        marker = "os^v"[k % 4]
        line = ax.semilogy(xs[good & ~bad], d[good & ~bad], marker + "-", ms=4, label=name)[0]
        if np.any(good & bad):
            any_flagged = True
            ax.semilogy(xs[good & bad], d[good & bad], marker, ms=6, mfc="none", mec=line.get_color(), linestyle="none")
    if any_flagged:
        ax.plot([], [], "o", mfc="none", mec="0.4", label="hollow: flagged (see gitt.csv)")
    ax.set_xlabel(x_label)
    ax.set_ylabel("D (cm²/s)")
    ax.legend(fontsize=8)
    _title(ax, "GITT diffusion coefficient")
    return _save(fig, path)
