"""A sample larger than one field of view: several fields and fiducials, ROI culling, stage return error."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.config.loader import ConfigError, load_config, preset_path
from operascope.devices.base import Roi
from operascope.simulators.devices.stage import AxisMotion
from operascope.simulators.world.clock import TimeSeriesNoise, event_rng
from operascope.simulators.world.world import World
from operascope.analysis.fiducial import fit_spot

ROI = Roi(0, 0, 320, 288)
PIXEL_NM = 34.7
#: Stage positions (µm) of the fields in config/positions.example.toml.
FIELDS_UM = {"A": (0.0, 0.0), "B": (60.0, 0.0), "C": (0.0, 60.0), "D": (60.0, 60.0)}


def _positions_world(**simulation) -> World:
    quiet = {"particle_model": "uniform", "speed": 1.0, "drift_noise_nm": 0.0, "drift_xy_nm_s": (0.0, 0.0),
             "stage_noise_nm": 0.0, "read_noise_e": 0.0, "stage_repeatability_nm": 0.0}
    world = World(load_config(preset_path("simulated_positions"), overrides={"simulation": {**quiet, **simulation}}))
    world.set_led(enabled=True)
    return world


def _field_particles(world: World, field: str) -> list[int]:
    x0, y0 = FIELDS_UM[field]
    fov_w, fov_h = ROI.width * PIXEL_NM / 1000, ROI.height * PIXEL_NM / 1000
    return [i for i, p in enumerate(world.particle_geometry())
            if x0 <= p["x_um"] <= x0 + fov_w and y0 <= p["y_um"] <= y0 + fov_h]


def _go(world: World, field: str) -> float:
    """Move x, y to ``field``; returns a virtual time after the move has settled."""
    x_um, y_um = FIELDS_UM[field]
    world.stage_move("x", x_um * 1000.0)
    world.stage_move("y", y_um * 1000.0)
    return world.clock.now_s() + 1.0


def _disc_mean(image: np.ndarray, x_um: float, y_um: float, radius_um: float) -> float:
    rows, cols = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    r_px = np.hypot(cols * PIXEL_NM / 1000 - x_um, rows * PIXEL_NM / 1000 - y_um)
    return float(image[r_px < radius_um].mean())


def test_example_files_describe_four_fields_with_fresh_and_aged_particles():
    tomllib = pytest.importorskip("tomllib")
    positions = tomllib.loads((preset_path("simulated_positions").parent / "positions.example.toml").read_text())
    listed = {p["name"]: (p["x_um"], p["y_um"], tuple(p["fiducial_xy_um"])) for p in positions["positions"]}
    assert {name: xy[:2] for name, xy in listed.items()} == FIELDS_UM
    world = _positions_world()
    fiducials = world.sim.fiducial_positions_um()
    for name, (x_um, y_um, fiducial) in listed.items():
        # the listed fiducial is one of the sample's, inside the field
        assert fiducial in fiducials
        assert 0 < fiducial[0] - x_um < 11.1 and 0 < fiducial[1] - y_um < 10.0
        gammas = [world.particle_geometry()[i]["gamma"] for i in _field_particles(world, name)]
        assert len(gammas) == 3 and min(gammas) == 0.0 and max(gammas) > 0.0, (name, gammas)


def test_particles_of_position_b_appear_in_the_roi_when_the_stage_is_at_b():
    world = _positions_world()
    t_a = _go(world, "A")
    at_a = world.render_at(t_a, ROI, 2.5, 0.0, 1).astype(float)
    t_b = _go(world, "B")
    at_b = world.render_at(t_b, ROI, 2.5, 0.0, 2).astype(float)
    background = float(np.median(at_b))
    geometry = world.particle_geometry()
    for i in _field_particles(world, "B"):
        p = geometry[i]
        x_um, y_um = p["x_um"] - 60.0, p["y_um"]
        assert _disc_mean(at_b, x_um, y_um, 0.3 * p["diameter_um"]) > 1.1 * background
        # ... and that place is background at A unless one of A's particles lies there
        if all(np.hypot(q["x_um"] - x_um, q["y_um"] - y_um) > (q["diameter_um"] + p["diameter_um"]) / 2
               for q in (geometry[j] for j in _field_particles(world, "A"))):
            assert _disc_mean(at_a, x_um, y_um, 0.3 * p["diameter_um"]) < 1.03 * float(np.median(at_a))
    # B's own fiducial is the brightest spot, where the config puts it
    fit = fit_spot(at_b)
    assert fit.ok
    assert fit.x_px * PIXEL_NM / 1000 == pytest.approx(9.5, abs=0.02)
    assert fit.y_px * PIXEL_NM / 1000 == pytest.approx(8.2, abs=0.02)


def test_only_particles_reaching_the_roi_are_rendered():
    world = _positions_world()
    geom = world._geometry(ROI)
    for field in FIELDS_UM:
        x_um, y_um = FIELDS_UM[field]
        visible = world.layout.visible_particles(-x_um * 1000, -y_um * 1000, geom, 111.0).tolist()
        assert visible == _field_particles(world, field)
        extra = world.layout.visible_fiducials(-x_um * 1000, -y_um * 1000, geom, 111.0)
        assert len(extra) == (0 if field == "A" else 1)


def test_far_away_particles_do_not_change_the_frame():
    far = [{"x_um": 500.0 + 7.0 * k, "y_um": -300.0 + 3.0 * (k % 50), "diameter_um": 2.0} for k in range(300)]
    near_only = _positions_world()
    with_far = _positions_world(particles=[*near_only.sim.particles, *far])
    for world in (near_only, with_far):
        world.stage_move("x", 60_000.0)
    t = near_only.clock.now_s() + 1.0
    assert np.array_equal(near_only.render_at(t, ROI, 2.5, 0.0, 5), with_far.render_at(t, ROI, 2.5, 0.0, 5))


def _returns(repeatability_nm: float, seed: int, n: int) -> np.ndarray:
    """Return errors (nm) of ``n`` returns to 0 from 60 µm away."""
    axis = AxisMotion(0.0, 500_000.0, 0.005, TimeSeriesNoise(seed, 21, 0.0, 0.01), repeatability_nm,
                      lambda move: event_rng(seed, 41, move))
    t, errors = 0.0, []
    for _ in range(n):
        axis.move_to(t, 60_000.0)
        t += 1.0
        axis.move_to(t, 0.0)
        t += 1.0
        assert axis.position_nm(t) == 0.0          # the controller reports the target ...
        errors.append(axis.sample_position_nm(t))  # ... the axis is elsewhere
    return np.array(errors)


def test_return_error_has_the_configured_sigma_and_is_seeded():
    errors = _returns(50.0, seed=3, n=1000)
    # σ of a sample of 1000 normal values: standard error 50/√2000 = 1.1 nm
    assert errors.std() == pytest.approx(50.0, abs=4.0)
    assert abs(errors.mean()) < 5.0
    assert np.array_equal(errors, _returns(50.0, seed=3, n=1000))
    assert not np.array_equal(errors, _returns(50.0, seed=4, n=1000))
    assert np.all(_returns(0.0, seed=3, n=10) == 0.0)


def test_return_error_moves_the_image_not_the_reported_position():
    world = _positions_world(stage_repeatability_nm=50.0)
    shifts = []
    for _ in range(3):
        _go(world, "B")
        t = _go(world, "A")
        image = world.render_at(t, ROI, 2.5, 0.0, 7).astype(float)
        fit = fit_spot(image)
        error_x, error_y = world.stage_return_error_nm("x"), world.stage_return_error_nm("y")
        # moving the stage by +s moves the image by -s: the fiducial sits at its place minus the error
        assert fit.x_px * PIXEL_NM == pytest.approx(1500.0 - error_x, abs=4.0)
        assert fit.y_px * PIXEL_NM == pytest.approx(8000.0 - error_y, abs=4.0)
        assert world.stage_target_nm("x") == 0.0
        shifts.append((error_x, error_y))
    assert len(set(shifts)) == 3 and max(abs(v) for s in shifts for v in s) > 5.0


def test_one_fiducial_or_several_not_both():
    text = preset_path("simulated").read_text()
    assert load_config().simulation.fiducial_positions_um() == [(1.5, 8.0)]
    with pytest.raises(ConfigError, match="fiducials_xy_um"):
        load_config(overrides={"simulation": {"fiducials_xy_um": [[1.0, 2.0]]}})  # simulated.toml sets fiducial_xy_um
    assert "fiducial_xy_um" in text
    with pytest.raises(ConfigError, match="fiducials_xy_um"):
        load_config(preset_path("simulated_positions"), overrides={"simulation": {"fiducials_xy_um": []}})


def test_a_frame_rendered_late_shows_where_the_stage_was_then():
    """A camera that falls behind renders frames of past times after the stage has moved on."""
    axis = AxisMotion(0.0, 500_000.0, 0.005, TimeSeriesNoise(0, 21, 0.0, 0.01), 50.0, lambda move: event_rng(0, 41, move))
    axis.move_to(1.0, 60_000.0)
    at_b = axis.sample_position_nm(2.0)
    axis.move_to(3.0, 0.0)
    axis.move_to(5.0, 60_000.0)
    axis.move_to(7.0, 0.0)
    assert axis.sample_position_nm(2.0) == at_b and abs(at_b - 60_000.0) < 500.0
    assert axis.position_nm(0.5) == 0.0 and axis.position_nm(4.0) == 0.0 and axis.position_nm(6.0) == 60_000.0
    assert axis.position_nm(1.06) == pytest.approx(30_000.0)   # mid-travel of the first move
    assert axis.target_nm == 0.0 and not axis.is_moving(8.0)
