"""Read an operascope run file (HDF5 layout in DESIGN.md and analysis/runfile_layout.py).

Frames are read lazily (one frame or a region at a time); the small logs are read on open.
Optional groups that are absent come back as ``None``. A missing, empty, truncated or foreign
file raises :class:`operascope.analysis.errors.RunFileError` naming the file and what is missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from operascope.analysis import runfile_layout as layout
from operascope.analysis.errors import RunFileError
from operascope.analysis.runfile_check import truncation_error
from operascope.analysis import runfile_tables, runfile_xarray


@dataclass(frozen=True)
class BinnedInfo:
    """Per-binned-frame metadata (arrays of length n_frames)."""

    time_s: np.ndarray
    voltage_v: np.ndarray | None
    current_a: np.ndarray | None
    capacity_mAh_g: np.ndarray | None
    n_frames_in_bin: np.ndarray | None
    partial: np.ndarray | None
    host_time_s: np.ndarray | None = None       # mean host read time (time_s: mean exposure mid-time)


@dataclass(frozen=True)
class TechniqueTable:
    """Protocol steps: step index, technique kind (e.g. "ocv", "cc") and start time (s)."""

    step: np.ndarray
    kind: tuple[str, ...]
    start_time_s: np.ndarray


@dataclass(frozen=True)
class EchemData:
    """Potentiostat log. Current in A (positive = charge/delithiation by the writer's convention)."""

    time_s: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray
    capacity_mAh_g: np.ndarray | None
    step: np.ndarray | None
    cycle: np.ndarray | None
    techniques: TechniqueTable | None


@dataclass(frozen=True)
class FocusLockLog:
    """Focus-lock log: time (s), error (nm), objective z (nm), state name per sample."""

    time_s: np.ndarray
    error_nm: np.ndarray
    z_nm: np.ndarray | None
    state: tuple[str, ...] | None


@dataclass(frozen=True)
class SimulationTruth:
    """Ground truth written by the simulator (arrays over its own time base)."""

    time_s: np.ndarray
    drift_x_nm: np.ndarray | None
    drift_y_nm: np.ndarray | None
    drift_z_nm: np.ndarray | None
    defocus_nm: np.ndarray | None
    particle_theta: np.ndarray | None
    image_shift_x_nm: np.ndarray | None = None   # drift minus stage position (bin-averaged truth only)
    image_shift_y_nm: np.ndarray | None = None


def _decode(values: np.ndarray) -> tuple[str, ...]:
    out = []
    for v in np.asarray(values).ravel():
        out.append(v.decode("utf-8", "replace") if isinstance(v, (bytes, np.bytes_)) else str(v))
    return tuple(out)


class Run:
    """An open run file. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: Path, handle: h5py.File, open_kwargs: dict | None = None,
                 position: str | None = None) -> None:
        self.path = path
        self._h5 = handle
        self.position = position   # a view of one position of a multi-position run (see for_position)
        self._open_kwargs = dict(open_kwargs or {})
        try:
            self._load_metadata()
        except RunFileError:
            handle.close()
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            handle.close()
            raise RunFileError(f"{path}: unreadable run file metadata ({exc}); the file may be truncated") from exc

    # ------------------------------------------------------------------ loading
    def _array(self, path: str, dtype: type | None = float) -> np.ndarray | None:
        obj = self._h5.get(path)
        if not isinstance(obj, h5py.Dataset):
            return None
        data = obj[()]
        return np.asarray(data, dtype=dtype) if dtype is not None else np.asarray(data)

    def _scalar(self, group: str, name: str) -> float | None:
        obj = self._h5.get(f"{group}/{name}")
        if isinstance(obj, h5py.Dataset):
            value = np.asarray(obj[()], dtype=float).ravel()
            return float(value[0]) if value.size else None
        grp = self._h5.get(group)
        if grp is not None and name in grp.attrs:
            return float(np.asarray(grp.attrs[name], dtype=float).ravel()[0])
        return None

    def _key(self, kind: str) -> str:
        """Table/stack key of ``kind`` in this view ("binned" -> "binned@A" for position A)."""
        if self.position is None or kind not in ("binned", "differential", "truth_binned"):
            return kind
        return layout.position_key(kind, self.position)

    def _path(self, kind: str) -> str:
        return layout.table_for(self._key(kind)).path

    def _load_metadata(self) -> None:
        binned_path = self._path("binned")
        frames = self._h5.get(f"{binned_path}/frames")
        self._frames = frames if isinstance(frames, h5py.Dataset) else None
        if self._frames is not None and self._frames.ndim != 3:
            raise RunFileError(
                f"{self.path}: {binned_path}/frames has shape {self._frames.shape}; expected (n, height, width)"
            )
        n = self.n_frames
        time = self._array(f"{binned_path}/time")
        if time is None or time.size < n:
            time = np.arange(n, dtype=float) if time is None else np.concatenate([time, np.full(n - time.size, np.nan)])
        time = time[:n]

        def per_frame(name: str, dtype: type = float) -> np.ndarray | None:
            arr = self._array(f"{binned_path}/{name}", dtype)
            return None if arr is None or arr.size < n else arr[:n]

        self.binned = BinnedInfo(
            time_s=time,
            voltage_v=per_frame("voltage"),
            current_a=per_frame("current"),
            capacity_mAh_g=per_frame("capacity_mAh_g"),
            n_frames_in_bin=per_frame("n_frames_in_bin"),
            partial=per_frame("partial", bool),
            host_time_s=per_frame("host_time"),
        )
        self.pixel_size_nm = self._scalar(layout.CAMERA, "pixel_size")
        self.active_mass_mg = self._scalar(layout.SAMPLE, "active_mass_mg")
        self.config_toml = self._text(layout.CONFIG)
        self.echem = self._load_echem()
        self.focus_lock = self._load_focus_lock()
        self.truth = self._load_truth()
        self.truth_binned = self._load_truth_binned(n)

    def _text(self, path: str) -> str | None:
        obj = self._h5.get(path)
        if not isinstance(obj, h5py.Dataset):
            return None
        raw = obj[()]
        if isinstance(raw, (bytes, np.bytes_)):
            return raw.decode("utf-8", "replace")
        return raw if isinstance(raw, str) else None

    def _load_echem(self) -> EchemData | None:
        base = layout.ELECTROCHEMISTRY
        t = self._array(f"{base}/time")
        v = self._array(f"{base}/voltage")
        i = self._array(f"{base}/current")
        if t is None or v is None or i is None:
            return None
        n = min(t.size, v.size, i.size)

        def opt(name: str) -> np.ndarray | None:
            arr = self._array(f"{base}/{name}")
            return arr[:n] if arr is not None and arr.size >= n else None

        step = opt("step")
        cycle = opt("cycle")
        techniques = None
        t_step = self._array(f"{base}/techniques/step")
        t_kind = self._array(f"{base}/techniques/kind", None)
        if t_step is not None and t_kind is not None:
            t_start = self._array(f"{base}/techniques/start_time")
            m = min(t_step.size, np.asarray(t_kind).size)
            techniques = TechniqueTable(
                step=t_step[:m],
                kind=_decode(t_kind)[:m],
                start_time_s=t_start[:m] if t_start is not None and t_start.size >= m else np.full(m, np.nan),
            )
        return EchemData(
            time_s=t[:n], voltage_v=v[:n], current_a=i[:n], capacity_mAh_g=opt("capacity_mAh_g"),
            step=None if step is None else step.astype(int), cycle=None if cycle is None else cycle.astype(int),
            techniques=techniques,
        )

    def _load_focus_lock(self) -> FocusLockLog | None:
        base = f"{layout.FOCUS_LOCK}/log"
        t = self._array(f"{base}/time")
        e = self._array(f"{base}/error_nm")
        if t is None or e is None:
            return None
        n = min(t.size, e.size)
        z = self._array(f"{base}/z_nm")
        raw_state = self._array(f"{base}/state", None)
        state = None
        if raw_state is not None and raw_state.size >= n:
            if np.issubdtype(raw_state.dtype, np.integer):
                names = layout.FOCUS_STATES
                state = tuple(names[k] if 0 <= k < len(names) else str(k) for k in raw_state[:n].tolist())
            else:
                state = _decode(raw_state[:n])
        return FocusLockLog(t[:n], e[:n], z[:n] if z is not None and z.size >= n else None, state)

    def _load_truth(self) -> SimulationTruth | None:
        base = layout.SIMULATION
        t = self._array(f"{base}/time")
        if t is None:
            return None
        n = t.size

        def opt(name: str) -> np.ndarray | None:
            arr = self._array(f"{base}/{name}")
            return arr[:n] if arr is not None and arr.shape[0] >= n else None

        return SimulationTruth(t, opt("drift_x_nm"), opt("drift_y_nm"), opt("drift_z_nm"), opt("defocus_nm"),
                               opt("particle_theta"))

    def _load_truth_binned(self, n: int) -> SimulationTruth | None:
        """The truth averaged over each binned frame's exposures, one row per binned frame (or None)."""
        base = self._path("truth_binned")
        t = self._array(f"{base}/time")
        if t is None or t.size < n or n == 0:
            return None

        def col(name: str) -> np.ndarray | None:
            arr = self._array(f"{base}/{name}")
            return arr[:n] if arr is not None and arr.shape[0] >= n else None

        return SimulationTruth(t[:n], col("drift_x_nm"), col("drift_y_nm"), col("drift_z_nm"), None, None,
                               col("image_shift_x_nm"), col("image_shift_y_nm"))

    # ------------------------------------------------------------------ frames
    @property
    def has_frames(self) -> bool:
        """True if the file holds at least one binned frame."""
        return self._frames is not None and self._frames.shape[0] > 0

    @property
    def n_frames(self) -> int:
        """Number of binned frames (0 if none)."""
        return 0 if self._frames is None else int(self._frames.shape[0])

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(height, width) of a binned frame."""
        self.require_frames()
        return int(self._frames.shape[1]), int(self._frames.shape[2])

    def require_frames(self) -> None:
        """Raise :class:`RunFileError` unless binned frames are present."""
        if not self.has_frames:
            names = self.positions() if self.position is None else []
            if names:
                raise RunFileError(f"{self.path}: a multi-position run (positions {', '.join(names)}): its frames are "
                                   f"per position; read one with Run.for_position(name)")
            raise RunFileError(f"{self.path}: no binned frames ({self._path('binned')}/frames is missing or empty)")

    def require_echem(self) -> EchemData:
        """The electrochemistry log, or :class:`RunFileError` if it is absent or empty."""
        if self.echem is None or self.echem.time_s.size == 0:
            raise RunFileError(
                f"{self.path}: no electrochemistry data ({layout.ELECTROCHEMISTRY}/time, voltage, current)"
            )
        return self.echem

    def frame(self, index: int) -> np.ndarray:
        """Binned frame ``index`` as float32 (h, w)."""
        return self.frame_region(index, slice(None), slice(None))

    def frame_region(self, index: int, rows: slice, cols: slice) -> np.ndarray:
        """A rectangular region of binned frame ``index`` (float32); reads only that region."""
        self.require_frames()
        if not (0 <= index < self.n_frames):
            raise IndexError(f"frame index {index} outside 0..{self.n_frames - 1}")
        try:
            return np.asarray(self._frames[index, rows, cols], dtype=np.float32)
        except (OSError, RuntimeError) as exc:
            raise RunFileError(f"{self.path}: binned frame {index} cannot be read ({exc}); file truncated?") from exc

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Every binned frame in order."""
        for k in range(self.n_frames):
            yield self.frame(k)

    # ------------------------------------------------------------------ every group
    def text(self, name: str) -> str | None:
        """A text scalar of /entry: "start_time", "end_time", "stop_reason", "title", "run_id", ..."""
        return self._text(f"{layout.ENTRY}/{name}")

    @property
    def start_time(self) -> str | None:
        return self.text(layout.START_TIME)

    @property
    def end_time(self) -> str | None:
        """ISO 8601 end time; "unknown" while recording (or after a crash, until ``operascope repair``)."""
        return self.text(layout.END_TIME)

    @property
    def stop_reason(self) -> str | None:
        """Why the run stopped ("" while recording or after a crash before repair; "crashed" after repair)."""
        return self.text(layout.STOP_REASON)

    @property
    def tables(self) -> tuple[str, ...]:
        """Keys of the tables this file holds (see runfile_layout.TABLE): "echem", "focus", "events", ..."""
        return tuple(t.key for t in layout.TABLES if isinstance(self._h5.get(f"{t.path}/{t.columns[0].name}"),
                                                                  h5py.Dataset))

    def table(self, key: str) -> dict[str, np.ndarray] | None:
        """Columns of table ``key`` ("binned", "differential", "raw", "echem", "techniques", "focus",
        "calibration", "led", "laser", "stage_x"/"_y"/"_z", "events", "truth"); None if absent."""
        if key not in layout.TABLE:
            raise ValueError(f"table {key!r} is not known; use one of {', '.join(layout.TABLE)}")
        return runfile_tables.read_table(self._h5, self._key(key))

    @property
    def events(self) -> dict[str, np.ndarray] | None:
        return self.table("events")

    def stack(self, kind: str = "binned") -> h5py.Dataset | None:
        """The frame stack ``kind`` ("binned", "differential", "raw") as a lazy h5py dataset, or None."""
        obj = self._h5.get(f"{runfile_xarray.images(self._key(kind)).table.path}/{layout.FRAMES}")
        return obj if isinstance(obj, h5py.Dataset) else None

    @property
    def differential_mask(self) -> np.ndarray | None:
        arr = self._array(f"{self._path('differential')}/{layout.MASK}", None)
        return None if arr is None else arr.astype(bool)

    def to_dataframe(self, key: str = "echem") -> "pandas.DataFrame":  # noqa: F821
        """Table ``key`` as a pandas DataFrame indexed by time (s); units in ``.attrs["units"]``."""
        if key not in layout.TABLE:
            raise ValueError(f"table {key!r} is not known; use one of {', '.join(layout.TABLE)}")
        return runfile_tables.to_dataframe(self._h5, self._key(key))

    def to_xarray(self, kind: str = "binned", frames: slice = slice(None)) -> "xarray.Dataset":  # noqa: F821
        """Frame stack ``kind`` as an xarray Dataset: ``frames`` (time, y, x), time in s, y/x in µm."""
        return runfile_xarray.to_xarray(self._h5, self._key(kind), frames)

    # ------------------------------------------------------------------ multi-position runs
    def positions(self) -> list[str]:
        """The position names of a multi-position run, in list order (empty for a single-position run)."""
        names = self._h5.get(f"{layout.POSITIONS}/name")
        return list(_decode(names[()])) if isinstance(names, h5py.Dataset) else []

    def for_position(self, name: str) -> "Run":
        """A view of position ``name``: its binned/differential frames, tables, mask and metadata; the
        electrochemistry, focus log, events and every other table stay the entry's. Shares this file handle
        (close the parent, not the view)."""
        names = self.positions()
        if name not in names:
            allowed = ", ".join(names) if names else "none (this is a single-position run)"
            raise RunFileError(f"{self.path}: no position {name!r}; positions: {allowed}")
        return Run(self.path, self._h5, self._open_kwargs, position=name)

    def simulation_particles(self) -> dict[str, np.ndarray] | None:
        """Simulated runs: the particles' truth geometry (/entry/simulation/particles), or in a position's view
        the particles of its field (index into those, x_px/y_px in its image, radius_px, whole_in_view)."""
        group = layout.SIMULATION if self.position is None else layout.position_simulation(self.position)
        return runfile_tables.read_arrays(self._h5, f"{group}/particles")

    def refresh(self) -> None:
        """See the records a writer has added since opening (SWMR); re-reads the small logs."""
        # Reopening is the robust refresh: H5Drefresh on one handle of a dataset evicts metadata that other
        # open handles of it still use ("can't insert duplicate key" on the next read).
        self._h5.close()
        self._h5 = h5py.File(str(self.path), "r", **self._open_kwargs)
        self._load_metadata()

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Close the HDF5 file."""
        self._h5.close()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_run(path: str | os.PathLike[str]) -> Run:
    """Open a run file read-only (SWMR-tolerant). Raises :class:`RunFileError` for bad files."""
    p = Path(path)
    if not p.exists():
        raise RunFileError(f"{p}: file does not exist")
    if p.is_dir():
        raise RunFileError(f"{p}: is a directory, not a run file")
    if p.stat().st_size == 0:
        raise RunFileError(f"{p}: file is empty (0 bytes); not an HDF5 run file")
    try:
        is_hdf5 = h5py.is_hdf5(str(p))
    except OSError as exc:
        raise RunFileError(f"{p}: cannot be read ({exc})") from exc
    if not is_hdf5:
        raise RunFileError(f"{p}: not an HDF5 file (no HDF5 signature); expected an operascope run file")
    cut = truncation_error(p)
    if cut is not None:
        raise RunFileError(cut)
    import hdf5plugin  # noqa: F401 - registers the raw-frame filters (bitshuffle/blosc) with HDF5

    handle = None
    errors = []
    for kwargs in ({"swmr": True, "locking": False}, {"locking": False}, {}):
        try:
            handle = h5py.File(str(p), "r", **kwargs)
            opened_with = kwargs
            break
        except (OSError, ValueError, TypeError) as exc:
            errors.append(str(exc))
    if handle is None:
        raise RunFileError(f"{p}: HDF5 file cannot be opened, it is probably truncated or corrupt ({errors[-1]})")
    try:
        has_entry = isinstance(handle.get(layout.ENTRY), h5py.Group)
    except (OSError, RuntimeError) as exc:
        handle.close()
        raise RunFileError(f"{p}: HDF5 structure unreadable, probably truncated ({exc})") from exc
    if not has_entry:
        top = ", ".join(sorted(handle.keys())[:5]) or "nothing"
        handle.close()
        raise RunFileError(f"{p}: not an operascope run file (no {layout.ENTRY} group; top level holds {top})")
    return Run(p, handle, opened_with)
