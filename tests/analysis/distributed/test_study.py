"""A study of three simulated runs (fresh, aged, aged at a higher rate): table, figures, COM ordering, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from operascope.acquisition.cli import main
from operascope.analysis.distributed.study import TABLE_COLUMNS, analyze_study, load_study_toml, study_runs
from operascope.analysis.synthetic_run import SyntheticParticle, make_synthetic_run

# Ageing moves the unreacted core off-centre: the COM distance grows with the core offset.
CORE_OFFSET_PX = {"fresh": (0.5, 0.0), "aged": (5.0, -2.5), "aged_fast": (7.0, -3.5)}


@pytest.fixture(scope="module")
def study_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("study")
    (folder / "runs").mkdir()
    for i, (name, offset) in enumerate(CORE_OFFSET_PX.items()):
        make_synthetic_run(folder / "runs" / f"{name}.h5", n_frames=10,
                           particles=[SyntheticParticle(40.0, 45.0, 16.0, offset)], seed=10 + i)
    (folder / "study.toml").write_text(
        '[[run]]\npath = "runs/fresh.h5"\ncondition = "fresh"\n'
        '[[run]]\npath = "runs/aged.h5"\ncondition = "aged"\n'
        '[[run]]\npath = "runs/aged_fast.h5"\ncondition = "aged, high rate"\n')
    return folder


def test_study_of_three_runs_writes_table_and_figures(study_folder: Path) -> None:
    import pyarrow.parquet as pq

    runs = load_study_toml(study_folder / "study.toml")
    out = study_folder / "out"
    summary = analyze_study(runs, out, workers=2)
    assert summary["n_runs"] == 3
    table = pq.read_table(out / "study.parquet").to_pydict()
    assert tuple(table) == TABLE_COLUMNS
    assert len(table["run"]) == 3 * 10 == summary["n_rows"]   # one particle per run, 10 bins
    csv_lines = (out / "study.csv").read_text().splitlines()
    assert csv_lines[0].split(",") == list(TABLE_COLUMNS) and len(csv_lines) == 31
    for name in ("study_com_vs_soc.png", "study_condition_summary.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    com = np.array(table["com_distance_nm"], dtype=float)
    cond = np.array(table["condition"])
    mean = {c: np.nanmean(com[cond == c]) for c in set(cond)}
    assert mean["aged"] > mean["fresh"] + 20.0
    assert mean["aged, high rate"] > mean["aged"]
    soc = np.array(table["soc"], dtype=float)
    assert np.all(np.isfinite(soc)) and soc.max() > soc.min()


def test_cli_many_runs_and_bad_inputs(study_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = sorted(str(p) for p in (study_folder / "runs").glob("*.h5"))
    out = study_folder / "cli_out"
    assert main(["analyze", *runs, "--out", str(out), "--workers", "2"]) == 0
    assert "study of 3 run(s)" in capsys.readouterr().out
    assert (out / "study.parquet").exists() and (out / "study.csv").exists()
    # several runs without --out, a missing file, a bad worker count: one clear error each, exit 2
    assert main(["analyze", *runs]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["analyze", runs[0], str(study_folder / "missing.h5"), "--out", str(out)]) == 2
    assert "missing.h5: file does not exist" in capsys.readouterr().err
    assert main(["analyze", runs[0], "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err
    a_file = study_folder / "a_file"
    a_file.write_text("mine")
    assert main(["analyze", *runs, "--out", str(a_file / "sub")]) == 2
    assert "--out" in capsys.readouterr().err and a_file.read_text() == "mine"


def test_study_toml_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "study.toml"
    bad.write_text("[[run]]\ncondition = 'x'\n")
    with pytest.raises(ValueError, match="study.toml.*path"):
        study_runs([bad])
    bad.write_text("not toml [")
    with pytest.raises(ValueError, match="not valid TOML"):
        study_runs([bad])


def test_a_bad_run_file_in_a_study_is_one_clear_error(study_folder: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "notes.h5"
    fake.write_text("not a run file")
    out = tmp_path / "out"
    assert main(["analyze", str(study_folder / "runs" / "fresh.h5"), str(fake), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("operascope: error:") and "notes.h5" in err[-1] and "HDF5" in err[-1]
    assert not (out / "study.parquet").exists()
