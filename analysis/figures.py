"""PNG figures for the analysis reports (matplotlib, Agg canvas; no pyplot global state)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle


def _new_figure(width_in: float = 6.4, height_in: float = 4.0) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_drift(path: Path, time_s: np.ndarray, dx_nm: np.ndarray, dy_nm: np.ndarray,
               truth: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """Drift trace (nm) against time; dashed ground truth when given."""
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot(time_s, dx_nm, ".-", ms=3, label="x (fiducial)")
    ax.plot(time_s, dy_nm, ".-", ms=3, label="y (fiducial)")
    if truth is not None:
        ax.plot(time_s, truth[0], "k--", lw=1, label="x truth")
        ax.plot(time_s, truth[1], "k:", lw=1, label="y truth")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("drift (nm)")
    ax.legend(fontsize=8)
    ax.set_title("Lateral drift from the fiducial spot")
    return _save(fig, path)


def plot_differential_montage(path: Path, images: Sequence[np.ndarray], labels: Sequence[str],
                              pixel_size_nm: float, scale_bar_um: float = 1.0,
                              limit: float | None = None) -> Path:
    """Montage of differential images, diverging colormap centred on 0, NaN shown as 0, scale bar."""
    n = len(images)
    if n == 0:
        raise ValueError("no differential images to plot")
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig = _new_figure(3.0 * cols, 2.8 * rows + 0.4)
    if limit is None:
        values = np.concatenate([np.abs(im[np.isfinite(im)]).ravel() for im in images] + [np.zeros(1)])
        limit = float(np.percentile(values, 99)) if values.size > 1 else 0.1
        limit = limit if limit > 0 else 0.1
    image_artist = None
    for k, (im, label) in enumerate(zip(images, labels)):
        ax = fig.add_subplot(rows, cols, k + 1)
        image_artist = ax.imshow(np.nan_to_num(im, nan=0.0), cmap="RdBu_r", vmin=-limit, vmax=limit,
                                 interpolation="nearest")
        ax.set_title(label, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        bar_px = scale_bar_um * 1000.0 / pixel_size_nm
        h, w = im.shape
        if bar_px < 0.8 * w:
            x0, y0 = w - bar_px - 0.05 * w, h - 0.08 * h
            ax.add_patch(Rectangle((x0, y0), bar_px, max(0.02 * h, 1.5), color="black"))
            if k == 0:
                ax.text(x0 + bar_px / 2, y0 - 0.02 * h, f"{scale_bar_um:g} µm", ha="center", va="bottom", fontsize=7)
    if image_artist is not None:
        fig.colorbar(image_artist, ax=fig.axes, shrink=0.8, label="ΔI / I₁")
    fig.savefig(path)
    return path


def plot_com_vs_soc(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """COM distance (nm) against state of charge, one curve per particle."""
    fig = _new_figure()
    ax = fig.add_subplot()
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
    ax = fig.add_subplot()
    ax.plot(capacity_mAh_g, voltage_v, "-", lw=1)
    ax.set_xlabel("capacity (mAh/g)")
    ax.set_ylabel("voltage (V vs Li/Li⁺)")
    return _save(fig, path)


def plot_focus_lock(path: Path, time_s: np.ndarray, error_nm: np.ndarray, z_nm: np.ndarray | None) -> Path:
    """Focus-lock error (nm) and objective z (µm) against time."""
    fig = _new_figure(6.4, 4.8)
    ax = fig.add_subplot(2 if z_nm is not None else 1, 1, 1)
    ax.plot(time_s, error_nm, "-", lw=0.8)
    ax.set_ylabel("lock error (nm)")
    if z_nm is not None:
        ax2 = fig.add_subplot(2, 1, 2, sharex=ax)
        ax2.plot(time_s, np.asarray(z_nm) / 1000.0, "-", lw=0.8, color="C1")
        ax2.set_ylabel("z (µm)")
        ax2.set_xlabel("time (s)")
    else:
        ax.set_xlabel("time (s)")
    return _save(fig, path)


def plot_cycling(path: Path, cycles: np.ndarray, charge_mAh_g: np.ndarray, discharge_mAh_g: np.ndarray) -> Path:
    """Capacity per cycle (cyclability)."""
    fig = _new_figure()
    ax = fig.add_subplot()
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
    ax.set_title("GITT diffusion coefficient")
    return _save(fig, path)
