"""RunFile: creates the HDF5 run file from :mod:`operascope.analysis.runfile_layout` and appends to it.

Thread-free: one owner (the writer thread) calls it. The file is built under a temporary name, switched
to SWMR mode (every dataset exists, resizable), flushed, and only then placed at its final name — with
``os.link`` so an existing file is never replaced unless ``overwrite``. From then on the file at the
final name is valid after every flush. HDF5 format bounds are 1.10 so HDF5 1.10+ reads it.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import uuid
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from operascope.acquisition.raw_compression import get_filter
from operascope.analysis import runfile_layout as L

log = logging.getLogger(__name__)

#: Lowest/highest HDF5 file-format versions: 1.10 is the oldest with SWMR.
LIBVER = ("v110", "v110")
#: Chunk cache per dataset. Every dataset is append-only, so a few chunks suffice.
CHUNK_CACHE_BYTES = 64 * 1024
PROGRAM_NAME = "operascope"


class RunFileExistsError(FileExistsError, ValueError):
    """The output file exists and overwriting was not asked for."""


def iso_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="milliseconds")


def _partial_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


class RunFile:
    """An open run file being written. Values are appended as whole rows of a layout table."""

    def __init__(self, handle: h5py.File, path: Path, n_particles: int) -> None:
        self._h5 = handle
        self.path = path
        self._n_particles = n_particles
        self._durable: list[int] = []
        self.flushes = 0
        self._cols: dict[str, list[tuple[L.Column, h5py.Dataset]]] = {}
        self._frames: dict[str, h5py.Dataset] = {}
        for table in (*L.TABLES, *_position_tables(handle)):
            group = handle.get(table.path)
            if group is not None and table.columns[0].name in group:
                self._cols[table.key] = [(c, group[c.name]) for c in table.columns]
                if L.FRAMES in group:
                    self._frames[table.key] = group[L.FRAMES]
        self._all = [ds for cols in self._cols.values() for _, ds in cols] + list(self._frames.values())
        self._counts = (handle[L.CAMERA][L.FRAMES_IN], handle[L.CAMERA][L.FRAMES_DROPPED])
        self._last_counts: tuple[int, int] | None = None
        n_cols = len(self._all) - len(self._frames)
        self._frame_pos = {key: n_cols + k for k, key in enumerate(self._frames)}

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, setup: Any, overwrite: bool = False) -> "RunFile":
        """Lay out the file for ``setup`` (a RunSetup) and place it at ``setup.path``."""
        final = Path(setup.path)
        if final.exists() and not overwrite:
            raise RunFileExistsError(f"{final} exists; give another --out or --overwrite to replace it")
        tmp = _partial_name(final)
        handle = h5py.File(tmp, "w", libver=LIBVER, rdcc_nbytes=CHUNK_CACHE_BYTES)
        try:
            n_particles = _Builder(handle, setup).build()
            handle.swmr_mode = True
            handle.flush()
            _place(tmp, final, overwrite)
        except BaseException:
            handle.close()
            tmp.unlink(missing_ok=True)
            raise
        log.info("run file %s created (SWMR, HDF5 format 1.10)", final)
        return cls(handle, final, n_particles)

    # ------------------------------------------------------------------ appends
    def append(self, key: str, row: Mapping[str, Any] | Any) -> None:
        """Append one row to table ``key``; values by column ``attr`` from a mapping or an object."""
        is_map = isinstance(row, Mapping)
        for col, ds in self._cols[key]:
            value = row.get(col.attr) if is_map else getattr(row, col.attr, None)
            _append(ds, self._cell(col, value))

    def append_rows(self, key: str, rows: list[Mapping[str, Any]]) -> None:
        """Append several rows (mappings by column ``attr``) to table ``key``: one resize and write per column."""
        if not rows:
            return
        for col, ds in self._cols[key]:
            cells = [self._cell(col, row.get(col.attr)) for row in rows]
            n = ds.shape[0]
            ds.resize(n + len(cells), axis=0)
            ds[n:n + len(cells)] = np.asarray(cells, dtype=ds.dtype)

    def _cell(self, col: L.Column, value: Any) -> Any:
        if col.is_text:
            return L.utf8_fixed("" if value is None else str(value), L.width_of(col.dtype))
        if col.width is not None:
            out = np.full(self._n_particles, np.nan)
            values = np.asarray(value if value is not None else [], dtype=float).ravel()[: out.size]
            out[: values.size] = values
            return out
        if col.dtype.startswith("f"):
            try:
                return float(value)
            except (TypeError, ValueError):
                return float("nan")
        return int(value) if value is not None else -1

    def column(self, key: str, name: str) -> np.ndarray:
        """Every row of column ``name`` of table ``key`` written so far."""
        for col, ds in self._cols[key]:
            if col.name == name:
                return ds[()]
        raise KeyError(f"table {key!r} has no column {name!r}")

    def overwrite_column(self, key: str, name: str, values: np.ndarray) -> None:
        """Replace the first ``len(values)`` rows of column ``name`` of table ``key`` (e.g. refined times)."""
        for col, ds in self._cols[key]:
            if col.name == name:
                n = min(len(values), ds.shape[0])
                ds[:n] = np.asarray(values, dtype=ds.dtype)[:n]
                return
        raise KeyError(f"table {key!r} has no column {name!r}")

    def append_frame(self, key: str, pixels: np.ndarray) -> None:
        """Append one image to the frame stack of ``key`` ("binned", "differential", "raw")."""
        _append(self._frames[key], pixels)

    def has(self, key: str) -> bool:
        return key in self._cols

    def set_mask(self, mask: np.ndarray, key: str = "differential") -> None:
        self._h5[L.table_for(key).path][L.MASK][...] = np.asarray(mask, dtype=np.uint8)

    def set_positions_attr(self, name: str, value: Any) -> None:
        """Rewrite attribute ``name`` of /entry/positions (created at build time; SWMR allows only rewrites)."""
        self._h5[L.POSITIONS].attrs.modify(name, value)

    def set_counts(self, frames_in: int, frames_dropped: int) -> None:
        counts = (int(frames_in), int(frames_dropped))
        if counts != self._last_counts:
            self._counts[0][()], self._counts[1][()] = counts
            self._last_counts = counts

    # ------------------------------------------------------------------ durability

    def flush(self) -> None:
        """Flush to disk and remember every growing dataset's length (the rollback point)."""
        self._h5.flush()
        self.flushes += 1
        self._durable = [ds.shape[0] for ds in self._all]

    def length(self, key: str) -> int:
        """Frames in the stack of ``key`` known to be on disk (as of the last flush)."""
        if key not in self._frames or not self._durable:
            return 0
        return self._durable[self._frame_pos[key]]

    def roll_back(self) -> None:
        """Cut every growing dataset back to its length at the last good flush (after a write error)."""
        for ds, length in zip(self._all, self._durable):
            try:
                if ds.shape[0] > length:
                    ds.resize(length, axis=0)
            except Exception:  # noqa: BLE001 - best effort; the caller reports the error itself
                log.debug("rollback of a dataset failed", exc_info=True)

    def finish(self, stop_reason: str) -> None:
        """Write end_time and stop_reason (never cut: a longer reason is rewritten after closing)."""
        entry = self._h5[L.ENTRY]
        entry[L.END_TIME][()] = L.utf8_fixed(iso_now(), L.STAMP_BYTES)
        width = L.width_of(entry[L.STOP_REASON].dtype.str.lstrip("|"))
        entry[L.STOP_REASON][()] = L.utf8_fixed(stop_reason, width)
        self.flush()
        self._long_reason = stop_reason if len(stop_reason.encode("utf-8")) > width else None

    def close(self) -> None:
        """Close the file (and store a stop reason too long for its SWMR slot in full)."""
        self._h5.close()
        reason = getattr(self, "_long_reason", None)
        if reason is not None:
            try:
                with h5py.File(self.path, "r+") as f:
                    set_text(f[L.ENTRY], L.STOP_REASON, reason)
            except OSError as exc:
                log.warning("%s: full stop reason not stored (%s)", self.path, exc)


def set_text(group: h5py.Group, name: str, text: str) -> None:
    """Replace scalar dataset ``name`` of ``group`` by a variable-length UTF-8 string (non-SWMR file)."""
    if name in group:
        del group[name]
    group.create_dataset(name, data=text, dtype=h5py.string_dtype("utf-8"))


def _position_tables(handle: h5py.File) -> list[L.Table]:
    """The per-position tables of a multi-position file (none for a single-position run)."""
    names = handle.get(f"{L.POSITIONS}/name")
    if not isinstance(names, h5py.Dataset):
        return []
    return [t for name in names[()] for t in (*L.position_tables(name.decode("utf-8")),
                                               L.position_truth_table(name.decode("utf-8")))]


def _append(ds: h5py.Dataset, value: Any) -> None:
    n = ds.shape[0]
    ds.resize(n + 1, axis=0)
    ds[n] = value


def _place(tmp: Path, final: Path, overwrite: bool) -> None:
    """Give ``tmp`` the name ``final``: atomically refuse an existing file unless ``overwrite``."""
    if overwrite:
        os.replace(tmp, final)
        return
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise RunFileExistsError(f"{final} exists; give another --out or --overwrite to replace it") from None
    except OSError:  # no hard links on this file system: check, then rename
        if final.exists():
            raise RunFileExistsError(f"{final} exists; give another --out or --overwrite to replace it") from None
        os.replace(tmp, final)
        return
    tmp.unlink()


class _Builder:
    """Creates every group and dataset of the layout (before SWMR mode)."""

    def __init__(self, f: h5py.File, setup: Any) -> None:
        self.f = f
        self.s = setup
        self.start_iso = iso_now()

    def build(self) -> int:
        s, f = self.s, self.f
        f.attrs["default"] = L.DEFAULT_ENTRY
        for path, nx_class in L.GROUPS.items():
            f.require_group(path).attrs["NX_class"] = nx_class
        entry = f[L.ENTRY]
        entry.attrs["default"] = L.DEFAULT_DATA
        entry.create_dataset(L.START_TIME, data=self.start_iso).attrs["rig_clock_s"] = s.t0_s
        entry.create_dataset(L.END_TIME, data=np.bytes_(L.END_TIME_UNKNOWN), dtype=f"S{L.STAMP_BYTES}")
        entry.create_dataset(L.STOP_REASON, data=np.bytes_(b""), dtype="S1024")
        entry.create_dataset(L.TITLE, data=s.title)
        entry.create_dataset(L.RUN_ID, data=str(uuid.uuid4()))
        entry.create_dataset(L.PROGRAM_NAME, data=PROGRAM_NAME).attrs["version"] = s.program_version
        entry.create_dataset("config", data=s.config_toml).attrs["format"] = "toml"
        self._camera()
        self._sources()
        self._sample()
        n_particles = self._simulation() if s.particle_geometry is not None else 0
        positions = getattr(s, "positions", None)
        for table in L.TABLES:
            if table.optional == "raw" and not s.save_raw:
                continue
            if table.optional == "simulation" and s.particle_geometry is None:
                continue
            if table.optional == "positions" and not positions:
                continue
            self._table(table, n_particles)
        for images in L.IMAGES:
            if images.table.path in f:
                self._images(images)
        if positions:
            from operascope.acquisition.run_file_positions import build_positions

            build_positions(self, positions, int(getattr(s, "dwell_bins", 1)), n_particles)
        return n_particles

    def _table(self, table: L.Table, n_particles: int) -> None:
        group = self.f.require_group(table.path)
        group.attrs["NX_class"] = table.nx_class
        for k, v in table.attrs.items():
            group.attrs[k] = v
        scale = None
        for col in table.columns:
            extra = () if col.width is None else (n_particles,)
            ds = group.create_dataset(col.name, shape=(0, *extra), maxshape=(None, *extra),
                                      chunks=(256, *(max(1, e) for e in extra)), dtype=col.dtype)
            if col.units:
                ds.attrs["units"] = col.units
            if col.long_name:
                ds.attrs["long_name"] = col.long_name
            if col.name == "time":
                ds.attrs["start"] = self.start_iso
                ds.make_scale("time")
                scale = ds
        if scale is not None:
            for col in table.columns:
                if col.name != "time":
                    group[col.name].dims[0].attach_scale(scale)

    def _axes(self, roi: Any = None) -> tuple[np.ndarray, np.ndarray, str]:
        h, w = self.s.frame_shape
        if roi is not None:   # a position's own crop of the sensor
            w, h = int(roi[2]), int(roi[3])
        roi = list(roi or self.s.camera.get("roi") or [0, 0, w, h])
        pixel_nm = self.s.camera.get("pixel_size")
        if not pixel_nm:
            return np.arange(w, dtype=float), np.arange(h, dtype=float), "pixel"
        um = float(pixel_nm) / 1000.0
        return (roi[0] + np.arange(w)) * um, (roi[1] + np.arange(h)) * um, "um"

    def _images(self, images: L.Images, roi: Any = None) -> None:
        """The frame stack of ``images``; ``roi`` (sensor x, y, w, h) for a position's own crop."""
        h, w = self.s.frame_shape if roi is None else (int(roi[3]), int(roi[2]))
        group = self.f[images.table.path]
        group.attrs.update({"signal": L.FRAMES, "axes": ["time", L.Y_AXIS, L.X_AXIS], "time_indices": 0,
                            "y_indices": 1, "x_indices": 2})
        kwargs: dict[str, Any] = {}
        if images.key == "raw":
            flt = get_filter(self.s.raw_compression)
            kwargs = flt.h5py_kwargs()
        frames = group.create_dataset(L.FRAMES, shape=(0, h, w), maxshape=(None, h, w), chunks=(1, h, w),
                                      dtype=images.dtype, **kwargs)
        frames.attrs.update({"units": images.units, "long_name": images.long_name, "interpretation": "image"})
        if images.key == "raw":
            frames.attrs[L.COMPRESSION_ATTR] = flt.name
            frames.attrs[L.COMPRESSION_HOWTO_ATTR] = flt.howto
        x, y, units = self._axes(roi)
        for name, values in ((L.X_AXIS, x), (L.Y_AXIS, y)):
            ds = group.create_dataset(name, data=values)
            ds.attrs.update({"units": units, "long_name": f"{name} ({'µm' if units == 'um' else units})"})
            ds.make_scale(name)
        frames.dims[0].attach_scale(group["time"])
        frames.dims[1].attach_scale(group[L.Y_AXIS])
        frames.dims[2].attach_scale(group[L.X_AXIS])
        if images.with_mask:
            mask = group.create_dataset(L.MASK, shape=(h, w), dtype="u1", fillvalue=0)
            mask.dims[0].attach_scale(group[L.Y_AXIS])
            mask.dims[1].attach_scale(group[L.X_AXIS])

    def _camera(self) -> None:
        camera = self.f[L.CAMERA]
        for key, value in self.s.camera.items():
            name, units, scale = L.CAMERA_FIELDS.get(key, (key, "px" if key == "roi" else None, 1.0))
            if scale == "reciprocal":
                value = 1.0 / float(value) if value else float("nan")
            ds = camera.create_dataset(name, data=value)
            if units:
                ds.attrs["units"] = units
        camera.create_dataset(L.FRAMES_IN, data=0, dtype="i8")
        camera.create_dataset(L.FRAMES_DROPPED, data=0, dtype="i8")

    def _sources(self) -> None:
        for path, spec in L.SOURCES.items():
            group = self.f[path]
            group.create_dataset("type", data=spec["type"])
            group.create_dataset("probe", data=spec["probe"])
            group.create_dataset("wavelength", data=spec["wavelength_nm"]).attrs["units"] = "nm"

    def _sample(self) -> None:
        sample = self.f[L.SAMPLE]
        for key, value in self.s.sample.items():
            if value is None:
                continue
            sample.create_dataset(key, data=value)
        if "active_mass_mg" in sample:
            sample["active_mass_mg"].attrs["units"] = "mg"

    def _simulation(self) -> int:
        sim = self.f.require_group(L.SIMULATION)
        sim.attrs["NX_class"] = "NXcollection"
        parts = sim.create_group("particles")
        parts.attrs["NX_class"] = "NXcollection"
        columns = geometry_columns(self.s.particle_geometry)
        for name, values in columns.items():
            parts.create_dataset(name, data=np.asarray(values))
        return len(next(iter(columns.values()))) if columns else 0


def geometry_columns(geometry: Any) -> dict[str, list]:
    """Particle geometry as columns: accepts a dict of sequences or a sequence of dicts/objects."""
    if isinstance(geometry, dict):
        return {str(k): list(np.asarray(v).tolist()) for k, v in geometry.items()}
    rows = list(geometry)
    if not rows:
        return {}
    columns: dict[str, list] = {}
    for row in rows:
        items = row.items() if isinstance(row, dict) else vars(row).items() if hasattr(row, "__dict__") else (
            (k, getattr(row, k)) for k in row.__dataclass_fields__)  # type: ignore[union-attr]
        for key, value in items:
            if isinstance(value, (int, float, np.integer, np.floating, bool)):
                columns.setdefault(str(key), []).append(float(value))
    n = len(rows)
    return {k: v for k, v in columns.items() if len(v) == n}
