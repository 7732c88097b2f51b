"""What the run browser shows, read from a run file (no Qt): frames, ΔI/I, per-particle curves, events.

The file is read with operascope.analysis.runfile.open_run (SWMR-tolerant); :meth:`RunBrowserData.refresh`
reopens it to pick up bins appended by a recording still being written. The differential image of bin k
is (I_k - I_0) / I_0 inside the Otsu mask of bin 0 (analysis.differential / analysis.masking); no drift
correction is applied here (``operascope analyze`` does that for the final numbers).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from operascope.analysis import runfile_layout as layout
from operascope.analysis.differential import differential
from operascope.analysis.errors import RunFileError
from operascope.analysis.masking import make_mask
from operascope.analysis.materials import SPECIFIC_CAPACITY_MAH_G
from operascope.analysis.runfile import Run, open_run
from operascope.gui.particle_science import ParticleRegion, crop_margin_px, measure_particle, particle_regions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunEvent:
    """One line of /entry/events."""

    time_s: float
    level: str
    source: str
    message: str


def _text(value: object) -> str:
    return value.decode("utf-8", "replace").rstrip("\x00") if isinstance(value, (bytes, np.bytes_)) else str(value)


def read_events(path: Path) -> list[RunEvent]:
    """The events log of the run file at ``path`` (empty if it has none)."""
    try:
        with h5py.File(str(path), "r", locking=False) as handle:
            group = handle.get(layout.EVENTS)
            if not isinstance(group, h5py.Group) or "time" not in group:
                return []
            columns = {name: group[name][()] if name in group else [] for name in ("time", "level", "source", "message")}
    except (OSError, ValueError) as exc:
        log.warning("%s: events unreadable (%s)", path, exc)
        return []
    n = min(len(columns["time"]), len(columns["message"]))
    levels, sources = columns["level"], columns["source"]
    return [RunEvent(float(columns["time"][k]), _text(levels[k]) if k < len(levels) else "",
                     _text(sources[k]) if k < len(sources) else "", _text(columns["message"][k])) for k in range(n)]


class RunBrowserData:
    """An open run file with the curves the browser draws. Call :meth:`close` when done."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.run: Run = open_run(self.path)
        try:
            self.run.require_frames()
        except RunFileError:
            self.run.close()
            raise
        self.reference = self.run.frame(0)
        self.mask = make_mask(self.reference)
        self.pixel_size_nm = self.run.pixel_size_nm or 1000.0
        self.regions: list[ParticleRegion] = particle_regions(self.mask, margin_px=crop_margin_px(self.pixel_size_nm))
        self.com_nm = np.zeros((len(self.regions), 0))
        self.mean_differential = np.zeros((len(self.regions), 0))
        self.events: list[RunEvent] = []
        self._load_new_bins()

    # ------------------------------------------------------------------ file
    @property
    def n_bins(self) -> int:
        return self.run.n_frames

    def refresh(self) -> int:
        """Reopen the file (a recording may have appended bins); returns the number of new bins."""
        before = self.n_bins
        self.run.close()                   # close first: HDF5 would hand back the same cached file
        try:
            self.run = open_run(self.path)
        except RunFileError as exc:
            log.warning("refresh of %s failed: %s; showing what was read before", self.path, exc)
            self.run = open_run(self.path)
            return 0
        self._load_new_bins()
        return self.n_bins - before

    def close(self) -> None:
        self.run.close()

    def _load_new_bins(self) -> None:
        done, n = self.com_nm.shape[1], self.n_bins
        com = np.full((len(self.regions), n - done), np.nan)
        mean = np.full((len(self.regions), n - done), np.nan)
        for k in range(done, n):
            for j, region in enumerate(self.regions):
                crop = self.run.frame_region(k, region.rows, region.cols)
                reference = self.reference[region.rows, region.cols]
                diff = differential(crop, reference, region.mask)
                measure = measure_particle(diff, region, self.pixel_size_nm, reference)
                com[j, k - done], mean[j, k - done] = measure.com_distance_nm, measure.mean_differential
        self.com_nm = np.concatenate([self.com_nm, com], axis=1)
        self.mean_differential = np.concatenate([self.mean_differential, mean], axis=1)
        self.events = read_events(self.path)

    # ------------------------------------------------------------------ per bin
    @property
    def time_s(self) -> np.ndarray:
        return self.run.binned.time_s

    @property
    def capacity_mAh_g(self) -> np.ndarray:
        """Capacity at every bin (binned log, else interpolated from the echem log, else NaN)."""
        binned = self.run.binned
        if binned.capacity_mAh_g is not None:
            return binned.capacity_mAh_g
        echem = self.run.echem
        if echem is not None and echem.capacity_mAh_g is not None and echem.time_s.size:
            return np.interp(binned.time_s, echem.time_s, echem.capacity_mAh_g)
        return np.full(self.n_bins, np.nan)

    @property
    def soc(self) -> np.ndarray:
        """State of charge = capacity / the material's specific capacity (as ``operascope analyze``)."""
        return self.capacity_mAh_g / SPECIFIC_CAPACITY_MAH_G

    def frame(self, index: int) -> np.ndarray:
        return self.run.frame(index)

    def differential(self, index: int) -> np.ndarray:
        """ΔI/I of bin ``index`` against bin 0, NaN outside the mask."""
        return differential(self.run.frame(index), self.reference, self.mask)

    def events_until(self, time_s: float, window_s: float | None = None) -> list[RunEvent]:
        """Events at or before ``time_s`` (only the last ``window_s`` seconds if given)."""
        start = -np.inf if window_s is None else time_s - window_s
        return [e for e in self.events if start <= e.time_s <= time_s]
