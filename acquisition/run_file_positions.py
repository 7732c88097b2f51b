"""The multi-position part of a run file: /entry/positions, /entry/visits and one NXsubentry per position.

Each ``/entry/position_<name>`` holds ``binned`` and ``differential`` NXdata laid out exactly like
``/entry/binned`` and ``/entry/differential`` of a single-position run (plus a ``visit_index`` column in
binned). The electrochemistry, focus log, stage logs and events stay one record at entry level.

Simulated runs also get ``/entry/position_<name>/simulation``: ``particles`` (the sample's particles in
that field: index into /entry/simulation/particles, where they are in the field's image at the nominal
stage position with no drift, and whether the whole disk is in view), the field's fiducial and
``binned``: the truth of each of the position's bins (rows aligned with its binned rows).
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
        if builder.s.particle_geometry is not None:
            _position_simulation(builder, position, roi or camera_roi, n_particles)
    f[L.ENTRY].attrs["default"] = f"position_{plist[0].name}"
    log.debug("run file: %d positions laid out", len(plist))


def field_particles(geometry: Any, x_um: float, y_um: float, roi: Any, pixel_size_nm: float) -> dict[str, np.ndarray]:
    """The particles of ``geometry`` (rows with x_um, y_um, diameter_um) any part of which is in the field of a
    stage at (``x_um``, ``y_um``) with sensor ``roi`` (x, y, w, h px): their index, image centre (px, no
    drift) and whether the whole disk is in view. Sample (x, y) µm is full-sensor pixel (x/a, y/a) at stage 0."""
    from operascope.acquisition.run_file import geometry_columns

    columns = geometry_columns(geometry) if geometry is not None else {}
    xs = np.asarray(columns.get("x_um", []), dtype=float)
    ys = np.asarray(columns.get("y_um", []), dtype=float)
    radius_px = np.asarray(columns.get("diameter_um", np.zeros(xs.size)), dtype=float) * 500.0 / pixel_size_nm
    col = (xs - x_um) * 1000.0 / pixel_size_nm - roi[0]
    row = (ys - y_um) * 1000.0 / pixel_size_nm - roi[1]
    w, h = roi[2], roi[3]
    touches = (col + radius_px >= 0) & (col - radius_px <= w - 1) & (row + radius_px >= 0) & (row - radius_px <= h - 1)
    whole = (col - radius_px >= 0) & (col + radius_px <= w - 1) & (row - radius_px >= 0) & (row + radius_px <= h - 1)
    index = np.flatnonzero(touches)
    return {"index": index.astype("i4"), "x_px": col[index], "y_px": row[index], "radius_px": radius_px[index],
            "whole_in_view": whole[index].astype("u1")}


def _position_simulation(builder: Any, position: Any, roi: Any, n_particles: int) -> None:
    """A position's simulation group: its particles, its fiducial and the per-bin truth table."""
    pixel_nm = float(builder.s.camera.get("pixel_size") or 0.0)
    if roi is None or pixel_nm <= 0:
        h, w = builder.s.frame_shape
        roi = roi or [0, 0, w, h]
    sim = builder.f.require_group(L.position_simulation(position.name))
    sim.attrs["NX_class"] = "NXcollection"
    parts = sim.create_group("particles")
    parts.attrs["NX_class"] = "NXcollection"
    parts.attrs["frame"] = "field image px at the position's nominal stage x, y, no drift"
    if pixel_nm > 0:
        found = field_particles(builder.s.particle_geometry, position.x_um, position.y_um, roi, pixel_nm)
        for name, values in found.items():
            parts.create_dataset(name, data=values).attrs.update({"units": "px"} if name.endswith("_px") else {})
    fiducial = position.fiducial_xy_um
    fid_um = np.array(fiducial if fiducial is not None else [np.nan, np.nan], dtype="f8")
    sim.create_dataset("fiducial_xy_um", data=fid_um).attrs["units"] = "um"
    if pixel_nm > 0:
        fid_px = (fid_um - [position.x_um, position.y_um]) * 1000.0 / pixel_nm - [roi[0], roi[1]]
        sim.create_dataset("fiducial_xy_px", data=fid_px).attrs["units"] = "px"
    builder._table(L.position_truth_table(position.name), n_particles)


def field_particle_indices(setup: Any, name: str) -> list[int]:
    """Indices of the particles in the field of position ``name`` of ``setup`` (a RunSetup); [] if unknown."""
    position = next((p for p in (setup.positions or ()) if p.name == name), None)
    pixel_nm = float(setup.camera.get("pixel_size") or 0.0)
    if position is None or setup.particle_geometry is None or pixel_nm <= 0:
        return []
    h, w = setup.frame_shape
    roi = position_roi(position, setup.camera.get("roi")) or setup.camera.get("roi") or [0, 0, w, h]
    return field_particles(setup.particle_geometry, position.x_um, position.y_um, roi, pixel_nm)["index"].tolist()
