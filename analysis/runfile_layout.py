"""The HDF5 run file, described once (DESIGN.md, "The run file").

The writer (:mod:`operascope.acquisition.run_file`) creates every group and dataset from
:data:`LAYOUT`; the reader (:mod:`operascope.analysis.runfile`) reads them back from the same
description. A dataset name appears only here. Times are seconds since ``/entry/start_time``.

A :class:`Table` is a group of growing 1-D columns that grow together (one row per record); its
``time`` column is the dimension scale of the others (xarray/h5netcdf see it as a coordinate).
A column's ``source`` is the attribute of the record object it is taken from (and the reader's name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ENTRY = "/entry"
BINNED = "/entry/binned"
DIFFERENTIAL = "/entry/differential"
RAW = "/entry/raw"
INSTRUMENT = "/entry/instrument"
CAMERA = "/entry/instrument/camera"
LED = "/entry/instrument/led"
FOCUS_LASER = "/entry/instrument/focus_laser"
STAGE = "/entry/instrument/stage"
FOCUS_LOCK = "/entry/instrument/focus_lock"
ELECTROCHEMISTRY = "/entry/electrochemistry"
SAMPLE = "/entry/sample"
EVENTS = "/entry/events"
CONFIG = "/entry/config"
SIMULATION = "/entry/simulation"
SIMULATION_BINNED = "/entry/simulation/binned"
POSITIONS = "/entry/positions"
VISITS = "/entry/visits"

#: Scalars of /entry (names of datasets).
START_TIME, END_TIME, STOP_REASON, TITLE, RUN_ID, PROGRAM_NAME = (
    "start_time", "end_time", "stop_reason", "title", "run_id", "program_name")
#: end_time before the run has ended (a valid value for readers; ``repair`` replaces it).
END_TIME_UNKNOWN = "unknown"
#: The frame stack of an NXdata group, its pixel axes (µm) and its mask.
FRAMES, X_AXIS, Y_AXIS, MASK = "frames", "x", "y", "mask"
#: Camera counters updated during the run.
FRAMES_IN, FRAMES_DROPPED = "frames_in", "frames_dropped"
#: Attribute of /entry/raw/frames naming the compression filter and how to read it.
COMPRESSION_ATTR, COMPRESSION_HOWTO_ATTR = "compression", "compression_howto"

FOCUS_STATES = ("off", "calibrating", "locking", "locked", "lost", "reacquiring", "fault")
EVENT_LEVELS = ("debug", "info", "warning", "error")

#: Fixed widths (bytes) of the string columns; text is cut only at a UTF-8 character boundary.
STAMP_BYTES = 40


@dataclass(frozen=True)
class Column:
    """A growing 1-D dataset (or 2-D with a fixed ``width`` column count)."""

    name: str
    dtype: str
    units: str | None = None
    source: str | None = None          # attribute of the record; defaults to ``name``
    width: int | None = None           # second dimension (e.g. particles); resolved at creation
    long_name: str | None = None

    @property
    def attr(self) -> str:
        return self.source or self.name

    @property
    def is_text(self) -> bool:
        return self.dtype.startswith("S")


@dataclass(frozen=True)
class Table:
    """A group of columns appended together, one row per record (e.g. one echem sample)."""

    key: str                           # short name used by writer and reader ("echem", "events", ...)
    path: str
    nx_class: str
    columns: tuple[Column, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    optional: str | None = None        # "raw" / "simulation" / "positions": only when that part is recorded

    @property
    def time(self) -> Column | None:
        return next((c for c in self.columns if c.name == "time"), None)

    def column(self, attr: str) -> Column:
        """The column whose record attribute is ``attr``."""
        for c in self.columns:
            if c.attr == attr:
                return c
        raise KeyError(f"{self.path} has no column for {attr!r}")


@dataclass(frozen=True)
class Images:
    """An NXdata frame stack with pixel axes; rows of ``table`` describe each frame."""

    key: str
    table: Table
    dtype: str
    long_name: str
    units: str = "counts"
    with_mask: bool = False


def _t(units: str = "s") -> Column:
    return Column("time", "f8", units, long_name="time since start_time")


_BINNED = Table("binned", BINNED, "NXdata", (
    _t(), Column("n_frames_in_bin", "i4", source="n_frames"), Column("first_frame_id", "i8"),
    Column("last_frame_id", "i8"), Column("partial", "u1"), Column("dropped_in_bin", "i4"),
    Column("voltage", "f8", "V", source="voltage_v"), Column("current", "f8", "A", source="current_a"),
    Column("capacity_mAh_g", "f8", "mAh/g"),
    Column("host_time", "f8", "s", long_name="mean host read time of the bin's frames since start_time")),
    attrs={"time_definition": "mean exposure mid-time of the bin's frames (camera stamps on the rig clock)"})
_DIFFERENTIAL = Table("differential", DIFFERENTIAL, "NXdata", (
    _t(), Column("drift_x_px", "f8", "px"), Column("drift_y_px", "f8", "px"), Column("fit_ok", "u1")))
_RAW = Table("raw", RAW, "NXdata", (
    Column("time", "f8", "s", source="host_time_s", long_name="host time since start_time"),
    Column("frame_id", "i8"), Column("camera_time_ns", "i8", "ns")), optional="raw")

#: Columns of the truth averaged per bin (entry level and per position): drift, image shift, the stage's
#: return error, and each particle's state when the bin was written (width = particles of the sample).
_TRUTH_BINNED_COLUMNS = (
    _t(), Column("n_frames", "i4"), Column("drift_x_nm", "f8", "nm"), Column("drift_y_nm", "f8", "nm"),
    Column("drift_z_nm", "f8", "nm"), Column("image_shift_x_nm", "f8", "nm"), Column("image_shift_y_nm", "f8", "nm"),
    Column("stage_return_error_x_nm", "f8", "nm"), Column("stage_return_error_y_nm", "f8", "nm"),
    Column("particle_time", "f8", "s", long_name="when the particle states were taken, since start_time"),
    Column("soc", "f8", long_name="cell state of charge (charge passed / nominal capacity)"),
    Column("particle_theta", "f8", width=-1), Column("particle_soc", "f8", width=-1),
    Column("particle_unreacted_fraction", "f8", width=-1),
    Column("particle_com_distance_nm", "f8", "nm", width=-1,
           long_name="distance of the unreacted region's COM from the particle's (NaN: none left)"))
_TRUTH_BINNED_ATTRS = {
    "averaging": "mean over the bin's frames at their true exposure mid-times",
    "image_shift": "sample drift minus stage position (with its jitter and return error): what moves the image",
    "particle_columns": "one column per particle of /entry/simulation/particles (NaN: not in this field)",
    "unreacted": "theta > initial_theta - 0.05 / contrast_per_theta (the analysis' default dI/I threshold)"}

IMAGES = (
    Images("binned", _BINNED, "f4", "mean intensity of the binned camera frames"),
    Images("differential", _DIFFERENTIAL, "f4", "relative intensity change dI/I0 (NaN outside the mask)",
           units="1", with_mask=True),
    Images("raw", _RAW, "u2", "raw camera frame"),
)

#: NXsource type/probe values (from the NXDL enumeration of NXsource).
SOURCES = {LED: {"type": "LED", "probe": "visible light", "wavelength_nm": 740.0, "value_units": "A",
                 "value_source": "measured_current_a"},
           FOCUS_LASER: {"type": "Laser", "probe": "photon", "wavelength_nm": 980.0, "value_units": "W",
                         "value_source": "power_w"}}
STAGE_AXES = ("x", "y", "z")

TABLES = (
    _BINNED, _DIFFERENTIAL, _RAW,
    Table("led", f"{LED}/log", "NXlog", (_t(), Column("value", "f8", "A", source="measured_current_a",
                                                        long_name="LED current"), Column("enabled", "u1"))),
    Table("laser", f"{FOCUS_LASER}/log", "NXlog", (_t(), Column("value", "f8", "W", source="power_w",
                                                                  long_name="laser power"), Column("enabled", "u1"))),
    *(Table(f"stage_{a}", f"{STAGE}/{a}", "NXpositioner", (_t(), Column("value", "f8", "nm", source=a)),
            attrs={"name": a}) for a in STAGE_AXES),
    Table("calibration", f"{FOCUS_LOCK}/calibration", "NXcollection", (
        _t(), Column("slope_px_per_nm", "f8", "px/nm"), Column("offset_px", "f8", "px"),
        Column("residual_nm", "f8", "nm"), Column("json", "S4096"))),
    Table("focus", f"{FOCUS_LOCK}/log", "NXcollection", (
        _t(), Column("error_nm", "f8", "nm"), Column("z_nm", "f8", "nm"), Column("state", "i1"),
        Column("position_px", "f8", "px"), Column("intensity", "f8")),
        attrs={"state_names": ",".join(FOCUS_STATES)}),
    Table("echem", ELECTROCHEMISTRY, "NXcollection", (
        _t(), Column("voltage", "f8", "V", source="voltage_v"), Column("current", "f8", "A", source="current_a"),
        Column("capacity_mAh_g", "f8", "mAh/g"), Column("step", "i4"), Column("cycle", "i4")),
        attrs={"current_sign": "positive = oxidation = cathode charge"}),
    Table("techniques", f"{ELECTROCHEMISTRY}/techniques", "NXcollection", (
        Column("step", "i4"), Column("cycle", "i4"), Column("kind", "S16"),
        Column("start_time", "f8", "s", source="start_time_s"), Column("parameters", "S1024"))),
    Table("events", EVENTS, "NXcollection", (
        _t(), Column("level", "S8"), Column("source", "S32"), Column("message", "S2048"))),
    Table("truth", SIMULATION, "NXcollection", (
        _t(), Column("drift_x_nm", "f8", "nm"), Column("drift_y_nm", "f8", "nm"), Column("drift_z_nm", "f8", "nm"),
        Column("defocus_nm", "f8", "nm"), Column("soc", "f8"), Column("cell_voltage_v", "f8", "V"),
        Column("particle_theta", "f8", width=-1)), optional="simulation"),
    #: the truth averaged over each binned frame's exposures (one row per /entry/binned row)
    Table("truth_binned", SIMULATION_BINNED, "NXcollection", _TRUTH_BINNED_COLUMNS, attrs=_TRUTH_BINNED_ATTRS,
          optional="simulation"),
    Table("visits", VISITS, "NXcollection", (
        Column("time", "f8", "s", long_name="start of the move to the position, since start_time"),
        Column("position_index", "i4"), Column("settled_time", "f8", "s", source="settled_time_s"),
        Column("focus_time", "f8", "s", source="focus_time_s"), Column("end_time", "f8", "s", source="end_time_s"),
        Column("n_bins", "i4"), Column("status", "S40")), optional="positions"),
)
TABLE = {t.key: t for t in TABLES}

#: Static groups: path -> NX_class (created even when empty so every group has its class).
GROUPS = {ENTRY: "NXentry", INSTRUMENT: "NXinstrument", CAMERA: "NXdetector", LED: "NXsource",
          FOCUS_LASER: "NXsource", STAGE: "NXcollection", FOCUS_LOCK: "NXcollection",
          ELECTROCHEMISTRY: "NXcollection", SAMPLE: "NXsample", EVENTS: "NXcollection"}
PARTICLES = f"{SIMULATION}/particles"

#: Camera settings (RunSetup.camera keys) -> (NXdetector name, units, scale to those units).
CAMERA_FIELDS = {"exposure_time": ("count_time", "ms", 1.0), "frame_rate": ("frame_time", "s", "reciprocal"),
                 "pixel_size": ("pixel_size", "nm", 1.0), "gain": ("gain", "dB", 1.0)}

#: NeXus default plot chain: file -> entry -> binned.
DEFAULT_ENTRY, DEFAULT_DATA = "entry", "binned"


# ---------------------------------------------------------------------- multi-position runs
#: Visit outcomes (column ``status`` of /entry/visits).
VISIT_STATUSES = ("recorded", "move failed", "focus not reacquired", "skipped")
#: Separator of a per-position table key: "binned@A" is the binned table of position A.
POSITION_KEY_SEP = "@"
POSITION_NAME_BYTES = 32


def position_group(name: str) -> str:
    """The NXsubentry of position ``name`` ("/entry/position_A")."""
    return f"{ENTRY}/position_{name}"


def position_key(kind: str, name: str) -> str:
    """Table key of stack ``kind`` ("binned", "differential") of position ``name``."""
    return f"{kind}{POSITION_KEY_SEP}{name}"


def position_tables(name: str) -> tuple[Table, Table]:
    """The binned (plus ``visit_index``) and differential tables of position ``name``: the entry's, moved."""
    group = position_group(name)
    binned = Table(position_key("binned", name), f"{group}/binned", "NXdata",
                   (*_BINNED.columns, Column("visit_index", "i4")))
    differential = Table(position_key("differential", name), f"{group}/differential", "NXdata",
                         _DIFFERENTIAL.columns)
    return binned, differential


def position_truth_table(name: str) -> Table:
    """The simulation truth of position ``name``'s bins, one row per row of its binned table (simulated runs)."""
    return Table(position_key("truth_binned", name), f"{position_group(name)}/simulation/binned", "NXcollection",
                 _TRUTH_BINNED_COLUMNS, attrs=_TRUTH_BINNED_ATTRS, optional="simulation")


def position_simulation(name: str) -> str:
    """The NXcollection of position ``name``'s simulation truth (particles in the field, fiducial, binned)."""
    return f"{position_group(name)}/simulation"


def position_images(name: str) -> tuple[Images, Images]:
    """The binned and differential frame stacks of position ``name`` (same definitions as the entry's)."""
    binned, differential = position_tables(name)
    by_key = {i.key: i for i in IMAGES}
    return (Images(binned.key, binned, by_key["binned"].dtype, by_key["binned"].long_name),
            Images(differential.key, differential, by_key["differential"].dtype, by_key["differential"].long_name,
                   units=by_key["differential"].units, with_mask=True))


def table_for(key: str) -> Table:
    """The table of ``key``: an entry-level key of :data:`TABLE` or a per-position key ("binned@A")."""
    if key in TABLE:
        return TABLE[key]
    kind, sep, name = key.partition(POSITION_KEY_SEP)
    if sep and name and kind in ("binned", "differential"):
        return position_tables(name)[0 if kind == "binned" else 1]
    if sep and name and kind == "truth_binned":
        return position_truth_table(name)
    raise KeyError(f"table {key!r} is not known; use one of {', '.join(TABLE)} or binned@<position>")


def images_for(key: str) -> Images:
    """The frame stack of ``key``: "binned", "differential", "raw" or a per-position "binned@A"."""
    for entry in IMAGES:
        if entry.key == key:
            return entry
    kind, sep, name = key.partition(POSITION_KEY_SEP)
    if sep and name and kind in ("binned", "differential"):
        return position_images(name)[0 if kind == "binned" else 1]
    raise KeyError(f"frame stack {key!r} is not known; use binned, differential, raw or binned@<position>")


def utf8_fixed(text: str, width: int) -> bytes:
    """``text`` as UTF-8 in at most ``width`` bytes, never cutting a character in two."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= width:
        return raw
    return raw[:width].decode("utf-8", "ignore").encode("utf-8")


def width_of(dtype: str) -> int:
    """Byte width of a fixed string dtype such as "S512"."""
    return int(dtype[1:])
