"""Read the tables of a run file (one row per record) from the layout in :mod:`runfile_layout`.

Every column of a table is cut to the rows all columns hold (a file being written may have one column a
row ahead of another); text columns come back as ``str``; the focus-lock state as its name.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from operascope.analysis import runfile_layout as L


def decode_text(values: Any) -> np.ndarray:
    """Bytes (fixed or variable length) as an array of ``str``."""
    arr = np.asarray(values)
    if arr.dtype.kind in ("S", "O"):
        flat = [v.decode("utf-8", "replace") if isinstance(v, (bytes, np.bytes_)) else str(v) for v in arr.ravel()]
        return np.asarray(flat, dtype=object).reshape(arr.shape)
    return arr


def read_table(h5: h5py.File, key: str) -> dict[str, np.ndarray] | None:
    """Columns of table ``key`` (names as in the file) cut to a common length; None if the table is absent."""
    table = L.table_for(key)
    group = h5.get(table.path)
    if not isinstance(group, h5py.Group):
        return None
    present = [c for c in table.columns if isinstance(group.get(c.name), h5py.Dataset)]
    if not present:
        return None
    n = min(group[c.name].shape[0] for c in present)
    out: dict[str, np.ndarray] = {}
    for col in present:
        data = group[col.name][:n]
        out[col.name] = decode_text(data) if col.is_text else np.asarray(data)
    if key == "focus" and "state" in out:
        names = L.FOCUS_STATES
        out["state"] = np.asarray([names[k] if 0 <= k < len(names) else str(k) for k in out["state"].tolist()],
                                  dtype=object)
    return out


def read_arrays(h5: h5py.File, path: str) -> dict[str, np.ndarray] | None:
    """Every dataset of group ``path`` as an array (None if the group is absent)."""
    group = h5.get(path)
    if not isinstance(group, h5py.Group):
        return None
    return {name: np.asarray(ds[()]) for name, ds in group.items() if isinstance(ds, h5py.Dataset)}


def table_units(key: str) -> dict[str, str]:
    """Column name -> units for table ``key`` (columns without units left out)."""
    return {c.name: c.units for c in L.table_for(key).columns if c.units}


def to_dataframe(h5: h5py.File, key: str) -> Any:
    """Table ``key`` as a pandas DataFrame (indexed by ``time`` in s when it has one); units in ``.attrs``."""
    import pandas as pd

    columns = read_table(h5, key)
    if columns is None:
        raise KeyError(f"this run file has no {key!r} table ({L.table_for(key).path})")
    flat = {name: values for name, values in columns.items() if values.ndim == 1}
    wide = {name: values for name, values in columns.items() if values.ndim == 2}
    for name, values in wide.items():               # e.g. particle_theta: one column per particle
        for k in range(values.shape[1]):
            flat[f"{name}_{k}"] = values[:, k]
    frame = pd.DataFrame(flat)
    if "time" in frame.columns:
        frame = frame.set_index("time")
        frame.index.name = "time_s"
    frame.attrs["units"] = table_units(key)
    frame.attrs["source"] = L.table_for(key).path
    return frame
