"""The multi-position run-file layout (issue 19): /entry/positions, /entry/visits and one NXsubentry per
position laid out like the entry's binned/differential; NeXus rules hold; single-position files unchanged."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from operascope.acquisition.binner import BinnedFrame
from operascope.acquisition.live_differential import DifferentialFrame
from operascope.acquisition.position_state import Visit
from operascope.acquisition.positions import PositionList, StagePosition
from operascope.acquisition.run_writer import RunSetup, RunWriter
from operascope.analysis import runfile_layout as L
from operascope.analysis.runfile import open_run

PLIST = PositionList((StagePosition("A", 0.0, 0.0), StagePosition("B", 5.0, -3.0, 0.25, roi=(6, 4, 6, 4),
                                                                  fiducial_xy_um=(1.0, 2.0))))


def _setup(path, **kw) -> RunSetup:
    return RunSetup(path=str(path), frame_shape=(8, 10), t0_s=100.0, config_toml="",
                    camera={"exposure_time": 2.5, "frame_rate": 10.0, "pixel_size": 34.7, "roi": [4, 2, 10, 8]},
                    sample={"name": "x"}, **kw)


def _binned(k: int, shape=(8, 10)) -> BinnedFrame:
    return BinnedFrame(k, np.full(shape, k, np.float32), 2, 2 * k, 2 * k + 1, 100.0 + k, 100.5 + k, False, 0)


def _write_multi(path) -> None:
    writer = RunWriter(_setup(path, positions=PLIST, dwell_bins=2))
    writer.start()
    for k, (name, shape) in enumerate((("A", (8, 10)), ("A", (8, 10)), ("B", (4, 6)))):
        visit = 0 if name == "A" else 1
        writer.write_visit(Visit(100.0 + 3 * visit, visit, 100.5 + 3 * visit, 101.0 + 3 * visit, 102.5 + 3 * visit,
                                 2 if name == "A" else 1)) if k != 1 else None
        writer.write_binned(_binned(k, shape), 3.9, 1e-4, 1.0, position=name, visit_index=visit)
        diff = DifferentialFrame(k, 100.5 + k, np.full(shape, 0.01 * k, np.float32), 0.1, -0.2, True)
        writer.write_differential(diff, np.ones(shape, bool) if k != 1 else None, position=name)
    writer.write_cycle_period(6.5)
    writer.close("done")


def test_each_position_has_its_own_subentry_and_the_visit_table(tmp_path):
    path = tmp_path / "multi.h5"
    _write_multi(path)
    with h5py.File(path, "r") as f:
        pos = f[L.POSITIONS]
        assert pos.attrs["NX_class"] == "NXcollection" and pos.attrs["dwell_bins"] == 2
        assert pos.attrs["cycle_period_s"] == pytest.approx(6.5)
        assert [n.decode() for n in pos["name"][()]] == ["A", "B"] and pos["name"].dtype == np.dtype("S32")
        assert list(pos["x_um"][()]) == [0.0, 5.0] and list(pos["z_offset_um"][()]) == [0.0, 0.25]
        visits = f[L.VISITS]
        assert list(visits["position_index"][()]) == [0, 1] and list(visits["n_bins"][()]) == [2, 1]
        assert visits["time"][()] == pytest.approx([0.0, 3.0]) and visits["focus_time"][()] == pytest.approx([1.0, 4.0])
        assert [s.decode() for s in visits["status"][()]] == ["recorded", "recorded"]
        a, b = f[L.position_group("A")], f[L.position_group("B")]
        assert a.attrs["NX_class"] == b.attrs["NX_class"] == "NXsubentry"
        for sub in (a, b):   # the same columns as the entry's stacks (+ visit_index in binned)
            assert set(f[L.BINNED]) | {"visit_index"} == set(sub["binned"])
            assert set(f[L.DIFFERENTIAL]) == set(sub["differential"])
        assert a["binned"]["frames"].shape == (2, 8, 10) and list(a["binned"]["visit_index"][()]) == [0, 0]
        assert b["binned"]["frames"].shape == (1, 4, 6)   # B's own ROI
        assert b["binned"]["x"][0] == pytest.approx(6 * 0.0347) and b["binned"]["y"][0] == pytest.approx(4 * 0.0347)
        assert a["differential"]["mask"][()].all() and b["differential"]["mask"].shape == (4, 6)
        assert f[L.BINNED]["frames"].shape[0] == 0   # nothing in the entry's own stacks
        assert f[L.ENTRY].attrs["default"] == "position_A" and a.attrs["default"] == "binned"


def test_nexus_rules_hold_in_a_multi_position_file(tmp_path):
    path = tmp_path / "nx.h5"
    _write_multi(path)
    with h5py.File(path, "r") as f:
        groups = []
        f.visititems(lambda name, obj: groups.append((name, obj)) if isinstance(obj, h5py.Group) else None)
        for name, group in groups:
            assert "NX_class" in group.attrs, name
            if group.attrs["NX_class"] == "NXdata":
                assert {"signal", "axes"} <= set(group.attrs), name
                for axis in group.attrs["axes"]:
                    assert axis in group, f"{name}@axes names {axis}, which does not exist"
                assert group.attrs["signal"] in group and group[L.FRAMES].attrs["interpretation"] == "image"
        # the default chain: file -> NXentry -> NXsubentry -> NXdata
        entry = f[f.attrs["default"]]
        sub = entry[entry.attrs["default"]]
        data = sub[sub.attrs["default"]]
        assert (entry.attrs["NX_class"], sub.attrs["NX_class"], data.attrs["NX_class"]) == (
            "NXentry", "NXsubentry", "NXdata")


def test_the_reader_views_each_position_and_a_single_position_file_has_none(tmp_path):
    multi, single = tmp_path / "multi.h5", tmp_path / "single.h5"
    _write_multi(multi)
    writer = RunWriter(_setup(single))
    writer.start()
    writer.write_binned(_binned(0), 3.9, 1e-4, 1.0)
    writer.close("done")
    with open_run(multi) as run:
        assert run.positions() == ["A", "B"]
        b = run.for_position("B")
        assert b.n_frames == 1 and b.frame_shape == (4, 6) and b.differential_mask.shape == (4, 6)
        assert list(b.table("binned")["visit_index"]) == [1]
        assert b.to_xarray("differential")["frames"].shape == (1, 4, 6)
        assert run.for_position("A").binned.time_s == pytest.approx([0.25, 1.25])   # bin mid-times
    with open_run(single) as run:
        assert run.positions() == [] and run.n_frames == 1
    with h5py.File(single, "r") as f:
        assert L.POSITIONS not in f and L.VISITS not in f and f[L.ENTRY].attrs["default"] == "binned"


def test_reading_the_entry_frames_of_a_multi_position_run_says_to_pick_a_position(tmp_path):
    from operascope.analysis.errors import RunFileError

    path = tmp_path / "multi.h5"
    _write_multi(path)
    with open_run(path) as run:
        with pytest.raises(RunFileError, match=r"multi-position run \(positions A, B\).*for_position"):
            run.frame(0)
