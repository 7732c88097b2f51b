"""The cross-run figures of a study: COM distance vs SOC for every particle coloured by ageing condition
(Figure S4 for the study) and the per-condition particle summary (Figure S7). Agg canvas, no pyplot state."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

COLOURS = ("tab:blue", "tab:red", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:gray")


def _save(fig: Figure, path: Path) -> Path:
    """Write the PNG via a temporary file, so a failed write leaves no partial figure."""
    tmp = path.with_name(path.name + ".part")
    fig.savefig(tmp, dpi=120, format="png")
    os.replace(tmp, path)
    return path


def condition_colours(conditions: list[str]) -> dict[str, str]:
    """One colour per condition, in first-seen order."""
    unique = list(dict.fromkeys(conditions))
    return {c: COLOURS[i % len(COLOURS)] for i, c in enumerate(unique)}


def plot_study_com_vs_soc(path: Path, table: dict[str, np.ndarray]) -> Path:
    """Every particle's COM distance (nm) vs SOC, one line per (run, particle), coloured by condition."""
    fig = Figure(figsize=(6.4, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    colours = condition_colours(list(table["condition"]))
    labelled: set[str] = set()
    keys = list(dict.fromkeys(zip(table["run"], table["particle"])))
    for run, particle in keys:
        sel = (table["run"] == run) & (table["particle"] == particle)
        cond = str(table["condition"][sel][0])
        ax.plot(table["soc"][sel], table["com_distance_nm"][sel], "-o", ms=3, lw=1, color=colours[cond],
                label=None if cond in labelled else cond)
        labelled.add(cond)
    ax.set_xlabel("state of charge")
    ax.set_ylabel("COM distance |r_U - r_P| (nm)")
    ax.set_title("Reaction-front asymmetry by ageing condition")
    if labelled:
        ax.legend(title="condition", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_condition_summary(path: Path, table: dict[str, np.ndarray]) -> Path:
    """Per condition: each particle's mean COM distance (points) and the condition mean ± std (bar)."""
    fig = Figure(figsize=(6.4, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    conditions = list(dict.fromkeys(table["condition"]))
    colours = condition_colours(conditions)
    for i, cond in enumerate(conditions):
        sel = table["condition"] == cond
        means = []
        for run, particle in dict.fromkeys(zip(table["run"][sel], table["particle"][sel])):
            one = sel & (table["run"] == run) & (table["particle"] == particle)
            values = table["com_distance_nm"][one]
            if np.isfinite(values).any():
                means.append(float(np.nanmean(values)))
        if means:
            ax.bar(i, np.mean(means), yerr=np.std(means), color=colours[cond], alpha=0.4, capsize=4)
            ax.plot(np.full(len(means), i) + np.linspace(-0.15, 0.15, len(means)), means, "o", color=colours[cond])
    ax.set_xticks(range(len(conditions)), conditions)
    ax.set_xlabel("ageing condition")
    ax.set_ylabel("mean COM distance per particle (nm)")
    ax.set_title("Particles by ageing condition")
    fig.tight_layout()
    return _save(fig, path)
