"""Microscope.autofocus(), acquire --autofocus and the run-file events, on the simulated rig."""

from __future__ import annotations

import json

import pytest

import h5py

from operascope.acquisition.cli import main
from operascope.acquisition.microscope import Microscope
from operascope.analysis import runfile_layout as L

SIM = {"speed": 20.0, "seed": 3, "z_focus_nm": 300.0, "particle_model": "uniform"}
ACQ = {"roi": (0, 150, 96, 96)}


def test_autofocus_with_the_camera_idle_and_while_live():
    with Microscope.from_config(None, simulation=SIM, acquisition=ACQ) as scope:
        first = scope.autofocus()
        assert abs(scope.world.truth()["defocus_nm"]) < 20.0
        scope.world.sim.z_focus_nm += 120.0            # the sample moves; now stream and refocus
        scope.start_live()
        second = scope.autofocus()
        assert abs(scope.world.truth()["defocus_nm"]) < 20.0
        messages = [e.message for e in scope.events.history() if e.source == "autofocus"]
    assert second.best_z_nm - first.best_z_nm == pytest.approx(120.0, abs=20.0)
    fits = [json.loads(m[len("autofocus fit "):]) for m in messages if m.startswith("autofocus fit ")]
    assert len(fits) == 2 and abs(fits[0]["best_z_nm"] - first.best_z_nm) < 0.1
    assert all(len(m) <= 500 for m in messages)


def test_acquire_autofocus_locks_at_best_focus_and_records_the_result(tmp_path, monkeypatch):
    out = tmp_path / "run.h5"
    config = tmp_path / "rig.toml"
    config.write_text(
        "[acquisition]\nroi = [0, 150, 96, 96]\n[simulation]\nparticle_model = \"uniform\"\nz_focus_nm = 300.0\n",
        encoding="utf-8")
    status = main(["acquire", "--config", str(config), "--out", str(out), "--duration", "10", "--speed", "20",
                   "--focus-lock", "--autofocus"])
    assert status == 0
    with h5py.File(out, "r") as f:
        events = f[L.EVENTS]
        sources = [s.decode() for s in events["source"][()]]
        messages = [m.decode() for m in events["message"][()]]
    fit = next(json.loads(m[len("autofocus fit "):]) for s, m in zip(sources, messages) if m.startswith("autofocus fit "))
    assert abs(fit["best_z_nm"] - 300.0) < 20.0
    assert any(m.startswith("autofocus fine curve ") for m in messages)
    assert "focus lock: no fault, never unlocked" in messages


def test_on_demand_refresh_moves_the_lock_offset_to_the_moved_sample():
    sim = SIM | {"z_focus_nm": 0.0, "speed": 10.0}
    with Microscope.from_config(None, simulation=sim, acquisition=ACQ,
                                focus_lock={"calibration_range_nm": 600.0}) as scope:
        try:
            scope.refresh_focus_target()
            raise AssertionError("a refresh without a running lock must be refused")
        except RuntimeError as exc:
            assert "running focus lock" in str(exc)
        scope.focus.engage()
        before = scope.world.truth()["defocus_nm"]
        scope.world._swelling_nm = lambda t_s: 60.0  # the sample moved +60 nm relative to the interface
        moved = scope.world.truth()["defocus_nm"]
        result = scope.refresh_focus_target()
        after = scope.world.truth()["defocus_nm"]
    assert abs(before) < 40.0 and moved == pytest.approx(before - 60.0, abs=5.0)
    assert result.applied and result.change_nm == pytest.approx(60.0, abs=15.0)
    assert abs(after) < abs(moved) - 30.0
