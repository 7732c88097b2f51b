"""The multi-position part of a run file: /entry/positions, /entry/visits and one NXsubentry per position.

Each ``/entry/position_<name>`` holds ``binned`` and ``differential`` NXdata laid out exactly like
``/entry/binned`` and ``/entry/differential`` of a single-position run (plus a ``visit_index`` column in
binned). The electrochemistry, focus log, stage logs and events stay one record at entry level.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from operascope.analysis import runfile_layout as L

log = logging.getLogger(__name__)


def position_roi(position: Any, camera_roi: Any) -> tuple[int, int, int, int] | None:
    """A position's sensor ROI (x, y, w, h) if it has its own crop, None when it uses the run's ROI."""
    roi = getattr(position, "roi", None)
    if roi is None or camera_roi is None or tuple(int(v) for v in roi) == tuple(int(v) for v in camera_roi):
        return None
    return tuple(int(v) for v in roi)  # type: ignore[return-value]


def build_positions(builder: Any, positions: Any, dwell_bins: int, n_particles: int) -> None:
    """Create the positions collection and each position's subentry (before SWMR mode)."""
    f = builder.f
    plist = list(positions)
    group = f.require_group(L.POSITIONS)
    group.attrs["NX_class"] = "NXcollection"
    group.attrs["dwell_bins"] = int(dwell_bins)
    group.attrs["cycle_period_s"] = np.float64(np.nan)   # rewritten at close (mean measured)
    group.create_dataset("name", data=np.array([p.name.encode("utf-8") for p in plist],
                                               dtype=f"S{L.POSITION_NAME_BYTES}"))
    for column in ("x_um", "y_um", "z_offset_um"):
        ds = group.create_dataset(column, data=np.array([getattr(p, column) for p in plist], dtype="f8"))
        ds.attrs["units"] = "um"
    rois = np.array([list(p.roi) if p.roi is not None else [-1, -1, -1, -1] for p in plist], dtype="i4")
    group.create_dataset("roi", data=rois).attrs.update({"units": "px", "long_name": "x, y, width, height; -1 = run ROI"})
    fiducials = np.array([list(p.fiducial_xy_um) if p.fiducial_xy_um is not None else [np.nan, np.nan]
                          for p in plist], dtype="f8")
    group.create_dataset("fiducial_xy_um", data=fiducials).attrs.update(
        {"units": "um", "long_name": "sample x, y of the field's fiducial; NaN = none"})
    camera_roi = builder.s.camera.get("roi")
    for position in plist:
        sub = f.require_group(L.position_group(position.name))
        sub.attrs["NX_class"] = "NXsubentry"
        sub.attrs["default"] = "binned"
        sub.create_dataset("position_name", data=position.name)
        for table in L.position_tables(position.name):
            builder._table(table, n_particles)
        roi = position_roi(position, camera_roi)
        for images in L.position_images(position.name):
            builder._images(images, roi)
    f[L.ENTRY].attrs["default"] = f"position_{plist[0].name}"
    log.debug("run file: %d positions laid out", len(plist))
