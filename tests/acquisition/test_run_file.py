"""The run file's guarantees (issue 14): never overwritten, one writer, portable, NeXus classes, UTF-8."""

from __future__ import annotations

import shutil
import subprocess

import h5py
import numpy as np
import pytest

from operascope.acquisition.binner import BinnedFrame
from operascope.acquisition.events import Event
from operascope.acquisition.run_file import RunFileExistsError
from operascope.acquisition.run_lock import RunFileInUseError, RunFileLock
from operascope.acquisition.run_writer import RunSetup, RunWriter
from operascope.analysis import runfile_layout as L
from operascope.devices.base import Frame

#: NXDL rules relied on (NeXus definitions: NXentry, NXdata, NXlog, NXpositioner, NXsource, NXdetector).
NXDL_RULES = {
    "NXlog": {"required": ("time", "value"), "time_attrs": ("start",)},
    "NXpositioner": {"required": ("value",)},
    "NXsource": {"required": ("type", "probe"),
                 "type": ("Spallation Neutron Source", "Pulsed Reactor Neutron Source", "Reactor Neutron Source",
                          "Synchrotron X-ray Source", "Pulsed Muon Source", "Rotating Anode X-ray",
                          "Fixed Tube X-ray", "UV Laser", "Free-Electron Laser", "Optical Laser", "Ion Source",
                          "UV Plasma Source", "Metal Jet X-ray", "Laser", "Dye Laser",
                          "Broadband Tunable Light Source", "Halogen lamp", "LED", "Mercury Cadmium Telluride Lamp",
                          "Deuterium Lamp", "Xenon Lamp", "Globar"),
                 "probe": ("neutron", "photon", "x-ray", "muon", "electron", "ultraviolet", "visible light",
                           "positron", "proton")},
    "NXdetector": {"forbidden": ("exposure_time", "frame_rate"), "recommended": ("count_time", "frame_time")},
    "NXdata": {"attrs": ("signal", "axes")},
}


def _setup(path, **kw) -> RunSetup:
    return RunSetup(path=str(path), frame_shape=(8, 10), t0_s=100.0, config_toml="",
                    camera={"exposure_time": 2.5, "frame_rate": 10.0, "pixel_size": 34.7, "roi": [4, 2, 10, 8]},
                    sample={"name": "x"}, **kw)


def _binned(k: int) -> BinnedFrame:
    return BinnedFrame(k, np.full((8, 10), k, np.float32), 2, 2 * k, 2 * k + 1, 100.0 + k, 100.5 + k, False, 0)


def _write(path, n=2, reason="done", **kw) -> None:
    writer = RunWriter(_setup(path, **kw))
    writer.start()
    for k in range(n):
        writer.write_binned(_binned(k), 3.9, 1e-4, 1.0)
        if kw.get("save_raw"):
            writer.write_raw(Frame(np.full((8, 10), 4096 + k, np.uint16), k, k * 1000, 100.0 + k))
    writer.close(reason)


def test_an_existing_file_is_refused_and_kept_unless_overwrite(tmp_path):
    path = tmp_path / "old.h5"
    path.write_bytes(b"previous run")
    writer = RunWriter(_setup(path))
    with pytest.raises(RunFileExistsError, match="exists"):
        writer.start()
    assert path.read_bytes() == b"previous run"
    assert not list(tmp_path.glob(".*partial")) and not list(tmp_path.glob("*.lock"))
    _write(path, overwrite=True)
    with h5py.File(path, "r") as f:
        assert f[L.BINNED][L.FRAMES].shape[0] == 2


def test_a_second_writer_is_refused_with_the_pid(tmp_path):
    path = tmp_path / "busy.h5"
    with RunFileLock(path):
        writer = RunWriter(_setup(path, overwrite=True))
        with pytest.raises(RunFileInUseError, match=r"file in use by PID \d+"):
            writer.start()
    assert not path.exists()


def test_nexus_rules_hold_for_every_group(tmp_path):
    path = tmp_path / "nx.h5"
    _write(path, save_raw=True, raw_compression="gzip")
    with h5py.File(path, "r") as f:
        assert f.attrs["default"] == "entry" and f["entry"].attrs["default"] == "binned"
        groups = []
        f.visititems(lambda name, obj: groups.append((name, obj)) if isinstance(obj, h5py.Group) else None)
        for name, group in groups:
            assert "NX_class" in group.attrs, name
            nx = group.attrs["NX_class"]
            rule = NXDL_RULES.get(nx, {})
            for field in rule.get("required", ()):
                assert field in group, f"{name} ({nx}) lacks {field}"
            for field in rule.get("forbidden", ()):
                assert field not in group, f"{name} ({nx}) has {field}"
            for field in rule.get("recommended", ()):
                assert field in group, f"{name} ({nx}) lacks {field}"
            for attr in rule.get("time_attrs", ()):
                assert attr in group["time"].attrs, name
            for attr in rule.get("attrs", ()):
                assert attr in group.attrs, name
            if nx == "NXdata":
                for axis in group.attrs["axes"]:
                    assert axis in group, f"{name}@axes names {axis}, which does not exist"
                assert group[L.FRAMES].attrs["interpretation"] == "image"
            if nx == "NXsource":
                assert group["type"][()].decode() in rule["type"] and group["probe"][()].decode() in rule["probe"]
        assert {g.attrs["NX_class"] for n, g in groups if n.startswith("entry/instrument/stage/")} == {"NXpositioner"}
        x = f[L.BINNED][L.X_AXIS]
        assert x.attrs["units"] == "um" and x[0] == pytest.approx(4 * 0.0347) and x[1] - x[0] == pytest.approx(0.0347)
        assert f[L.CAMERA]["frame_time"][()] == pytest.approx(0.1)


def test_end_time_is_valid_iso_and_a_long_stop_reason_is_never_cut(tmp_path):
    import datetime

    path = tmp_path / "long.h5"
    reason = "error: " + "é" * 1500
    _write(path, reason=reason)
    with h5py.File(path, "r") as f:
        assert f[L.ENTRY][L.STOP_REASON][()].decode() == reason
        datetime.datetime.fromisoformat(f[L.ENTRY][L.END_TIME][()].decode())


def test_text_is_cut_only_at_character_boundaries():
    cut = L.utf8_fixed("aé" * 10, 4)
    assert cut.decode("utf-8") == "aéa"


def test_raw_frames_are_readable_by_h5dump_and_name_their_filter(tmp_path):
    path = tmp_path / "raw.h5"
    _write(path, save_raw=True, raw_compression="gzip")
    with h5py.File(path, "r") as f:
        assert f[L.RAW][L.FRAMES].attrs[L.COMPRESSION_ATTR] == "gzip"
        assert "h5dump" in f[L.RAW][L.FRAMES].attrs[L.COMPRESSION_HOWTO_ATTR]
    if shutil.which("h5dump") is None:
        pytest.skip("h5dump (Debian hdf5-tools) not installed")
    out = subprocess.run(["h5dump", "-d", f"{L.RAW}/{L.FRAMES}", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "4097" in out.stdout


def test_default_bitshuffle_raw_frames_round_trip(tmp_path):
    path = tmp_path / "bs.h5"
    _write(path, save_raw=True)
    import hdf5plugin  # noqa: F401 - registers the filter

    with h5py.File(path, "r") as f:
        assert f[L.RAW][L.FRAMES].attrs[L.COMPRESSION_ATTR] == "bitshuffle-lz4"
        assert f[L.RAW][L.FRAMES][1].max() == 4097


def test_xarray_sees_time_y_x_coordinates(tmp_path):
    xr = pytest.importorskip("xarray")
    path = tmp_path / "xr.h5"
    _write(path)
    ds = xr.open_dataset(path, group="entry/binned", engine="h5netcdf", phony_dims="access")
    assert ds["frames"].dims == ("time", "y", "x")
    assert ds["x"].attrs["units"] == "um" and ds["time"].values.tolist() == pytest.approx([0.25, 1.25])
    ds.close()


def test_event_messages_survive_in_utf8(tmp_path):
    path = tmp_path / "ev.h5"
    writer = RunWriter(_setup(path))
    writer.start()
    writer.write_event(Event(101.0, "warning", "test", "ü" * 1500))
    writer.close("stopped")
    with h5py.File(path, "r") as f:
        assert f[L.EVENTS]["message"][0].decode("utf-8") == "ü" * 1024


def test_acquire_refuses_an_existing_out_in_one_line_with_status_2(tmp_path, capsys):
    from operascope.acquisition.cli import main

    out = tmp_path / "previous.h5"
    out.write_bytes(b"x" * 1000)
    assert main(["acquire", "--out", str(out), "--duration", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists" in err[0] and "--overwrite" in err[0]
    assert out.read_bytes() == b"x" * 1000
