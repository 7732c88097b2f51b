"""Per-position simulation truth and restamp in a multi-position run file (issue 19): rows aligned with each
position's binned rows, particles of the field only, the field's particles and fiducial, restamp per position."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

from operascope.acquisition.binner import BinnedFrame
from operascope.acquisition.bin_truth import SimulatedBinTruth
from operascope.acquisition.echem_history import EchemSample
from operascope.acquisition.live_differential import DifferentialFrame
from operascope.acquisition.positions import PositionList, StagePosition
from operascope.acquisition.run_file_positions import field_particles
from operascope.acquisition.run_writer import RunSetup, RunWriter
from operascope.analysis import runfile_layout as L
from operascope.analysis.runfile import open_run

PIXEL_NM = 50.0
#: Two fields 20 µm apart; camera ROI 40 x 30 px = 2.0 x 1.5 µm from sensor pixel (10, 5).
PLIST = PositionList((StagePosition("A", 0.0, 0.0, fiducial_xy_um=(1.0, 0.75)),
                      StagePosition("B", 20.0, 0.0, fiducial_xy_um=(21.5, 1.0))))
CAMERA_ROI = [10, 5, 40, 30]
#: Sample particles (µm): 0, 1 in field A; 2 in field B; 3 between the fields; 4 half in field B.
GEOMETRY = [{"x_um": 1.0, "y_um": 0.6, "diameter_um": 0.5}, {"x_um": 2.0, "y_um": 1.3, "diameter_um": 0.4},
            {"x_um": 21.2, "y_um": 1.0, "diameter_um": 0.6}, {"x_um": 10.0, "y_um": 1.0, "diameter_um": 1.0},
            {"x_um": 22.45, "y_um": 1.0, "diameter_um": 0.4}]


def _setup(path, **kw) -> RunSetup:
    return RunSetup(path=str(path), frame_shape=(30, 40), t0_s=100.0, config_toml="",
                    camera={"exposure_time": 2.0, "frame_rate": 10.0, "pixel_size": PIXEL_NM, "roi": CAMERA_ROI},
                    sample={"name": "x"}, particle_geometry=GEOMETRY, **kw)


def _binned(k: int, camera_s: list[float]) -> BinnedFrame:
    """Bin ``k`` whose frames were exposed from ``camera_s`` (s on the virtual clock); live times 0.3 s late."""
    mids = tuple(t + 0.001 + 0.3 for t in camera_s)
    return BinnedFrame(k, np.full((30, 40), k, np.float32), len(camera_s), 10 * k, 10 * k + len(camera_s) - 1,
                       mids[0], mids[-1], False, 0, float(np.mean(mids)), mids,
                       tuple(int(round(t * 1e9)) for t in camera_s))


class FakeWorld:
    """The bits of the World a SimulatedBinTruth asks: drift, image shift, return error, particle states."""

    def __init__(self, now_s: list[float]) -> None:
        self._now_s = list(now_s)       # the virtual time at each particle_truth call (the writer's thread)
        self.particle_calls: list[object] = []

    def drift_nm(self, t: float) -> tuple[float, float, float]:
        return 2.0 * t, -t, 0.5 * t

    def image_shift_nm(self, t: float) -> tuple[float, float]:
        return 2.0 * t - 7.0, -t + 3.0

    def return_error_at_nm(self, axis: str, t: float) -> float:
        return (40.0 if axis == "x" else -25.0) + 0.0 * t

    def particle_truth(self, indices) -> dict:
        self.particle_calls.append(None if indices is None else list(indices))
        self.now_s = self._now_s.pop(0)
        wanted = range(len(GEOMETRY)) if indices is None else indices
        com = [10.0 * k + self.now_s if k in wanted else math.nan for k in range(len(GEOMETRY))]
        return {"particle_time_s": self.now_s, "soc": self.now_s / 100.0, "particle_theta": [0.9] * len(GEOMETRY),
                "particle_soc": [0.1] * len(GEOMETRY), "particle_unreacted_fraction": [0.5] * len(GEOMETRY),
                "particle_com_distance_nm": com}


def _truth(world: FakeWorld) -> SimulatedBinTruth:
    return SimulatedBinTruth(world.drift_nm, 2.0, world.image_shift_nm, world.return_error_at_nm, world.particle_truth)


def test_field_particles_are_the_ones_the_camera_sees_at_that_stage_position():
    found = field_particles(GEOMETRY, 20.0, 0.0, CAMERA_ROI, PIXEL_NM)
    assert found["index"].tolist() == [2, 4]
    # sample (21.2, 1.0) µm at stage (20, 0): full-sensor px (24, 20), ROI from (10, 5) -> (14, 15)
    assert found["x_px"][0] == pytest.approx(14.0) and found["y_px"][0] == pytest.approx(15.0)
    assert found["whole_in_view"].tolist() == [1, 0]   # particle 4 (x 39 px, r 4 px) crosses the ROI's edge
    assert field_particles(GEOMETRY, 0.0, 0.0, CAMERA_ROI, PIXEL_NM)["index"].tolist() == [0, 1]


def test_each_position_gets_its_truth_rows_aligned_with_its_bins(tmp_path):
    path = tmp_path / "multi.h5"
    world = FakeWorld([101.0, 104.0, 107.0])
    writer = RunWriter(_setup(path, positions=PLIST, bin_truth=_truth(world)))
    writer.start()
    for k, (name, start_s) in enumerate((("A", 100.0), ("B", 103.0), ("A", 106.0))):
        writer.write_binned(_binned(k, [start_s, start_s + 0.1]), 3.9, 1e-4, 1.0, position=name, visit_index=k)
    writer.close("done")
    assert world.particle_calls == [[0, 1], [2, 4], [0, 1]]   # only the field's particles are evaluated
    with h5py.File(path, "r") as f:
        assert f[L.SIMULATION_BINNED]["time"].shape[0] == 0     # nothing at entry level
        sim_a = f[L.position_simulation("A")]
        assert sim_a.attrs["NX_class"] == "NXcollection" and sim_a["particles"].attrs["NX_class"] == "NXcollection"
        assert sim_a["binned"].attrs["NX_class"] == "NXcollection"
        assert sim_a["fiducial_xy_um"][()] == pytest.approx([1.0, 0.75])
        assert sim_a["fiducial_xy_px"][()] == pytest.approx([20.0 - 10, 15.0 - 5])
        assert f[L.position_simulation("B")]["particles"]["index"][()].tolist() == [2, 4]
    with open_run(path) as run:
        a, b = run.for_position("A"), run.for_position("B")
        ta, tb = a.table("truth_binned"), b.table("truth_binned")
        assert ta["time"].size == a.n_frames == 2 and tb["time"].size == b.n_frames == 1
        # true mid-time = camera stamp + half the exposure, since start_time
        assert ta["time"] == pytest.approx([0.001 + 0.05, 6.001 + 0.05])
        assert ta["particle_time"] == pytest.approx([1.0, 7.0])
        assert ta["stage_return_error_x_nm"] == pytest.approx([40.0, 40.0])
        assert ta["stage_return_error_y_nm"] == pytest.approx([-25.0, -25.0])
        com_a = ta["particle_com_distance_nm"]
        assert com_a.shape == (2, len(GEOMETRY))
        assert com_a[0, :2] == pytest.approx([101.0, 111.0]) and np.isnan(com_a[:, 2:]).all()
        assert tb["particle_com_distance_nm"][0, [2, 4]] == pytest.approx([124.0, 144.0])
        # the reader's truth of the view is the position's, so drift-vs-truth uses the visit's image shift
        assert a.truth_binned.image_shift_x_nm == pytest.approx(2.0 * (ta["time"] + 100.0) - 7.0)
        assert a.simulation_particles()["index"].tolist() == [0, 1]
        assert run.simulation_particles()["x_um"].tolist() == [g["x_um"] for g in GEOMETRY]   # the sample's


def test_single_position_truth_has_every_particle(tmp_path):
    path = tmp_path / "single.h5"
    world = FakeWorld([101.0])
    writer = RunWriter(_setup(path, bin_truth=_truth(world)))
    writer.start()
    writer.write_binned(_binned(0, [100.0, 100.1]), 3.9, 1e-4, 1.0)
    writer.close("done")
    assert world.particle_calls == [None]
    with open_run(path) as run:
        t = run.table("truth_binned")
        assert t["particle_com_distance_nm"][0] == pytest.approx([101.0, 111.0, 121.0, 131.0, 141.0])
        assert t["soc"][0] == pytest.approx(1.01)


def test_each_position_is_restamped_with_the_final_clock_and_takes_echem_again(tmp_path):
    path = tmp_path / "restamp.h5"
    writer = RunWriter(_setup(path, positions=PLIST, restamp=lambda mean_ns: mean_ns * 1e-9 + 0.125))
    writer.start()
    for k in range(12):   # echem: capacity = 0.1 * t (s since start)
        writer.write_echem(EchemSample(100.0 + k, 3.5 + 0.01 * k, 1e-4, 0.1 * k, 0, 0))
    for k, (name, start_s) in enumerate((("A", 101.0), ("B", 104.0), ("A", 107.0))):
        writer.write_binned(_binned(k, [start_s, start_s + 0.1]), 0.0, 0.0, 0.0, position=name, visit_index=k)
        writer.write_differential(DifferentialFrame(k, start_s, np.zeros((30, 40), np.float32), 0.0, 0.0, True),
                                  None, position=name)
    writer.close("done")
    with open_run(path) as run:
        for name, starts in (("A", [1.0, 7.0]), ("B", [4.0])):
            view = run.for_position(name)
            expected = np.array(starts) + 0.05 + 0.125   # mean camera time + the final clock's offset
            assert view.binned.time_s == pytest.approx(expected)         # not the live (0.3 s late) times
            assert view.table("differential")["time"] == pytest.approx(expected)
            assert view.binned.capacity_mAh_g == pytest.approx(0.1 * expected)
            assert view.binned.voltage_v == pytest.approx(3.5 + 0.01 * expected)
