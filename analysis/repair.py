"""``operascope repair run.h5``: make a crashed run file a normal, closed HDF5 file again (no HDF5 tools).

A writer killed while recording (SIGKILL, power loss) leaves the superblock's "open for writing" and
"SWMR writing" flags set, so HDF5 refuses a plain ``h5py.File(p, "r")``. Repair, in order:

1. takes the run file's writer lock (a file still being recorded is refused: "file in use by PID …");
2. clears the two flags by rewriting one superblock byte and its checksum (what ``h5clear -s`` does;
   :mod:`operascope.analysis.superblock`). If the file is shorter than the end-of-file address the
   superblock records (space allocated but never written), it is extended with zeros to that address
   (what ``h5clear --increment`` allows for) — those bytes were never flushed, so no table refers to them;
3. opens the file read-write and cuts every table of the layout to the rows all its columns (and its
   frame stack) hold, then drops trailing frames that cannot be read back (the last consistent bin);
4. writes ``end_time`` (start time + the newest record time, else the file's modification time) and
   ``stop_reason`` = "crashed" if the run never wrote them.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from operascope.acquisition.run_lock import RunFileLock
from operascope.analysis import runfile_layout as L
from operascope.analysis.errors import RunFileError
from operascope.analysis.superblock import clear_status_flags

log = logging.getLogger(__name__)

CRASHED = "crashed"


@dataclass
class RepairReport:
    """What repair found and kept."""

    path: Path
    flags_cleared: int = 0
    extended_bytes: int = 0
    kept: dict[str, int] = field(default_factory=dict)       # table key -> rows kept
    dropped: dict[str, int] = field(default_factory=dict)    # table key -> rows cut
    end_time: str | None = None                              # set when repair wrote it
    stop_reason: str | None = None

    def lines(self) -> list[str]:
        out = [f"{self.path}: repaired" if self.changed else f"{self.path}: nothing to repair"]
        if self.flags_cleared:
            out.append(f"  cleared superblock flags 0x{self.flags_cleared:02x} (open for writing / SWMR writing)")
        if self.extended_bytes:
            out.append(f"  extended the file by {self.extended_bytes} bytes to its recorded end of file")
        kept = ", ".join(f"{k} {n}" + (f" (cut {self.dropped[k]})" if self.dropped.get(k) else "")
                         for k, n in self.kept.items())
        out.append(f"  kept rows: {kept}")
        if self.end_time:
            out.append(f"  end_time set to {self.end_time}")
        if self.stop_reason:
            out.append(f"  stop_reason set to {self.stop_reason!r}")
        return out

    @property
    def changed(self) -> bool:
        return bool(self.flags_cleared or self.extended_bytes or any(self.dropped.values()) or self.end_time
                    or self.stop_reason)


def repair(path: str | os.PathLike[str]) -> RepairReport:
    """Repair the run file at ``path`` in place; :class:`RunFileError` if it cannot be repaired."""
    p = Path(path)
    if not p.is_file():
        raise RunFileError(f"{p}: no such run file")
    with RunFileLock(p):
        try:
            sb = clear_status_flags(p)
        except ValueError as exc:
            raise RunFileError(str(exc)) from None
        report = RepairReport(p, flags_cleared=sb.flags if sb.left_open else 0)
        size, eof = p.stat().st_size, sb.base + sb.eof
        if size < eof:
            os.truncate(p, eof)
            report.extended_bytes = eof - size
        import hdf5plugin  # noqa: F401 - registers the raw-frame filters (frames are read back below)

        try:
            with h5py.File(p, "r+") as f:
                newest_s = _trim(f, report)
                _finish(f, p, newest_s, report)
        except (OSError, KeyError) as exc:
            raise RunFileError(f"{p}: cannot be repaired ({exc})") from None
    for line in report.lines():
        log.info(line)
    return report


def _readable(ds: h5py.Dataset, n: int) -> int:
    """The number of leading frames (at most ``n``) whose last one reads back."""
    while n > 0:
        try:
            ds[n - 1]
            return n
        except (OSError, RuntimeError):
            n -= 1
    return 0


def _trim(f: h5py.File, report: RepairReport) -> float:
    """Cut each table to its consistent rows; returns the newest record time (s) kept, or NaN."""
    newest = float("nan")
    for table in L.TABLES:
        group = f.get(table.path)
        if not isinstance(group, h5py.Group) or table.columns[0].name not in group:
            continue
        datasets = [group[c.name] for c in table.columns if c.name in group]
        if L.FRAMES in group and group[L.FRAMES].ndim == 3:
            datasets.append(group[L.FRAMES])
        n = min(ds.shape[0] for ds in datasets)
        if L.FRAMES in group and n:
            n = _readable(group[L.FRAMES], n)
        total = max(ds.shape[0] for ds in datasets)
        for ds in datasets:
            if ds.shape[0] > n:
                ds.resize(n, axis=0)
        report.kept[table.key] = n
        report.dropped[table.key] = total - n
        if n and "time" in group and table.key not in ("truth",):
            newest = np.nanmax([newest, float(group["time"][n - 1])])
    return newest


def _text(ds: h5py.Dataset) -> str:
    raw = ds[()]
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _finish(f: h5py.File, path: Path, newest_s: float, report: RepairReport) -> None:
    entry = f[L.ENTRY]
    end = _text(entry[L.END_TIME]).strip()
    if end in ("", L.END_TIME_UNKNOWN):
        stamp = _end_time(_text(entry[L.START_TIME]), newest_s, path)
        entry[L.END_TIME][()] = L.utf8_fixed(stamp, L.STAMP_BYTES)
        report.end_time = stamp
    if not _text(entry[L.STOP_REASON]).strip():
        entry[L.STOP_REASON][()] = np.bytes_(CRASHED.encode())
        report.stop_reason = CRASHED


def _end_time(start_iso: str, newest_s: float, path: Path) -> str:
    """Start time + the newest record's time; the file's modification time if either is unknown."""
    try:
        start = _dt.datetime.fromisoformat(start_iso)
        if np.isfinite(newest_s):
            return (start + _dt.timedelta(seconds=float(newest_s))).isoformat(timespec="milliseconds")
    except ValueError:
        pass
    mtime = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.timezone.utc).astimezone()
    return mtime.isoformat(timespec="milliseconds")
