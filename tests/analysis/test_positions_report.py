"""Per-position analysis of a multi-position run file (issue 19), on a synthetic file built from the spec."""

from __future__ import annotations

import csv
import json

import h5py
import numpy as np
import pytest

from operascope.analysis import runfile_layout as layout
from operascope.analysis.report import analyze_run
from operascope.analysis.runfile import Run
from operascope.analysis.synthetic_run import SyntheticParticle, make_synthetic_run

pytestmark = pytest.mark.skipif(not hasattr(Run, "for_position"),
                                reason="needs the multi-position reader (Run.for_position, branch multi)")

#: Return error of the stage at every visit (σ, nm): each bin is one visit, so each bin jumps.
RETURN_ERROR_NM = 50.0


def _make_multi_position_file(tmp_path):
    """Position A: one aged particle (core walks off-centre); position B: two fresh ones (core stays centred)."""
    fields = {
        "A": [SyntheticParticle(40.0, 45.0, 18.0, (7.0, -4.0))],
        "B": [SyntheticParticle(35.0, 40.0, 15.0), SyntheticParticle(80.0, 45.0, 14.0)],
    }
    truths = {}
    for k, (name, particles) in enumerate(fields.items()):
        truths[name] = make_synthetic_run(tmp_path / f"{name}.h5", n_frames=12, particles=particles,
                                          drift_rate_nm_per_frame=(0.5, -0.3), drift_jitter_nm=RETURN_ERROR_NM,
                                          seed=11 + k)
    path = tmp_path / "multi.h5"
    with h5py.File(tmp_path / "A.h5", "r") as src, h5py.File(path, "w") as dst:
        for key in src:
            src.copy(src[key], dst, name=key)
        for attr, value in src.attrs.items():
            dst.attrs[attr] = value
    with h5py.File(path, "a") as dst:
        entry = dst[layout.ENTRY]
        for name in fields:
            sub = entry.create_group(f"position_{name}")
            sub.attrs["NX_class"] = "NXsubentry"
            with h5py.File(tmp_path / f"{name}.h5", "r") as src:
                for group in ("binned", "differential"):
                    if group in src[layout.ENTRY]:
                        src.copy(src[f"{layout.ENTRY}/{group}"], sub, name=group)
        for group in ("binned", "differential"):
            if group in entry:
                del entry[group]
        positions = entry.create_group("positions")
        positions.attrs["NX_class"] = "NXcollection"
        positions.create_dataset("name", data=np.array([b"A", b"B"], dtype="S32"))
        for column, values in (("x_um", [0.0, 60.0]), ("y_um", [0.0, 0.0]), ("z_offset_um", [0.0, 0.0])):
            positions.create_dataset(column, data=np.array(values))
        positions.attrs["dwell_bins"] = 1
    return path, truths


def test_every_position_is_analysed_as_its_own_field(tmp_path):
    path, truths = _make_multi_position_file(tmp_path)
    out = tmp_path / "report"
    summary = analyze_run(path, out)
    assert set(summary["positions"]) == {"A", "B"}
    assert summary["n_particles"] == 3
    by_position = {(p["position"], p["particle"]): p for p in summary["particles"]}
    classes = sorted((pos, p["class"]) for (pos, _), p in by_position.items())
    assert classes == [("A", "aged"), ("B", "fresh"), ("B", "fresh")]
    # the return error (a jump at each visit) is measured per bin with the position's own fiducial
    drift = summary["positions"]["A"]["drift"]
    assert drift["n_fits_ok"] == 12
    truth = drift["versus_simulation_truth"]
    assert truth["truth_range_nm"] > 2 * RETURN_ERROR_NM
    assert truth["rms_error_nm"] < 5.0
    # one combined table + figures
    with open(out / "particles.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["position"], r["class"]) for r in rows] == [("A", "aged"), ("B", "fresh"), ("B", "fresh")]
    with open(out / "com_all.csv", newline="") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == 3 * 12
    assert json.loads((out / "particles.json").read_text())[0]["position"] == "A"
    assert (out / "figure_s7_com_vs_soc.png").stat().st_size > 1000
    for p in summary["particles"]:
        assert (out / p["figure_s4"]).is_file()
    assert (out / "position_B" / "summary.json").is_file()


def test_a_fixed_fiducial_is_refused_for_a_multi_position_run(tmp_path):
    path, _ = _make_multi_position_file(tmp_path)
    with pytest.raises(ValueError, match="own fiducial"):
        analyze_run(path, tmp_path / "report", fiducial_xy_px=(110.0, 80.0))
