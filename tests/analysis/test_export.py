"""``operascope export``: OME-Zarr read back by ome-zarr's reader with the right pixel size, OME-TIFF
with its physical size, CSV logs; an existing output is never replaced without --overwrite."""

from __future__ import annotations

import numpy as np
import pytest

from operascope.acquisition.binner import BinnedFrame
from operascope.acquisition.cli import main
from operascope.acquisition.run_writer import RunSetup, RunWriter
from operascope.analysis.runfile import open_run

PIXEL_NM = 345.0
ROI = [16, 8, 12, 10]       # x0, y0, width, height
N_BINS = 4


@pytest.fixture(scope="module")
def run_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "run.h5"
    writer = RunWriter(RunSetup(path=str(path), frame_shape=(10, 12), t0_s=100.0, config_toml="",
                                camera={"pixel_size": PIXEL_NM, "roi": ROI, "frame_rate": 10.0}, sample={}))
    writer.start()
    rng = np.random.default_rng(1)
    for k in range(N_BINS):
        pixels = rng.uniform(100, 200, (10, 12)).astype(np.float32)
        writer.write_binned(BinnedFrame(k, pixels, 2, 2 * k, 2 * k + 1, 100.0 + 2 * k, 101.0 + 2 * k, False, 0),
                            3.9 + 0.01 * k, 1e-4, 0.5 * k)
    writer.close("done")
    return path


def _multiscale(path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    nodes = list(Reader(parse_url(str(path)))())
    assert nodes, f"ome-zarr's reader found no image in {path}"
    return nodes[0]


def test_ome_zarr_opens_with_ome_zarr_reader_with_the_pixel_size(run_path, tmp_path):
    out = tmp_path / "run.ome.zarr"
    assert main(["export", str(run_path), "--to", "ome-zarr", "--out", str(out)]) == 0
    node = _multiscale(out)
    axes = node.metadata["axes"]
    assert [a["name"] for a in axes] == ["t", "y", "x"]
    assert axes[1]["unit"] == axes[2]["unit"] == "micrometer" and axes[0]["unit"] == "second"
    scale, translation = node.metadata["coordinateTransformations"][0]
    assert scale["scale"] == pytest.approx([2.0, PIXEL_NM / 1000, PIXEL_NM / 1000])
    with open_run(run_path) as run:
        first_s = run.binned.time_s[0]
    assert first_s == pytest.approx(0.5)                 # the middle of the first bin (100.0..101.0 s)
    assert translation["translation"] == pytest.approx([first_s, ROI[1] * PIXEL_NM / 1000, ROI[0] * PIXEL_NM / 1000])
    data = np.asarray(node.data[0])
    with open_run(run_path) as run:
        np.testing.assert_array_equal(data, run.stack("binned")[()])


def test_ome_tiff_carries_physical_size_and_frames(run_path, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    out = tmp_path / "run.ome.tif"
    assert main(["export", str(run_path), "--to", "ome-tiff", "--out", str(out)]) == 0
    with tifffile.TiffFile(out) as tif:
        assert tif.is_ome
        data = tif.series[0].asarray()
        xml = tif.ome_metadata
    assert data.shape == (N_BINS, 10, 12)
    assert f'PhysicalSizeX="{PIXEL_NM / 1000:g}"' in xml and 'TimeIncrement="2.0"' in xml
    with open_run(run_path) as run:
        np.testing.assert_array_equal(data, run.stack("binned")[()])


def test_csv_logs_and_overwrite_refused(run_path, tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    out = tmp_path / "logs"
    assert main(["export", str(run_path), "--to", "csv", "--out", str(out)]) == 0
    echem = pd.read_csv(out / "electrochemistry.csv")
    assert "time [s]" in echem.columns and "voltage [V]" in echem.columns
    (out / "electrochemistry.csv").write_text("mine")
    capsys.readouterr()
    assert main(["export", str(run_path), "--to", "csv", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists" in err[0] and "--overwrite" in err[0]
    assert (out / "electrochemistry.csv").read_text() == "mine"
    assert main(["export", str(run_path), "--to", "csv", "--out", str(out), "--overwrite"]) == 0
    assert (out / "electrochemistry.csv").read_text() != "mine"
    assert not list(tmp_path.glob(".*partial"))


def test_a_run_without_frames_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "empty.h5"
    writer = RunWriter(RunSetup(path=str(path), frame_shape=(10, 12), t0_s=0.0, config_toml="", camera={},
                                sample={}))
    writer.start()
    writer.close("done")
    out = tmp_path / "x.ome.zarr"
    assert main(["export", str(path), "--to", "ome-zarr", "--out", str(out)]) == 2
    assert "no binned frames" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".*partial"))
