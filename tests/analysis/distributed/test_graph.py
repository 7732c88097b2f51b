"""The Dask graph of one run equals the serial `operascope analyze` (the reference implementation)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from operascope.analysis.distributed.graph import AnalysisSettings, chunk_bounds, run_graph
from operascope.analysis.distributed.runner import compute, scheduler_address
from operascope.analysis.report import analyze_run
from operascope.analysis.synthetic_run import SyntheticParticle, make_synthetic_run

PARTICLES = [SyntheticParticle(40.0, 45.0, 16.0, (6.0, -3.0)), SyntheticParticle(80.0, 40.0, 12.0, (-4.0, 2.0))]


@pytest.fixture(scope="module")
def run_and_serial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    folder = tmp_path_factory.mktemp("run")
    path = folder / "run.h5"
    make_synthetic_run(path, n_frames=14, particles=PARTICLES, seed=3)
    analyze_run(path, folder / "serial")
    columns: dict[str, list[float]] = {}
    with open(folder / "serial" / "com.csv") as fh:
        for row in csv.DictReader(fh):
            for key, value in row.items():
                columns.setdefault(key, []).append(float(value))
    return path, {k: np.array(v) for k, v in columns.items()}


def _flat(result) -> dict[str, np.ndarray]:
    return {"particle": np.repeat([p.label for p in result.plan.particles], result.plan.n_frames),
            "com_distance_nm": result.com_nm.ravel(), "mean_differential": result.mean_differential.ravel(),
            "unreacted_fraction": result.unreacted_fraction.ravel()}


def _assert_equal_to_serial(result, serial: dict[str, np.ndarray]) -> None:
    flat = _flat(result)
    assert len(result.plan.particles) == 2
    np.testing.assert_array_equal(flat["particle"], serial["particle"])
    # the serial CSV is rounded to 4 decimals (nm) / 6 significant digits
    np.testing.assert_allclose(flat["com_distance_nm"], serial["com_distance_nm"], atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(flat["mean_differential"], serial["mean_differential"], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(flat["unreacted_fraction"], serial["unreacted_fraction"], rtol=1e-5, atol=1e-9)
    assert np.isfinite(flat["com_distance_nm"]).sum() >= 10


def test_chunks_cover_every_bin_once() -> None:
    assert chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunk_bounds(3, 64) == [(0, 3)]


def test_threaded_graph_equals_serial_path(run_and_serial) -> None:
    path, serial = run_and_serial
    # chunks of 4 bins: several tasks per run, the last one short
    (result,) = compute([run_graph(path, AnalysisSettings(chunk_bins=4))], workers=2)
    _assert_equal_to_serial(result, serial)


def test_graph_has_one_task_per_chunk_and_no_frames_in_it(run_and_serial) -> None:
    path, _ = run_and_serial
    graph = dict(run_graph(path, AnalysisSettings(chunk_bins=4)).__dask_graph__())
    assert sum(1 for key in graph if str(key).startswith("bins-")) == 4  # 14 bins / 4
    # the graph holds paths and settings only: nothing frame-sized is pickled from the client
    import pickle

    assert len(pickle.dumps(graph)) < 20_000


def test_local_cluster_with_two_processes_equals_serial_path(run_and_serial) -> None:
    distributed = pytest.importorskip("distributed")
    path, serial = run_and_serial
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            assert len(client.run(lambda: 1)) == 2   # two worker processes
            # the --scheduler path: the graph is sent to the cluster by its address, with the progress bar
            (result,) = compute([run_graph(path, AnalysisSettings(chunk_bins=5))],
                                scheduler=cluster.scheduler_address, progress=True)
    _assert_equal_to_serial(result, serial)


def test_scheduler_address_from_flag_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert scheduler_address(None) is None
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.2:8786")
    assert scheduler_address(None) == "tcp://10.0.0.2:8786"
    assert scheduler_address("tcp://host:9000") == "tcp://host:9000"
    with pytest.raises(ValueError, match="--scheduler"):
        scheduler_address("host:8786")


def test_bad_worker_count_is_one_clear_error(run_and_serial) -> None:
    path, _ = run_and_serial
    with pytest.raises(ValueError, match="--workers"):
        compute([run_graph(path)], workers=0)
