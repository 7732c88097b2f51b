"""``operascope export run.h5 --to ome-zarr|ome-tiff|csv``: a run file in the formats other tools read.

- **ome-zarr**: the binned (or differential) frames as an OME-Zarr image (axes t, y, x; physical pixel
  size in µm and the mean bin interval in s as its scale; y/x origin of the ROI as translation; every
  frame's own time in the ``operascope`` attribute). Opens in napari (napari-ome-zarr) and Fiji (OME-Zarr
  reader / MoBIE).
- **ome-tiff**: the same frames as one OME-TIFF (PhysicalSizeX/Y in µm, TimeIncrement in s, each plane's
  DeltaT), written frame by frame.
- **csv**: a folder with ``electrochemistry.csv`` and ``focus_lock.csv`` (time in s and one column per
  quantity, units in the header).

Output is written under a temporary name and renamed when complete; an existing output is refused
unless ``overwrite`` (no half-written export under the name you gave).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from operascope.analysis import runfile_layout as L
from operascope.analysis.errors import RunFileError
from operascope.analysis.runfile import Run, open_run

log = logging.getLogger(__name__)

FORMATS = ("ome-zarr", "ome-tiff", "csv")
STACKS = ("binned", "differential")
#: CSV files of a csv export: file name -> table key.
CSV_TABLES = {"electrochemistry.csv": "echem", "focus_lock.csv": "focus"}


def export(run_path: str | os.PathLike[str], to: str, out: str | os.PathLike[str], what: str = "binned",
           overwrite: bool = False) -> list[str]:
    """Export ``run_path`` as ``to`` into ``out``; returns lines saying what was written."""
    if to not in FORMATS:
        raise ValueError(f"--to {to!r} is not a known format; use one of {', '.join(FORMATS)}")
    if what not in STACKS:
        raise ValueError(f"--what {what!r} is not a frame stack; use one of {', '.join(STACKS)}")
    target = Path(out)
    if target.exists() and not overwrite:
        raise ValueError(f"--out {target} exists; give another --out or --overwrite to replace it")
    writer: Callable[[Run, Path, str], list[str]] = {"ome-zarr": _ome_zarr, "ome-tiff": _ome_tiff,
                                                     "csv": _csv}[to]
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    _remove(partial)
    with open_run(run_path) as run:
        try:
            said = writer(run, partial, what)
        except BaseException:
            _remove(partial)
            raise
    if target.exists():                       # only reached with overwrite
        _remove(target)
    os.replace(partial, target)
    return [f"{target}: {line}" for line in said]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def frame_geometry(run: Run, what: str) -> dict[str, Any]:
    """Frames dataset, per-frame times (s), pixel size (µm or None) and the ROI origin (µm) of ``what``."""
    ds = run.stack(what)
    if ds is None or ds.shape[0] == 0:
        raise RunFileError(f"{run.path}: no {what} frames to export")
    table = run.table(what) or {}
    n = min(ds.shape[0], table["time"].shape[0]) if "time" in table else ds.shape[0]
    times = np.asarray(table.get("time", np.arange(n, dtype=float))[:n], dtype=float)
    group = ds.parent
    units = str(group[L.X_AXIS].attrs.get("units", "pixel"))
    pixel_um = float(run.pixel_size_nm) / 1000.0 if (run.pixel_size_nm and units == "um") else None
    origin = (float(group[L.Y_AXIS][0]), float(group[L.X_AXIS][0])) if pixel_um else (0.0, 0.0)
    steps = np.diff(times)
    steps = steps[np.isfinite(steps) & (steps > 0)]
    dt_s = float(np.median(steps)) if steps.size else 1.0
    return {"frames": ds, "n": n, "time_s": times, "pixel_um": pixel_um, "origin_um": origin, "dt_s": dt_s}


def _ome_zarr(run: Run, out: Path, what: str) -> list[str]:
    import dask.array as da
    import zarr
    from ome_zarr.writer import write_image

    g = frame_geometry(run, what)
    ds, n = g["frames"], g["n"]
    h, w = ds.shape[1:]
    image = da.from_array(ds, chunks=(1, h, w))[:n]
    px = g["pixel_um"] or 1.0
    root = zarr.open_group(str(out), mode="w")
    write_image(image, root, axes=["t", "y", "x"], scale={"t": g["dt_s"], "y": px, "x": px},
                axes_units={"t": "second", "y": "micrometer", "x": "micrometer"} if g["pixel_um"] else
                {"t": "second"}, scale_factors=[], name=f"{run.path.stem} {what}")
    _set_translation(root, [float(g["time_s"][0]), *g["origin_um"]])
    root.attrs["operascope"] = {"run": str(run.path), "stack": what, "time_s": g["time_s"].tolist(),
                                "origin_um": list(g["origin_um"]), "start_time": run.start_time,
                                "units": str(ds.attrs.get("units", ""))}
    size = f"{px:g} µm" if g["pixel_um"] else "unknown (pixel units)"
    return [f"OME-Zarr of {n} {what} frames {h}x{w}, pixel {size}, time step {g['dt_s']:.3g} s"]


def _set_translation(root: Any, origin: list[float]) -> None:
    """Put the first frame's time and the ROI origin (µm) as the image's translation."""
    attrs = root.attrs.asdict()
    holder = attrs.get("ome", attrs)                # OME-Zarr 0.5 keeps its metadata under "ome"
    for scale in holder.get("multiscales", []):
        for dataset in scale.get("datasets", []):
            transforms = [t for t in dataset.get("coordinateTransformations", []) if t.get("type") != "translation"]
            dataset["coordinateTransformations"] = [*transforms, {"type": "translation", "translation": origin}]
    root.attrs.update({"ome": holder} if "ome" in attrs else holder)


def _ome_tiff(run: Run, out: Path, what: str) -> list[str]:
    import tifffile

    g = frame_geometry(run, what)
    ds, n = g["frames"], g["n"]
    h, w = ds.shape[1:]
    metadata: dict[str, Any] = {"axes": "TYX", "TimeIncrement": g["dt_s"], "TimeIncrementUnit": "s",
                                "Plane": {"DeltaT": g["time_s"].tolist(), "DeltaTUnit": ["s"] * n},
                                "Name": f"{run.path.stem} {what}"}
    if g["pixel_um"]:
        metadata.update({"PhysicalSizeX": g["pixel_um"], "PhysicalSizeXUnit": "µm",
                         "PhysicalSizeY": g["pixel_um"], "PhysicalSizeYUnit": "µm"})
    with tifffile.TiffWriter(out, ome=True, bigtiff=ds.nbytes > 2**31) as tif:
        tif.write((np.asarray(ds[k]) for k in range(n)), shape=(n, h, w), dtype=ds.dtype,
                  photometric="minisblack", metadata=metadata)
    return [f"OME-TIFF of {n} {what} frames {h}x{w}"]


def _csv(run: Run, out: Path, what: str) -> list[str]:
    out.mkdir(parents=True)
    said = []
    for name, key in CSV_TABLES.items():
        try:
            frame = run.to_dataframe(key)
        except KeyError:
            said.append(f"{name}: not written (the run has no {L.TABLE[key].path})")
            continue
        units = frame.attrs.get("units", {})
        frame = frame.rename(columns={c: f"{c} [{units[c]}]" for c in frame.columns if c in units})
        frame.index.name = "time [s]"
        frame.to_csv(out / name)
        said.append(f"{name}: {len(frame)} rows")
    return said
