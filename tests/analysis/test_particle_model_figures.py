"""Particle-model figures and ``--rsl-angle``: the rock-salt arc is drawn where the model puts it."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from matplotlib.figure import Figure

from operascope.acquisition.cli import build_parser
from operascope.analysis.particle_model import figures
from operascope.analysis.particle_model.cli import run_model
from operascope.analysis.particle_model.fem import RockSaltBoundary
from operascope.analysis.particle_model.run import NOMINAL_THETA_SPAN, RunSettings, simulate_delithiation

FAST = RunSettings(nrefs=3, steps_per_run=40, target_mean_theta=0.95 - 0.3 * NOMINAL_THETA_SPAN, com_pixel_nm=40.0)


def test_rock_salt_arc_is_centred_on_the_angle_and_spans_gamma():
    result = simulate_delithiation(2.0, RockSaltBoundary(0.25, 0.0, 90.0), 2.0, settings=FAST)
    arc = figures.rock_salt_arc_um(result)
    angles = np.degrees(np.arctan2(arc[:, 1], arc[:, 0]))
    assert angles.min() == pytest.approx(90 - 45, abs=0.1) and angles.max() == pytest.approx(90 + 45, abs=0.1)
    assert np.hypot(*arc.T).min() > np.hypot(*result.mesh_points_um.T).max()     # just outside the particle
    fresh = simulate_delithiation(2.0, RockSaltBoundary(0.0, 1.0), 2.0, settings=FAST)
    assert figures.rock_salt_arc_um(fresh) is None


def test_snapshots_label_both_axes_and_draw_the_arc(tmp_path, monkeypatch):
    result = simulate_delithiation(2.0, RockSaltBoundary(0.5, 0.0, 180.0), 2.0, settings=FAST)
    drawn: list[Figure] = []
    original = figures._save
    monkeypatch.setattr(figures, "_save", lambda fig, path: (drawn.append(fig), original(fig, path))[1])
    path = figures.plot_snapshots(result, tmp_path / "snap.png")
    assert path.stat().st_size > 10_000
    panels = [ax for ax in drawn[0].axes if ax.get_xlabel() == "x (µm)"]
    assert panels and all(ax.get_ylabel() == "y (µm)" for ax in panels)
    for ax in panels:
        arcs = [line for line in ax.get_lines() if line.get_label().startswith("rock salt")]
        assert len(arcs) == 1
        x, y = arcs[0].get_data()
        assert np.mean(x) < 0 and abs(np.mean(y)) < 1e-6 * abs(np.mean(x)) + 1e-9   # centred on 180°
    assert "red arc: rock salt" in drawn[0].get_suptitle()


def test_run_model_rsl_angle_turns_the_front(tmp_path):
    out = run_model(2.0, 0.0, 0.5, 2.0, tmp_path / "m", settings=FAST, rsl_angle_deg=180.0)
    with h5py.File(out["out_dir"] / "model.h5") as h5:
        (group,) = h5["cases"].values()
        assert group.attrs["rsl_angle_deg"] == 180.0
    result = simulate_delithiation(2.0, RockSaltBoundary(0.5, 0.0, 180.0), 2.0, settings=FAST)
    offset = np.asarray(result.com_offset_um)
    moved = np.hypot(*offset.T) > 0.05
    assert moved.any() and np.all(offset[moved, 0] < 0)            # unreacted region on the rock-salt side (-x)
    with pytest.raises(ValueError, match="rsl_angle_deg"):
        run_model(out_dir=tmp_path / "bad", gamma=0.5, eta=0.0, rsl_angle_deg=float("nan"))
    assert not (tmp_path / "bad").exists()


def test_cli_model_takes_rsl_angle():
    args = build_parser().parse_args(["model", "--gamma", "0.5", "--eta", "0", "--rsl-angle", "45"])
    assert args.rsl_angle == 45.0
