"""PNG figures of the particle model (matplotlib Agg canvas, no pyplot global state)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.tri import Triangulation

from operascope.analysis.particle_model.run import ModelResult


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)
    return path


def case_label(result: ModelResult) -> str:
    """Short text naming a run: C-rate, η, γ."""
    text = f"n={result.c_rate:g}C eta={result.boundary.eta:g} gamma={result.boundary.gamma:g}"
    if result.boundary.gamma > 0:
        text += f" rsl={result.boundary.rsl_angle_deg:g}°"
    return text


def rock_salt_arc_um(result: ModelResult, radius_scale: float = 1.04, points: int = 90) -> np.ndarray | None:
    """(x, y) µm points along the rock-salt arc just outside the particle; None for a fresh particle.

    The arc spans γ of the perimeter centred on ``rsl_angle_deg`` (image axes: from +x towards +y).
    """
    boundary = result.boundary
    if boundary.gamma <= 0:
        return None
    radius = radius_scale * float(np.hypot(*result.mesh_points_um.T).max())
    centre, half = math.radians(boundary.rsl_angle_deg), math.pi * boundary.gamma
    angle = np.linspace(centre - half, centre + half, points)
    return np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])


def _mark_rock_salt(axes, result: ModelResult) -> None:
    arc = rock_salt_arc_um(result)
    if arc is not None:
        axes.plot(arc[:, 0], arc[:, 1], color="tab:red", lw=3, solid_capstyle="butt",
                  label=f"rock salt (η={result.boundary.eta:g})")


def plot_snapshots(result: ModelResult, path: Path, max_panels: int = 6) -> Path:
    """θ fields (image axes: y downwards) at up to ``max_panels`` snapshots spread over the run."""
    picks = np.unique(np.linspace(0, len(result.snapshots) - 1, min(max_panels, len(result.snapshots))).round().astype(int))
    columns = min(3, picks.size)
    rows = math.ceil(picks.size / columns)
    figure = Figure(figsize=(3.4 * columns, 3.0 * rows), layout="constrained")
    points, triangles = result.mesh_points_um, result.mesh_triangles
    triangulation = Triangulation(points[:, 0], points[:, 1], triangles)
    threshold = result.settings.unreacted_theta
    for k, index in enumerate(picks):
        axes = figure.add_subplot(rows, columns, k + 1)
        theta = result.snapshots[index]
        image = axes.tripcolor(triangulation, theta, shading="gouraud", vmin=0.2, vmax=result.settings.initial_theta, cmap="viridis")
        if theta.min() < threshold < theta.max():
            axes.tricontour(triangulation, theta, levels=[threshold], colors="w", linewidths=0.8)
        t_s = result.snapshot_times_s[index]
        axes.set_title(f"t = {t_s:.0f} s, SOC = {result.c_rate * t_s / 3600:.2f}", fontsize=9)
        reach = 1.05 * float(np.abs(points).max())
        axes.set_xlim(-reach, reach)
        axes.set_ylim(reach, -reach)  # image axes: y downwards
        axes.set_aspect("equal")
        axes.set_xlabel("x (µm)", fontsize=8)
        axes.set_ylabel("y (µm)", fontsize=8)
        axes.tick_params(labelsize=7)
        _mark_rock_salt(axes, result)
    figure.colorbar(image, ax=figure.axes, label="θ", shrink=0.8)
    arc = ", red arc: rock salt" if result.boundary.gamma > 0 else ""
    figure.suptitle(case_label(result) + f" (white: unreacted boundary{arc})", fontsize=10)
    return _save(figure, path)


def plot_series(result: ModelResult, path: Path) -> Path:
    """Mean and surface θ, and COM distance, against state of charge."""
    figure = Figure(figsize=(8, 3.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    soc = result.soc
    left.plot(soc, result.mean_theta, label="mean θ")
    left.plot(soc, result.surface_theta, label="surface θ")
    left.set_xlabel("state of charge")
    left.set_ylabel("θ")
    left.legend(fontsize=8)
    right.plot(soc, result.com_distance_nm)
    right.set_xlabel("state of charge")
    right.set_ylabel("COM distance (nm)")
    figure.suptitle(case_label(result), fontsize=10)
    return _save(figure, path)


def plot_sweep(results: Sequence[ModelResult], path: Path) -> Path:
    """COM distance vs SOC, one panel per C-rate, one line per (η, γ)."""
    rates = sorted({r.c_rate for r in results})
    figure = Figure(figsize=(4.0 * len(rates), 3.4), layout="constrained")
    axes_list = np.atleast_1d(figure.subplots(1, len(rates), sharey=True))
    for axes, rate in zip(axes_list, rates):
        for result in (r for r in results if r.c_rate == rate):
            axes.plot(result.soc, result.com_distance_nm, label=f"η={result.boundary.eta:g}, γ={result.boundary.gamma:g}")
        axes.set_title(f"{rate:g}C", fontsize=10)
        axes.set_xlabel("state of charge")
    axes_list[0].set_ylabel("COM distance, particle vs unreacted (nm)")
    axes_list[-1].legend(fontsize=7)
    return _save(figure, path)
