"""A frame stack of a run file as an ``xarray.Dataset``: ``frames`` over (time, y, x), time in s, y/x in µm."""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from operascope.analysis import runfile_layout as L
from operascope.analysis.runfile_tables import read_table


def images(kind: str) -> L.Images:
    """The layout entry of frame stack ``kind`` ("binned", "differential", "raw")."""
    try:
        return L.images_for(kind)   # also a position's "binned@A" (multi-position runs)
    except KeyError:
        raise ValueError(f"frame stack {kind!r} is not known; use one of {', '.join(i.key for i in L.IMAGES)}") from None


def to_xarray(h5: h5py.File, kind: str = "binned", frames: slice = slice(None)) -> Any:
    """Frames ``frames`` of stack ``kind`` with their per-frame columns as variables along ``time``."""
    import xarray as xr

    entry = images(kind)
    group = h5.get(entry.table.path)
    if not isinstance(group, h5py.Group) or L.FRAMES not in group:
        raise KeyError(f"this run file has no {kind} frames ({entry.table.path}/{L.FRAMES})")
    columns = read_table(h5, entry.table.key) or {}
    n = min([group[L.FRAMES].shape[0], *(v.shape[0] for v in columns.values())])
    start, stop, step = frames.indices(n)
    if step < 1:
        raise ValueError(f"frames={frames}: only forward slices are read")
    rows = np.arange(start, stop, step)
    data = group[L.FRAMES][start:stop:step] if rows.size else np.zeros((0, *group[L.FRAMES].shape[1:]),
                                                                       group[L.FRAMES].dtype)
    coords: dict[str, Any] = {}
    for axis in (L.Y_AXIS, L.X_AXIS):
        ds = group[axis]
        units = str(ds.attrs.get("units", "pixel"))
        coords[axis] = (axis, ds[()], {"units": units, "long_name": f"{axis} ({'µm' if units == 'um' else units})"})
    time = columns.get("time", np.arange(n, dtype=float))[rows]
    coords["time"] = ("time", time, {"units": "s", "long_name": "time since start_time"})
    frames_attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in group[L.FRAMES].attrs.items()
                    if k in ("units", "long_name", "interpretation", L.COMPRESSION_ATTR)}
    variables: dict[str, Any] = {"frames": (("time", L.Y_AXIS, L.X_AXIS), data, frames_attrs)}
    units = {c.name: c.units for c in entry.table.columns}
    for name, values in columns.items():
        if name != "time" and values.ndim == 1:
            variables[name] = ("time", values[rows], {"units": units[name]} if units.get(name) else {})
    if entry.with_mask and L.MASK in group:
        variables["mask"] = ((L.Y_AXIS, L.X_AXIS), group[L.MASK][()].astype(bool), {})
    start = h5[L.ENTRY].get(L.START_TIME)
    attrs = {"run_stack": kind}
    if start is not None:
        raw = start[()]
        attrs["start_time"] = raw.decode() if isinstance(raw, bytes) else str(raw)
    return xr.Dataset(variables, coords=coords, attrs=attrs)
