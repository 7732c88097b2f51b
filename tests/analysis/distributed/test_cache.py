"""Incremental analysis: a run that has grown recomputes only its new chunks; cached results equal fresh ones."""

from __future__ import annotations

import h5py
import numpy as np
from pathlib import Path

from operascope.analysis import runfile_layout as layout
from operascope.analysis.distributed.graph import AnalysisSettings, run_graph
from operascope.analysis.distributed.runner import compute
from operascope.analysis.distributed.study import StudyRun, analyze_study
from operascope.analysis.synthetic_run import make_synthetic_run, write_run_file


def _grown_pair(folder: Path) -> tuple[Path, Path]:
    """The same acquisition stopped after 12 bins and after 16 (small drift: same border in both)."""
    full = folder / "full.h5"
    make_synthetic_run(full, n_frames=16, drift_rate_nm_per_frame=(1.0, -1.0), drift_jitter_nm=0.5, seed=4)
    early = folder / "early.h5"
    with h5py.File(full, "r") as f:
        binned = f[layout.BINNED]
        frames = binned["frames"][:12]
        time_s, cap, volt, cur = (binned[n][:12] for n in ("time", "capacity_mAh_g", "voltage", "current"))
    write_run_file(early, list(frames), frames.shape[1:], time_s, cap, volt, cur, 34.7)
    return early, full


def test_grown_run_recomputes_only_new_chunks(tmp_path: Path) -> None:
    early, full = _grown_pair(tmp_path)
    cache = tmp_path / "cache"
    settings = AnalysisSettings(chunk_bins=4)
    (first,) = compute([run_graph(early, settings, cache)], workers=2)
    assert (first.n_chunks, first.n_chunks_cached) == (3, 0)
    (again,) = compute([run_graph(early, settings, cache)], workers=2)
    assert (again.n_chunks, again.n_chunks_cached) == (3, 3)
    np.testing.assert_array_equal(again.com_nm, first.com_nm)
    (grown,) = compute([run_graph(full, settings, cache)], workers=2)
    assert (grown.n_chunks, grown.n_chunks_cached) == (4, 3)
    (fresh,) = compute([run_graph(full, settings)], workers=2)
    np.testing.assert_allclose(grown.com_nm, fresh.com_nm, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(grown.unreacted_fraction, fresh.unreacted_fraction, atol=1e-9)
    # other settings: nothing reused
    (other,) = compute([run_graph(full, AnalysisSettings(chunk_bins=4, unreacted_threshold=0.08), cache)])
    assert other.n_chunks_cached == 0


def test_study_with_one_new_run_computes_only_that_run(tmp_path: Path) -> None:
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    make_synthetic_run(a, n_frames=8, seed=1)
    make_synthetic_run(b, n_frames=8, seed=2)
    out = tmp_path / "study"
    first = analyze_study([StudyRun(a, "fresh")], out, AnalysisSettings(chunk_bins=4))
    assert (first["n_chunks"], first["n_chunks_from_cache"]) == (2, 0)
    second = analyze_study([StudyRun(a, "fresh"), StudyRun(b, "aged")], out, AnalysisSettings(chunk_bins=4))
    assert (second["n_chunks"], second["n_chunks_from_cache"]) == (4, 2)
