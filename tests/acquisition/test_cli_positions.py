"""`operascope acquire --positions FILE --dwell-bins K`: a multi-position run from the command line, and
one-line errors (exit status 2) for a bad list or flags."""

from __future__ import annotations

import pytest

from operascope.acquisition.cli import main
from operascope.analysis.runfile import open_run

LIST = """
[[positions]]
name = "A"
x_um = 0.0
y_um = 0.0

[[positions]]
name = "B"
x_um = 2.0
y_um = 1.0
z_offset_um = 0.05
"""


def run_main(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    """Status 2 and one error line; a warning line before it (e.g. --speed capped on a busy machine) is allowed."""
    lines = [line for line in err.strip().splitlines() if not line.startswith("operascope: warning: ")]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("operascope: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_acquire_positions_records_one_record_per_position(tmp_path, capsys):
    plist = tmp_path / "positions.toml"
    plist.write_text(LIST, encoding="utf-8")
    out = tmp_path / "multi.h5"
    code, stdout, err = run_main(capsys, "acquire", "--out", str(out), "--positions", str(plist), "--dwell-bins", "2",
                                 "--duration", "20", "--speed", "20", "--fps", "4", "--bin", "2", "--seed", "3")
    assert code == 0, err
    with open_run(out) as run:
        assert run.positions() == ["A", "B"]
        for name in ("A", "B"):
            view = run.for_position(name)
            assert view.n_frames >= 2
            visits = view.table("binned")["visit_index"]
            assert all((visits == v).sum() <= 2 for v in set(visits.tolist()))   # at most --dwell-bins per visit
        assert run.n_frames == 0   # nothing in the entry's own binned stack


@pytest.mark.parametrize("content, flags, fragments", [
    (None, ["--dwell-bins", "2"], ["--dwell-bins", "--positions"]),
    (LIST, ["--dwell-bins", "0"], ["--dwell-bins", ">= 1"]),
    ("[[positions]]\nname = 'A'\nx_um = 0.0\n", [], ["positions.toml", "y_um"]),
    (LIST.replace('"B"', '"A"'), [], ["positions.toml", "A"]),
    ("[[positions]]\nname = 'bad name'\nx_um = 0.0\ny_um = 0.0\n", [], ["positions.toml", "bad name"]),
    ("[[positions]]\nname = 'far'\nx_um = 9.0e5\ny_um = 0.0\n", [], ["far", "limit"]),
    ("not toml ][", [], ["positions.toml", "TOML"]),
])
def test_a_bad_position_list_or_flag_is_one_line_with_status_2_and_no_file(tmp_path, capsys, content, flags,
                                                                          fragments):
    plist = tmp_path / "positions.toml"
    args = ["acquire", "--out", str(tmp_path / "run.h5"), "--duration", "5", "--speed", "20"]
    if content is not None:
        plist.write_text(content, encoding="utf-8")
        args += ["--positions", str(plist)]
    code, _, err = run_main(capsys, *args, *flags)
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "run.h5").exists()


def test_a_missing_position_list_names_the_file(tmp_path, capsys):
    code, _, err = run_main(capsys, "acquire", "--out", str(tmp_path / "run.h5"), "--duration", "5",
                            "--positions", str(tmp_path / "nope.toml"))
    assert_one_line_error(code, err, "nope.toml", "not found")
