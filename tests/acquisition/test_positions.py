"""Position lists: TOML round trip, one clear refusal per kind of bad input, soft limits, no overwrite."""

from __future__ import annotations

import pytest

from operascope.acquisition.positions import (
    PositionList, StagePosition, load_positions, positions_to_toml, save_positions,
)

GOOD = """
# two fields of view
[[positions]]
name = "A"
x_um = 0.0
y_um = 0.0

[[positions]]
name = "b-2_aged"
x_um = 120.5
y_um = -40
z_offset_um = 0.35
fiducial_xy_um = [1.5, 8.0]
roi = [0, 0, 320, 288]
"""


def write(tmp_path, text, name="positions.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_reads_every_field_and_defaults(tmp_path):
    plist = load_positions(write(tmp_path, GOOD))
    assert plist.names() == ["A", "b-2_aged"]
    a, b = plist.positions
    assert a == StagePosition("A", 0.0, 0.0)
    assert a.z_offset_um == 0.0 and a.roi is None and a.fiducial_xy_um is None
    assert b == StagePosition("b-2_aged", 120.5, -40.0, 0.35, (0, 0, 320, 288), (1.5, 8.0))
    assert isinstance(b.y_um, float)


def test_toml_round_trip_is_exact(tmp_path):
    plist = PositionList((StagePosition("P1", 1.25, -3.5, -0.2, (4, 8, 64, 32), (0.1, 0.2)),
                          StagePosition("P2", 1e3, 2e3)))
    path = tmp_path / "out.toml"
    save_positions(plist, path)
    assert load_positions(path) == plist
    assert positions_to_toml(load_positions(path)) == positions_to_toml(plist)


def test_save_refuses_to_overwrite_unless_told(tmp_path):
    path = write(tmp_path, "user's precious file")
    plist = PositionList((StagePosition("A", 0, 0),))
    with pytest.raises(FileExistsError, match="already exists"):
        save_positions(plist, path)
    assert path.read_text(encoding="utf-8") == "user's precious file"
    save_positions(plist, path, overwrite=True)
    assert load_positions(path) == plist
    assert not list(tmp_path.glob("*.partial"))


def test_save_refuses_an_invalid_list_before_writing(tmp_path):
    path = tmp_path / "bad.toml"
    with pytest.raises(ValueError, match="duplicate"):
        save_positions(PositionList((StagePosition("A", 0, 0), StagePosition("A", 1, 1))), path)
    assert not path.exists()


@pytest.mark.parametrize("text, message", [
    ("", "empty position list"),
    ("positions = []", "empty position list"),
    ('[[positions]]\nname="A"\nx_um=0\ny_um=0\n[[positions]]\nname="A"\nx_um=1\ny_um=1\n',
     r"position 2 'A': duplicate name"),
    ('[[positions]]\nname="has space"\nx_um=0\ny_um=0\n', r"'has space'.*name must be 1-32 characters"),
    ('[[positions]]\nname="' + "x" * 33 + '"\nx_um=0\ny_um=0\n', "name must be 1-32"),
    ('[[positions]]\nname=""\nx_um=0\ny_um=0\n', "name must be 1-32"),
    ('[[positions]]\nname=3\nx_um=0\ny_um=0\n', "name must be 1-32"),
    ('[[positions]]\nname="A"\nx_um=0\n', r"'A': missing y_um"),
    ('[[positions]]\nname="A"\nx_um=0\ny_um=0\nz_um=3\n', r"'A': unknown key\(s\) z_um; allowed: name, x_um"),
    ('color="red"\n[[positions]]\nname="A"\nx_um=0\ny_um=0\n', "unknown top-level key"),
    ('[[positions]]\nname="A"\nx_um="ten"\ny_um=0\n', "x_um must be a number"),
    ('[[positions]]\nname="A"\nx_um=true\ny_um=0\n', "x_um must be a number"),
    ('[[positions]]\nname="A"\nx_um=nan\ny_um=0\n', "must be finite"),
    ('[[positions]]\nname="A"\nx_um=0\ny_um=0\nz_offset_um=1e9\n', "z_offset_um = .* must be finite and within"),
    ('[[positions]]\nname="A"\nx_um=0\ny_um=0\nroi=[0,0,10]\n', r"roi must be \[x, y, width, height\]"),
    ('[[positions]]\nname="A"\nx_um=0\ny_um=0\nroi=[0,0,0,10]\n', "width, height >= 1"),
    ('[[positions]]\nname="A"\nx_um=0\ny_um=0\nroi=[0,0,1.5,10]\n', "whole pixels"),
    ('[[positions]]\nname="A"\nx_um=0\ny_um=0\nfiducial_xy_um=[1]\n', r"fiducial_xy_um must be \[x, y\]"),
    ("[[positions]\n", "not valid TOML"),
])
def test_every_refusal_is_one_clear_value_error_naming_the_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as info:
        load_positions(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value).split("not valid TOML")[0]


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="position list not found"):
        load_positions(tmp_path / "nope.toml")


def test_soft_limits_refuse_a_position_outside(tmp_path):
    path = write(tmp_path, GOOD)
    limits = {"x": (-100.0, 100.0), "y": (-100.0, 100.0)}
    with pytest.raises(ValueError, match=r"'b-2_aged': x_um = 120.5 is outside the stage soft limits \[-100, 100\]"):
        load_positions(path, soft_limits_um=limits)
    assert load_positions(path, soft_limits_um={"x": (-200.0, 200.0), "y": (-50.0, 0.0)}).names() == ["A", "b-2_aged"]
    with pytest.raises(ValueError, match="y_um = -40 is outside"):
        load_positions(path, soft_limits_um={"y": (-10.0, 10.0)})


def test_by_name_and_len():
    plist = PositionList((StagePosition("A", 0, 0), StagePosition("B", 1, 1)))
    assert len(plist) == 2 and plist.by_name("B").x_um == 1
    with pytest.raises(KeyError, match="no position named 'C'"):
        plist.by_name("C")
