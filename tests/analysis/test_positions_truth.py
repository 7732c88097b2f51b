"""Issue 19 must-show, short: a 1C charge over two positions of the simulated sample, analysed per position,
COM vs SOC against the simulation's truth per particle, with the same bound a single-position run meets;
no bin holds a frame exposed before its visit's focus was back. (The full 4-position charge: make bench.)"""

from __future__ import annotations

import numpy as np
import pytest

from operascope.acquisition.microscope import Microscope
from operascope.acquisition.positions import load_positions
from operascope.analysis.com_truth import compare_com_with_truth
from operascope.analysis.positions_report import analyze_positions
from operascope.analysis.reference_particles import reference_particles
from operascope.analysis.report import analyze_run
from operascope.analysis.runfile import open_run
from operascope.analysis.visit_gating import frames_before_focus
from operascope.config.loader import preset_path

#: The first 20 min of a 1C charge (SOC 0 -> 0.33: the aged particles' fronts cross them), sped up 60x,
#: one 3-frame bin every 6 s; the example list's positions A and B.
RIG = dict(speed=60, frame_rate_hz=0.5, bin_size=3, c_rate=1.0)
DURATION_S = 1200.0
#: COM error vs truth per particle (nm RMS over the bins with >= 20 % unreacted), met by the single-position
#: run of the same charge too (measured here: single 34-87 nm, two positions 20-154 nm over several runs: the
#: visits' timing varies with the machine, and most of the error is where the true front sweeps an aged
#: particle within a few bins). The comparison that matters: the multi-position RMS over its particles is at
#: most RATIO_BOUND x the single-position one (measured 0.9-1.2).
COM_RMS_BOUND_NM = 200.0
RATIO_BOUND = 1.5
#: The analysis' fiducial box for fields whose return error jumps ~2 px per visit (default 21 loses it).
ANALYSIS = dict(box_px=31)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("truth")
    example = load_positions(preset_path("simulated_positions").parent / "positions.example.toml")
    two = type(example)(tuple(p for p in example if p.name in ("A", "B")))
    out = {}
    for kind in ("single", "multi"):
        path = folder / f"{kind}.h5"
        with Microscope.from_config(preset_path("simulated_positions"), **RIG) as scope:
            summary = scope.record(path, protocol="charge", duration_s=DURATION_S, save_raw=kind == "multi",
                                   positions=two if kind == "multi" else None)
        errors = {}
        with open_run(path) as run:
            if kind == "multi":
                analyze_positions(path, folder / "multi_out", **ANALYSIS)
                for name in run.positions():
                    errors[name] = compare_com_with_truth(run.for_position(name), folder / "multi_out" / f"position_{name}")
            else:
                analyze_run(path, folder / "single_out", **ANALYSIS)
                errors["A"] = compare_com_with_truth(run, folder / "single_out")
        out[kind] = {"path": path, "summary": summary, "errors": errors}
    return out


def _show(kind, errors) -> None:
    for name, errs in errors.items():
        for e in errs:
            print(f"{kind} {name} particle {e.label} (truth {e.truth_index}): {e.n_bins} bins, COM error RMS "
                  f"{e.rms_error_nm:.1f} nm, max {e.max_error_nm:.1f} nm, true COM up to {e.truth_com_max_nm:.0f} nm")


def test_every_particle_of_every_position_is_found_and_matched_to_the_truth(runs):
    multi = runs["multi"]["errors"]
    _show("multi", multi)
    with open_run(runs["multi"]["path"]) as run:
        for name in ("A", "B"):
            in_view = run.for_position(name).simulation_particles()
            expected = set(in_view["index"][in_view["whole_in_view"] == 1].tolist())
            assert len(expected) == 3
            assert {e.truth_index for e in multi[name]} == expected, name
            assert all(e.match_distance_px < 5.0 for e in multi[name])


def test_com_vs_soc_matches_the_truth_as_well_as_a_single_position_run(runs):
    for kind in ("single", "multi"):
        errors = [e for errs in runs[kind]["errors"].values() for e in errs]
        assert errors and all(e.n_bins >= 10 for e in errors), kind
        assert max(e.rms_error_nm for e in errors) < COM_RMS_BOUND_NM, kind
        # not a trivial comparison: some particle's true front COM went far off-centre within the compared bins
        assert max(e.truth_com_max_nm for e in errors) > 300.0, kind
    single = np.sqrt(np.mean([e.rms_error_nm ** 2 for e in runs["single"]["errors"]["A"]]))
    multi = np.sqrt(np.mean([e.rms_error_nm ** 2 for errs in runs["multi"]["errors"].values() for e in errs]))
    print(f"COM error RMS over particles: single {single:.1f} nm, two positions {multi:.1f} nm")
    assert multi <= RATIO_BOUND * single


def test_no_bin_holds_a_frame_exposed_before_its_visit_was_in_focus(runs):
    gating = frames_before_focus(runs["multi"]["path"])
    print(gating)
    assert gating["bins"] > 50 and gating["frames_missing"] == 0
    assert gating["bad_bins"] == 0, gating


def test_drift_border_follows_the_drift_direction():
    """A particle near the right edge stays analysable while the field drifts left (and not when it drifts right)."""
    frame = np.full((60, 80), 1000.0)
    yy, xx = np.mgrid[:60, :80]
    frame[(yy - 30) ** 2 + (xx - 70) ** 2 <= 16] = 3000.0   # right edge of the disk at x = 74
    frame[(yy - 30) ** 2 + (xx - 20) ** 2 <= 16] = 3000.0
    left, right = np.linspace(0.0, -8.0, 5), np.linspace(0.0, 8.0, 5)
    kept_left = reference_particles(frame, left, np.zeros(5), None, 2000.0, 10, "x").kept
    kept_right = reference_particles(frame, right, np.zeros(5), None, 2000.0, 10, "x").kept
    assert sorted(round(p.centroid_xy_px[0]) for p in kept_left) == [20, 70]
    assert [round(p.centroid_xy_px[0]) for p in kept_right] == [20]
