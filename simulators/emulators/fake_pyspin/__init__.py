"""A fake ``PySpin`` (FLIR Spinnaker SDK binding) that emulates a Grasshopper3 camera.

It speaks the vendor's Python API (names, call-order rules and error codes from
``reference/devices.md`` section 1) so that :mod:`operascope.devices.flir` runs unchanged against
it: ``System.GetInstance`` / ``GetCameras`` / ``CameraList`` / ``CameraPtr`` with
``Init``/``DeInit``, node maps with ``CFloatPtr``-style pointers, ``BeginAcquisition`` /
``GetNextImage`` / ``ImagePtr.Release`` with a finite buffer pool, ``ImageProcessor``,
and ``SpinnakerException`` with ``errorcode``.

Pixels come from a *frame source*: any callable ``render(roi, exposure_ms, gain_db) ->
uint16 array`` of 12-bit counts, a :class:`WorldFrameSource` (renders a simulated ``World``
at each frame's exposure start), a :class:`CameraFrameSource` around any
:class:`operascope.devices.base.Camera`, or a :class:`LineFrameSource` around a focus-sensor profile.
:func:`attach_world` plugs in the simulated world's imaging and focus cameras, with the
world's injected faults acting on them (:class:`WorldFaults`).

The real SDK keeps one process-global ``System``; so does this module (the bus below).
Test hooks (not part of PySpin): :func:`attach_camera`, :func:`attach_world`, :func:`detach`, :func:`unplug`,
:func:`replug`, :func:`stall`, :func:`inject_incomplete`, :func:`drop_frames`,
:func:`inject_error`, :func:`set_in_use`, :func:`write_log`, :func:`stream_stats`, :func:`reset`.

Model of the camera (values marked "fake" are this emulator's choices, not FLIR's):
the frame period is ``1 / AcquisitionFrameRate`` when the GEN2 frame-rate nodes enable it,
otherwise the maximum rate for the pixel format and ROI (sensor row time and the USB3
throughput cap of section 1.2). Frames are produced lazily on the camera's clock when the
application asks for one; a frame is ready when its exposure ends; frames that find no free
buffer are dropped (so the frame ID jumps). Mono16 is MSB-aligned (12-bit counts x 16) as on
FLIR cameras; Mono8 is the top 8 bits.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from operascope.devices.base import Camera, Clock, FocusSensor, Roi, WallClock

# --------------------------------------------------------------------------- error codes (devices.md 1.5)

SPINNAKER_ERR_SUCCESS = 0
SPINNAKER_ERR_ERROR = -1001
SPINNAKER_ERR_NOT_INITIALIZED = -1002
SPINNAKER_ERR_NOT_IMPLEMENTED = -1003
SPINNAKER_ERR_RESOURCE_IN_USE = -1004
SPINNAKER_ERR_ACCESS_DENIED = -1005
SPINNAKER_ERR_INVALID_HANDLE = -1006
SPINNAKER_ERR_INVALID_PARAMETER = -1009
SPINNAKER_ERR_IO = -1010
SPINNAKER_ERR_TIMEOUT = -1011
SPINNAKER_ERR_ABORT = -1012
SPINNAKER_ERR_INVALID_BUFFER = -1013
SPINNAKER_ERR_NOT_AVAILABLE = -1014
GENICAM_ERR_INVALID_ARGUMENT = -2001
GENICAM_ERR_OUT_OF_RANGE = -2002
GENICAM_ERR_ACCESS_DENIED = -2006
GENICAM_ERR_TIMEOUT = -2007
GENICAM_ERR_DYNAMIC_CAST = -2008

EVENT_TIMEOUT_INFINITE = 0xFFFFFFFFFFFFFFFF

# Image status (0 = OK); the non-zero values used here are the emulator's choice.
SPINNAKER_IMAGE_STATUS_NO_ERROR = 0
SPINNAKER_IMAGE_STATUS_MISSING_PACKETS = 3
SPINNAKER_IMAGE_STATUS_DATA_INCOMPLETE = 9
_IMAGE_STATUS_TEXT = {
    SPINNAKER_IMAGE_STATUS_NO_ERROR: "Image has no error",
    SPINNAKER_IMAGE_STATUS_MISSING_PACKETS: "Image has missing packets",
    SPINNAKER_IMAGE_STATUS_DATA_INCOMPLETE: "Image data is incomplete",
}

# Pixel format enum values (fake integers; code must use the names).
PixelFormat_Mono8 = 1
PixelFormat_Mono12Packed = 2
PixelFormat_Mono12p = 3
PixelFormat_Mono16 = 4
_PIXEL_FORMAT_NAMES = {
    PixelFormat_Mono8: "Mono8",
    PixelFormat_Mono12Packed: "Mono12Packed",
    PixelFormat_Mono12p: "Mono12p",
    PixelFormat_Mono16: "Mono16",
}
_BYTES_PER_PIXEL = {"Mono8": 1.0, "Mono12Packed": 1.5, "Mono12p": 1.5, "Mono16": 2.0}

# Grasshopper3 GS3-U3-23S6M-C numbers (devices.md 1.2); row time and overhead rows are fake,
# chosen so that the full frame in Mono8 runs at 162.67 Hz.
GS3_SENSOR_SHAPE = (1200, 1920)
GS3_MODEL = "Grasshopper3 GS3-U3-23S6M"
_ROW_TIME_US = 1e6 / 162.67 / 1214.0
_OVERHEAD_ROWS = 14
_LINK_BYTES_PER_S = 384.768e6
_EXPOSURE_MIN_US = 5.0
_EXPOSURE_MAX_US = 32_000_000.0
_GAIN_RANGE_DB = (0.0, 48.0)
_FRAME_RATE_MIN_HZ = 1.0
_WIDTH_INC, _HEIGHT_INC, _OFFSET_INC = 4, 2, 2
_BUFFER_COUNT_RANGE = (1, 1000)
_BUFFER_MODES = ("OldestFirst", "OldestFirstOverwrite", "NewestOnly", "NewestFirst")

FrameSource = Callable[[Roi, float, float], np.ndarray]


class SpinnakerException(Exception):
    """The SDK's error: ``errorcode`` (int) and ``message``; ``str()`` gives the full text."""

    def __init__(self, message: str, errorcode: int = SPINNAKER_ERR_ERROR) -> None:
        self.message = message
        self.errorcode = int(errorcode)
        self.fullmessage = f"Spinnaker: {message} [{self.errorcode}]"
        super().__init__(self.fullmessage)


def Image_GetImageStatusDescription(status: int) -> str:  # noqa: N802 (vendor name)
    """Text for an image status code."""
    return _IMAGE_STATUS_TEXT.get(int(status), f"Unknown image status {status}")


# --------------------------------------------------------------------------- pixel packing


def pack_pixels(counts: np.ndarray, pixel_format: str) -> np.ndarray:
    """Encode 12-bit counts (h, w) into the buffer layout of ``pixel_format``.

    Mono16 is MSB-aligned (counts << 4); Mono8 keeps the top 8 bits; Mono12Packed is the
    IIDC layout (B0 = P0[11:4], B1 = P1[3:0]<<4 | P0[3:0], B2 = P1[11:4]); Mono12p is the
    PFNC layout (B0 = P0[7:0], B1 = P1[3:0]<<4 | P0[11:8], B2 = P1[11:4]).
    """
    c = np.clip(counts, 0, 4095).astype(np.uint16)
    if pixel_format == "Mono16":
        return (c << 4).astype(np.uint16)
    if pixel_format == "Mono8":
        return (c >> 4).astype(np.uint8)
    p0, p1 = c[:, 0::2], c[:, 1::2]
    out = np.empty((c.shape[0], c.shape[1] // 2, 3), dtype=np.uint8)
    if pixel_format == "Mono12Packed":
        out[..., 0] = p0 >> 4
        out[..., 1] = ((p1 & 0xF) << 4) | (p0 & 0xF)
        out[..., 2] = p1 >> 4
    elif pixel_format == "Mono12p":
        out[..., 0] = p0 & 0xFF
        out[..., 1] = ((p1 & 0xF) << 4) | (p0 >> 8)
        out[..., 2] = p1 >> 4
    else:
        raise ValueError(f"unknown pixel format {pixel_format!r}")
    return out.reshape(c.shape[0], -1)


def unpack_pixels(buffer: np.ndarray, pixel_format: str, width: int) -> np.ndarray:
    """Inverse of :func:`pack_pixels`: 12-bit counts (h, w) as uint16."""
    if pixel_format == "Mono16":
        return (buffer >> 4).astype(np.uint16)
    if pixel_format == "Mono8":
        return buffer.astype(np.uint16) << 4
    b = buffer.reshape(buffer.shape[0], width // 2, 3).astype(np.uint16)
    out = np.empty((buffer.shape[0], width), dtype=np.uint16)
    if pixel_format == "Mono12Packed":
        out[:, 0::2] = (b[..., 0] << 4) | (b[..., 1] & 0xF)
    elif pixel_format == "Mono12p":
        out[:, 0::2] = b[..., 0] | ((b[..., 1] & 0xF) << 8)
    else:
        raise ValueError(f"unknown pixel format {pixel_format!r}")
    out[:, 1::2] = (b[..., 2] << 4) | (b[..., 1] >> 4)
    return out


# --------------------------------------------------------------------------- frame sources


class CameraFrameSource:
    """Frame source that reads frames from any :class:`operascope.devices.base.Camera` backend.

    The backend is opened on first use and reconfigured (stop, configure, start) whenever
    the fake camera asks for a different ROI, exposure or gain; ``frame_rate_hz`` is the
    rate the backend is run at (the fake camera's own clock decides frame timing).
    """

    def __init__(self, camera: Camera, frame_rate_hz: float = 100.0, read_timeout_s: float = 2.0) -> None:
        self.camera = camera
        self.frame_rate_hz = frame_rate_hz
        self.read_timeout_s = read_timeout_s
        self._applied: tuple[Roi, float, float] | None = None

    def __call__(self, roi: Roi, exposure_ms: float, gain_db: float) -> np.ndarray:
        wanted = (roi, float(exposure_ms), float(gain_db))
        if not self.camera.is_open:
            self.camera.open()
        if wanted != self._applied:
            self.camera.stop()
            rate_hz = min(self.frame_rate_hz, 1000.0 / max(exposure_ms, 1e-3))
            self.camera.configure(exposure_ms, rate_hz, roi, "Mono16", gain_db)
            self.camera.start()
            self._applied = wanted
        return self.camera.read(self.read_timeout_s).pixels

    def close(self) -> None:
        """Stop and close the backend camera."""
        self.camera.stop()
        self.camera.close()


class LineFrameSource:
    """Frame source that turns a focus-sensor profile into an image of the reflected line.

    ``profile_source`` is a :class:`operascope.devices.base.FocusSensor` or a callable returning the
    profile now (e.g. ``world.focus_profile``). The profile runs along ``profile_axis``
    (1 = across columns, as in ``FlirLineSensorConfig``); each pixel along the other axis
    gets ``profile / n`` so that summing the ROI along the line gives the profile back
    (within 12-bit rounding; negative values clip to 0). Profile pixel ``i`` maps to sensor
    column (or row) ``i``; sensor pixels beyond the profile are 0. Exposure and gain are
    ignored (the profile source has its own).
    """

    def __init__(self, profile_source: FocusSensor | Callable[[], np.ndarray], profile_axis: int = 1,
                 read_timeout_s: float = 2.0) -> None:
        if profile_axis not in (0, 1):
            raise ValueError(f"profile_axis must be 0 or 1, got {profile_axis!r}")
        if not isinstance(profile_source, FocusSensor) and not callable(profile_source):
            raise TypeError(f"profile_source must be a FocusSensor or a callable, got {type(profile_source).__name__}")
        self.profile_source = profile_source
        self.profile_axis = profile_axis
        self.read_timeout_s = read_timeout_s

    def _profile(self) -> np.ndarray:
        source = self.profile_source
        if isinstance(source, FocusSensor):
            if not source.is_open:
                source.open()
            return np.asarray(source.read_profile(self.read_timeout_s).values, dtype=float)
        return np.asarray(source(), dtype=float)

    def __call__(self, roi: Roi, exposure_ms: float, gain_db: float) -> np.ndarray:
        profile = self._profile()
        if self.profile_axis == 1:
            start, length, n_along = roi.x, roi.width, roi.height
        else:
            start, length, n_along = roi.y, roi.height, roi.width
        line = np.zeros(length)
        available = profile[start : start + length]
        line[: available.size] = available
        per_pixel = np.clip(np.rint(line / n_along), 0, 4095).astype(np.uint16)
        if self.profile_axis == 1:
            return np.broadcast_to(per_pixel[None, :], (roi.height, roi.width)).copy()
        return np.broadcast_to(per_pixel[:, None], (roi.height, roi.width)).copy()


class WorldFrameSource:
    """Frame source rendering a simulated ``World`` at each frame's exposure start.

    ``render_at(time_s, roi, exposure_ms, gain_db, frame_key)`` is used by the fake camera
    (``time_s`` on the camera clock, which must be ``world.clock``); calling the object
    renders now.
    """

    def __init__(self, world: Any) -> None:
        self.world = world

    def __call__(self, roi: Roi, exposure_ms: float, gain_db: float) -> np.ndarray:
        return self.world.render(roi, exposure_ms, gain_db)

    def render_at(self, time_s: float, roi: Roi, exposure_ms: float, gain_db: float, frame_key: int) -> np.ndarray:
        return self.world.render_at(time_s, roi, exposure_ms, gain_db, frame_key=frame_key)


class WorldFaults:
    """Feeds a simulated ``World``'s injected faults of one role into a fake camera.

    Per exposure: ``timeout`` and ``drop_frames`` faults make the frame never arrive,
    ``incomplete_frame`` marks it incomplete. ``device_lost`` unplugs the camera (seen by
    ``GetNextImage`` and ``IsValid``); it comes back in ``GetCameras``/``UpdateCameras``
    once the world lets the role reconnect.
    """

    EXPOSURE_KINDS = ("timeout", "drop_frames", "incomplete_frame")

    def __init__(self, world: Any, role: str) -> None:
        self.world = world
        self.role = role

    def exposure_fault(self, time_s: float) -> str | None:
        for kind in self.EXPOSURE_KINDS:
            if self.world.consume_fault(self.role, kind, time_s):
                return kind
        return None

    def is_lost(self) -> bool:
        return bool(self.world.is_lost(self.role))

    def try_reconnect(self) -> bool:
        return bool(self.world.try_reconnect(self.role))


# --------------------------------------------------------------------------- node model


@dataclass
class _EnumEntry:
    name: str
    value: int

    def GetValue(self) -> int:  # noqa: N802
        return self.value

    def GetSymbolic(self) -> str:  # noqa: N802
        return self.name

    def GetName(self) -> str:  # noqa: N802
        return f"EnumEntry_{self.name}"

    def GetDisplayName(self) -> str:  # noqa: N802
        return self.name


class _Node:
    """One GenICam node of a fake camera. Access is checked against the camera's state."""

    def __init__(
        self,
        owner: "_NodeMap",
        name: str,
        kind: str,
        *,
        get: Callable[[], Any],
        set: Callable[[Any], None] | None = None,  # noqa: A002
        vmin: Callable[[], float] | None = None,
        vmax: Callable[[], float] | None = None,
        inc: int = 1,
        entries: list[_EnumEntry] | None = None,
        writable_if: Callable[[], bool] = lambda: True,
        locked_while_streaming: bool = False,
        execute: Callable[[], None] | None = None,
    ) -> None:
        self.owner = owner
        self.name = name
        self.kind = kind
        self._get = get
        self._set = set
        self._min = vmin
        self._max = vmax
        self.inc = inc
        self.entries = entries or []
        self._writable_if = writable_if
        self.locked_while_streaming = locked_while_streaming
        self._execute = execute

    # access -------------------------------------------------------------------------
    def _device(self) -> "_FakeDevice":
        return self.owner.handle.device

    def _check_present(self) -> None:
        self.owner.handle.check_present()
        if self.owner.needs_init and not self._device().initialised:
            raise SpinnakerException(f"Camera is not initialized; cannot access node {self.name}", SPINNAKER_ERR_NOT_INITIALIZED)

    def available(self) -> bool:
        return self.owner.handle.is_valid() and (not self.owner.needs_init or self._device().initialised)

    def readable(self) -> bool:
        return self.available()

    def writable(self) -> bool:
        if not self.available() or self._set is None and self._execute is None:
            return False
        if self.locked_while_streaming and self._device().streaming:
            return False
        return bool(self._writable_if())

    def read(self) -> Any:
        with self._device().cond:
            self._check_present()
            return self._get()

    def write(self, value: Any) -> None:
        device = self._device()
        with device.cond:
            self._check_present()
            if self.locked_while_streaming and device.streaming:
                raise SpinnakerException(f"Node {self.name} is not writable while the camera is streaming", GENICAM_ERR_ACCESS_DENIED)
            if self._set is None or not self._writable_if():
                raise SpinnakerException(f"Node {self.name} is not writable now", GENICAM_ERR_ACCESS_DENIED)
            if self.kind in ("float", "integer"):
                low, high = self._min(), self._max()
                if not (low <= value <= high):
                    raise SpinnakerException(
                        f"Value {value} of node {self.name} is out of range [{low}, {high}]", GENICAM_ERR_OUT_OF_RANGE
                    )
                if self.kind == "integer" and (value - low) % self.inc:
                    raise SpinnakerException(
                        f"Value {value} of node {self.name} is not a multiple of the increment {self.inc}",
                        GENICAM_ERR_OUT_OF_RANGE,
                    )
            self._set(value)
            device.log.append((self.name, self._get() if self.kind != "command" else True))
            device.cond.notify_all()

    def limit(self, which: str) -> float:
        with self._device().cond:
            self._check_present()
            return (self._min if which == "min" else self._max)()


class _NodeMap:
    """A node map bound to one camera handle; ``GetNode`` returns ``None`` for absent nodes."""

    def __init__(self, handle: "_Handle", needs_init: bool) -> None:
        self.handle = handle
        self.needs_init = needs_init
        self.nodes: dict[str, _Node] = {}

    def add(self, name: str, kind: str, **kw: Any) -> None:
        self.nodes[name] = _Node(self, name, kind, **kw)

    def GetNode(self, name: str) -> _Node | None:  # noqa: N802
        return self.nodes.get(name)


# --------------------------------------------------------------------------- node pointers


class _Ptr:
    _kind: str | None = None

    def __init__(self, node: Any = None) -> None:
        if isinstance(node, _Ptr):
            node = node._node
        if node is not None and self._kind is not None and node.kind != self._kind:
            raise SpinnakerException(f"Node {node.name} is a {node.kind} node, not {self._kind}", GENICAM_ERR_DYNAMIC_CAST)
        self._node = node

    def _need(self) -> _Node:
        if self._node is None:
            raise SpinnakerException("Node pointer is NULL (node not available)", SPINNAKER_ERR_NOT_AVAILABLE)
        return self._node

    def IsValid(self) -> bool:  # noqa: N802
        return self._node is not None

    def GetName(self) -> str:  # noqa: N802
        return self._need().name


class CValuePtr(_Ptr):
    """Untyped node pointer."""


class CFloatPtr(_Ptr):
    _kind = "float"

    def GetValue(self) -> float:  # noqa: N802
        return float(self._need().read())

    def SetValue(self, value: float) -> None:  # noqa: N802
        self._need().write(float(value))

    def GetMin(self) -> float:  # noqa: N802
        return float(self._need().limit("min"))

    def GetMax(self) -> float:  # noqa: N802
        return float(self._need().limit("max"))


class CIntegerPtr(_Ptr):
    _kind = "integer"

    def GetValue(self) -> int:  # noqa: N802
        return int(self._need().read())

    def SetValue(self, value: int) -> None:  # noqa: N802
        if int(value) != value:
            raise SpinnakerException(f"Value {value!r} of node {self._need().name} is not an integer", GENICAM_ERR_INVALID_ARGUMENT)
        self._need().write(int(value))

    def GetMin(self) -> int:  # noqa: N802
        return int(self._need().limit("min"))

    def GetMax(self) -> int:  # noqa: N802
        return int(self._need().limit("max"))

    def GetInc(self) -> int:  # noqa: N802
        return int(self._need().inc)


class CBooleanPtr(_Ptr):
    _kind = "boolean"

    def GetValue(self) -> bool:  # noqa: N802
        return bool(self._need().read())

    def SetValue(self, value: bool) -> None:  # noqa: N802
        self._need().write(bool(value))


class CStringPtr(_Ptr):
    _kind = "string"

    def GetValue(self) -> str:  # noqa: N802
        return str(self._need().read())


class CCommandPtr(_Ptr):
    _kind = "command"

    def Execute(self) -> None:  # noqa: N802
        node = self._need()
        with node._device().cond:
            node._check_present()
            if not node.writable():
                raise SpinnakerException(f"Command {node.name} is not executable now", GENICAM_ERR_ACCESS_DENIED)
            node._execute()

    def IsDone(self) -> bool:  # noqa: N802
        return True


class CEnumEntryPtr(_Ptr):
    def __init__(self, entry: Any = None) -> None:
        self._node = entry._node if isinstance(entry, _Ptr) else entry

    def GetValue(self) -> int:  # noqa: N802
        return self._need().GetValue()

    def GetSymbolic(self) -> str:  # noqa: N802
        return self._need().GetSymbolic()


class CEnumerationPtr(_Ptr):
    _kind = "enumeration"

    def GetEntries(self) -> list[_EnumEntry]:  # noqa: N802
        return list(self._need().entries)

    def GetEntryByName(self, name: str) -> _EnumEntry | None:  # noqa: N802
        return next((e for e in self._need().entries if e.name == name), None)

    def GetIntValue(self) -> int:  # noqa: N802
        node = self._need()
        symbol = node.read()
        return next(e.value for e in node.entries if e.name == symbol)

    def SetIntValue(self, value: int) -> None:  # noqa: N802
        node = self._need()
        entry = next((e for e in node.entries if e.value == value), None)
        if entry is None:
            raise SpinnakerException(f"Value {value} is not an entry of node {node.name}", GENICAM_ERR_INVALID_ARGUMENT)
        node.write(entry.name)

    def GetCurrentEntry(self) -> _EnumEntry:  # noqa: N802
        node = self._need()
        symbol = node.read()
        return next(e for e in node.entries if e.name == symbol)


def IsAvailable(node: Any) -> bool:  # noqa: N802
    """True if the node (or pointer, or enum entry) exists and can be accessed now."""
    node = node._node if isinstance(node, _Ptr) else node
    if node is None:
        return False
    return True if isinstance(node, _EnumEntry) else node.available()


def IsReadable(node: Any) -> bool:  # noqa: N802
    node = node._node if isinstance(node, _Ptr) else node
    if node is None:
        return False
    return True if isinstance(node, _EnumEntry) else node.readable()


def IsWritable(node: Any) -> bool:  # noqa: N802
    node = node._node if isinstance(node, _Ptr) else node
    if node is None or isinstance(node, _EnumEntry):
        return False
    return node.writable()


# --------------------------------------------------------------------------- images


class ImagePtr:
    """An image: from the stream (holds a pool buffer until ``Release``) or converted."""

    def __init__(self, data: np.ndarray, width: int, height: int, pixel_format: int, frame_id: int,
                 timestamp_ns: int, status: int, device: "_FakeDevice | None") -> None:
        self._data = data
        self._width = width
        self._height = height
        self._pixel_format = pixel_format
        self._frame_id = frame_id
        self._timestamp_ns = timestamp_ns
        self._status = status
        self._device = device
        self._generation = device.generation if device is not None else -1
        self._released = False

    def _alive(self) -> None:
        if self._released:
            raise SpinnakerException("Image has been released; its buffer belongs to the stream again", SPINNAKER_ERR_INVALID_BUFFER)

    def IsIncomplete(self) -> bool:  # noqa: N802
        self._alive()
        return self._status != SPINNAKER_IMAGE_STATUS_NO_ERROR

    def GetImageStatus(self) -> int:  # noqa: N802
        self._alive()
        return self._status

    def GetNDArray(self) -> np.ndarray:  # noqa: N802
        """A view of the buffer (copy it before ``Release``)."""
        self._alive()
        return self._data

    def GetData(self) -> np.ndarray:  # noqa: N802
        self._alive()
        return self._data.reshape(-1)

    def GetFrameID(self) -> int:  # noqa: N802
        self._alive()
        return self._frame_id

    def GetTimeStamp(self) -> int:  # noqa: N802
        self._alive()
        return self._timestamp_ns

    def GetWidth(self) -> int:  # noqa: N802
        return self._width

    def GetHeight(self) -> int:  # noqa: N802
        return self._height

    def GetPixelFormat(self) -> int:  # noqa: N802
        return self._pixel_format

    def GetPixelFormatName(self) -> str:  # noqa: N802
        return _PIXEL_FORMAT_NAMES[self._pixel_format]

    def Release(self) -> None:  # noqa: N802
        """Give the buffer back to the stream's pool. Stale views then see garbage."""
        self._alive()
        self._released = True
        if self._device is not None:
            self._data[...] = 0xA5  # the pool reuses the buffer
            if self._device.generation == self._generation:
                self._device.release_buffer()


class ImageProcessor:
    """Pixel-format conversion (Spinnaker 2+/3+ ``ImageProcessor().Convert``)."""

    def SetColorProcessing(self, algorithm: Any) -> None:  # noqa: N802
        return None

    def Convert(self, image: ImagePtr, pixel_format: int) -> ImagePtr:  # noqa: N802
        image._alive()
        target = _PIXEL_FORMAT_NAMES.get(pixel_format)
        if target is None:
            raise SpinnakerException(f"Unsupported destination pixel format {pixel_format}", SPINNAKER_ERR_INVALID_PARAMETER)
        counts = unpack_pixels(image._data, _PIXEL_FORMAT_NAMES[image._pixel_format], image._width)
        return ImagePtr(pack_pixels(counts, target), image._width, image._height, pixel_format,
                        image._frame_id, image._timestamp_ns, image._status, None)


# --------------------------------------------------------------------------- a fake camera


def _max_frame_rate_hz(pixel_format: str, width: int, height: int) -> float:
    sensor_hz = 1e6 / (_ROW_TIME_US * (height + _OVERHEAD_ROWS))
    link_hz = _LINK_BYTES_PER_S / (width * height * _BYTES_PER_PIXEL[pixel_format])
    return min(sensor_hz, link_hz)


class _FakeDevice:
    """State of one attached camera: nodes, streaming and its buffer pool."""

    def __init__(self, serial: str, source: FrameSource, clock: Clock, model: str,
                 sensor_shape: tuple[int, int], frame_rate_nodes: str, firmware: str,
                 faults: "WorldFaults | None" = None) -> None:
        if frame_rate_nodes not in ("GEN2", "SFNC"):
            raise ValueError(f"frame_rate_nodes must be 'GEN2' or 'SFNC', got {frame_rate_nodes!r}")
        self.serial = serial
        self.source = source
        self.clock = clock
        self.model = model
        self.sensor_shape = sensor_shape
        self.frame_rate_nodes = frame_rate_nodes
        self.firmware = firmware
        self.cond = threading.Condition(threading.RLock())
        self.present = True
        self.generation = 0
        self.in_use_elsewhere = False
        self.faults = faults
        self.lost_by_world = False
        self.render_key = 0
        self.log: list[tuple[str, Any]] = []
        self.power_on()

    # lifecycle ------------------------------------------------------------------------
    def power_on(self) -> None:
        """Factory defaults, as after plugging in."""
        height, width = self.sensor_shape
        self.power_on_s = self.clock.now_s()
        self.initialised = False
        self.streaming = False
        self.v: dict[str, Any] = {
            "PixelFormat": "Mono8", "Width": width, "Height": height, "OffsetX": 0, "OffsetY": 0,
            "AcquisitionMode": "Continuous", "ExposureAuto": "Continuous", "ExposureTime": 10_000.0,
            "GainAuto": "Continuous", "Gain": 0.0, "AcquisitionFrameRateAuto": "Continuous",
            "AcquisitionFrameRateEnabled": False, "AcquisitionFrameRateEnable": False, "AcquisitionFrameRate": 30.0,
            "GammaEnable": True,
            "StreamBufferHandlingMode": "OldestFirst", "StreamBufferCountMode": "Auto", "StreamBufferCountManual": 10,
        }
        self.queue: deque[tuple[int, float, int]] = deque()
        self.outstanding = 0
        self.next_index = 0
        self.anchor_index = 0
        self.anchor_s = 0.0
        self.pending_incomplete = 0
        self.pending_drops = 0
        self.stall_until_s = -math.inf
        self.pending_errors: deque[int] = deque()
        self.produced = 0
        self.dropped = 0
        self.delivered = 0

    def release_buffer(self) -> None:
        with self.cond:
            self.outstanding = max(0, self.outstanding - 1)
            self.cond.notify_all()

    # derived values ---------------------------------------------------------------------
    def max_frame_rate_hz(self) -> float:
        return _max_frame_rate_hz(self.v["PixelFormat"], self.v["Width"], self.v["Height"])

    def frame_rate_enabled(self) -> bool:
        if self.frame_rate_nodes == "SFNC":
            return bool(self.v["AcquisitionFrameRateEnable"])
        return self.v["AcquisitionFrameRateAuto"] == "Off" and bool(self.v["AcquisitionFrameRateEnabled"])

    def frame_rate_hz(self) -> float:
        if self.frame_rate_enabled():
            return min(self.v["AcquisitionFrameRate"], self.max_frame_rate_hz())
        return self.max_frame_rate_hz()

    def exposure_max_us(self) -> float:
        return min(_EXPOSURE_MAX_US, 1e6 / self.frame_rate_hz())

    def clamp_exposure(self) -> None:
        """The exposure never exceeds the frame period (devices.md 1.6)."""
        self.v["ExposureTime"] = min(self.v["ExposureTime"], self.exposure_max_us())
        if self.v["AcquisitionFrameRate"] > self.max_frame_rate_hz():
            self.v["AcquisitionFrameRate"] = self.max_frame_rate_hz()

    def buffer_count(self) -> int:
        return int(self.v["StreamBufferCountManual"]) if self.v["StreamBufferCountMode"] == "Manual" else 10

    # streaming --------------------------------------------------------------------------
    def begin(self) -> None:
        self.streaming = True
        self.queue.clear()
        self.next_index = 0
        self.anchor_index = 0
        self.anchor_s = self.clock.now_s()

    def end(self) -> None:
        self.streaming = False
        self.queue.clear()
        self.cond.notify_all()

    def _capacity(self) -> int:
        return 1 if self.v["StreamBufferHandlingMode"] == "NewestOnly" else self.buffer_count()

    def _store(self, index: int, time_s: float, status: int) -> None:
        mode = self.v["StreamBufferHandlingMode"]
        free = self.buffer_count() - self.outstanding - len(self.queue)
        if len(self.queue) < self._capacity() and free > 0:
            self.queue.append((index, time_s, status))
        elif mode != "OldestFirst" and self.queue:
            self.queue.popleft()
            self.dropped += 1
            self.queue.append((index, time_s, status))
        else:
            self.dropped += 1

    def advance(self) -> None:
        """Expose every frame that is due on the camera clock and queue or drop it."""
        if not self.streaming:
            return
        period_s = 1.0 / self.frame_rate_hz()
        ready_s = self.clock.now_s() - self.v["ExposureTime"] / 1e6  # a frame arrives when its exposure ends
        due = math.floor((ready_s - self.anchor_s) / period_s) + 1 - (self.next_index - self.anchor_index)
        if due <= 0:
            return
        overwrite = self.v["StreamBufferHandlingMode"] != "OldestFirst"
        keep = self._capacity() + 2
        if overwrite and due > keep:  # older frames would be overwritten anyway: skip them in bulk
            self._lose(due - keep)
            self.dropped += len(self.queue)
            self.queue.clear()
            due = keep
        for done in range(due):
            no_free_buffer = self.buffer_count() - self.outstanding - len(self.queue) <= 0
            if not overwrite and (no_free_buffer or len(self.queue) >= self._capacity()):
                self._lose(due - done)  # the pool is dry: every remaining exposure is dropped
                return
            index = self.next_index
            time_s = self.anchor_s + (index - self.anchor_index) * period_s
            self.next_index += 1
            self.produced += 1
            world_fault = self.faults.exposure_fault(time_s) if self.faults is not None else None
            if self.pending_drops > 0 or time_s < self.stall_until_s or world_fault in ("timeout", "drop_frames"):
                self.pending_drops = max(0, self.pending_drops - 1)
                self.dropped += 1
                continue
            status = SPINNAKER_IMAGE_STATUS_NO_ERROR
            if self.pending_incomplete > 0 or world_fault == "incomplete_frame":
                self.pending_incomplete = max(0, self.pending_incomplete - 1)
                status = SPINNAKER_IMAGE_STATUS_MISSING_PACKETS
            self._store(index, time_s, status)

    def _lose(self, count: int) -> None:
        """``count`` exposures happen but never reach the host (their IDs are skipped)."""
        self.pending_drops = max(0, self.pending_drops - count)
        self.pending_incomplete = max(0, self.pending_incomplete - count)
        self.next_index += count
        self.produced += count
        self.dropped += count

    def retime(self, change: Callable[[], None]) -> None:
        """Apply a change that may alter the frame period without renumbering past frames."""
        if not self.streaming:
            change()
            return
        self.advance()
        next_s = self.anchor_s + (self.next_index - self.anchor_index) / self.frame_rate_hz()
        change()
        self.anchor_s, self.anchor_index = next_s, self.next_index

    def next_frame_time_s(self) -> float:
        """When the next exposure ends (camera clock, s)."""
        return self.anchor_s + (self.next_index - self.anchor_index) / self.frame_rate_hz() + self.v["ExposureTime"] / 1e6

    def take(self) -> tuple[int, float, int]:
        if self.v["StreamBufferHandlingMode"] == "NewestFirst":
            return self.queue.pop()
        return self.queue.popleft()

    def render(self, index: int, time_s: float, status: int, handle_pixfmt: str) -> ImagePtr:
        roi = Roi(self.v["OffsetX"], self.v["OffsetY"], self.v["Width"], self.v["Height"])
        exposure_ms, gain_db = self.v["ExposureTime"] / 1000.0, self.v["Gain"]
        render_at = getattr(self.source, "render_at", None)
        try:
            if render_at is not None:
                self.render_key += 1
                counts = np.asarray(render_at(time_s, roi, exposure_ms, gain_db, self.render_key))
            else:
                counts = np.asarray(self.source(roi, exposure_ms, gain_db))
        except Exception as exc:  # an emulator-side failure reaches the application as an SDK error
            raise SpinnakerException(f"frame source failed: {type(exc).__name__}: {exc}", SPINNAKER_ERR_ERROR) from None
        if counts.shape != (roi.height, roi.width):
            raise SpinnakerException(
                f"frame source returned shape {counts.shape}, expected {(roi.height, roi.width)}", SPINNAKER_ERR_ERROR
            )
        data = pack_pixels(counts, handle_pixfmt)
        fmt = next(k for k, v in _PIXEL_FORMAT_NAMES.items() if v == handle_pixfmt)
        timestamp_ns = int(round((time_s - self.power_on_s) * 1e9))
        self.outstanding += 1
        self.delivered += 1
        return ImagePtr(data, roi.width, roi.height, fmt, index, timestamp_ns, status, self)


class _Handle:
    """What a CameraPtr points at: one device in one plug-in generation."""

    def __init__(self, device: _FakeDevice | None) -> None:
        self.device = device
        self.generation = device.generation if device is not None else -1

    def is_valid(self) -> bool:
        return self.device is not None and self.device.present and self.device.generation == self.generation

    def check_present(self) -> None:
        if self.device is None:
            raise SpinnakerException("Invalid camera handle", SPINNAKER_ERR_INVALID_HANDLE)
        if not self.is_valid():
            raise SpinnakerException("Camera was removed (USB I/O error)", SPINNAKER_ERR_IO)


def _build_genicam_nodemap(handle: _Handle) -> _NodeMap:
    d = handle.device
    nm = _NodeMap(handle, needs_init=True)
    v = d.v

    def setter(name: str, after: Callable[[], None] | None = None) -> Callable[[Any], None]:
        def _change(value: Any) -> None:
            v[name] = value
            if after is not None:
                after()
        return lambda value: d.retime(lambda: _change(value))

    fmt_entries = [_EnumEntry(n, k) for k, n in _PIXEL_FORMAT_NAMES.items()]
    nm.add("PixelFormat", "enumeration", get=lambda: v["PixelFormat"], set=setter("PixelFormat", d.clamp_exposure),
           entries=fmt_entries, locked_while_streaming=True)
    h_max, w_max = d.sensor_shape
    nm.add("WidthMax", "integer", get=lambda: w_max, vmin=lambda: w_max, vmax=lambda: w_max)
    nm.add("HeightMax", "integer", get=lambda: h_max, vmin=lambda: h_max, vmax=lambda: h_max)
    nm.add("Width", "integer", get=lambda: v["Width"], set=setter("Width", d.clamp_exposure), inc=_WIDTH_INC,
           vmin=lambda: _WIDTH_INC * 4, vmax=lambda: w_max - v["OffsetX"], locked_while_streaming=True)
    nm.add("Height", "integer", get=lambda: v["Height"], set=setter("Height", d.clamp_exposure), inc=_HEIGHT_INC,
           vmin=lambda: _HEIGHT_INC * 2, vmax=lambda: h_max - v["OffsetY"], locked_while_streaming=True)
    nm.add("OffsetX", "integer", get=lambda: v["OffsetX"], set=setter("OffsetX"), inc=_OFFSET_INC,
           vmin=lambda: 0, vmax=lambda: w_max - v["Width"], locked_while_streaming=True)
    nm.add("OffsetY", "integer", get=lambda: v["OffsetY"], set=setter("OffsetY"), inc=_OFFSET_INC,
           vmin=lambda: 0, vmax=lambda: h_max - v["Height"], locked_while_streaming=True)
    nm.add("AcquisitionMode", "enumeration", get=lambda: v["AcquisitionMode"], set=setter("AcquisitionMode"),
           entries=[_EnumEntry("Continuous", 0), _EnumEntry("SingleFrame", 1), _EnumEntry("MultiFrame", 2)],
           locked_while_streaming=True)
    auto_entries = lambda: [_EnumEntry("Off", 0), _EnumEntry("Once", 1), _EnumEntry("Continuous", 2)]  # noqa: E731
    nm.add("ExposureAuto", "enumeration", get=lambda: v["ExposureAuto"], set=setter("ExposureAuto"), entries=auto_entries())
    nm.add("ExposureTime", "float", get=lambda: v["ExposureTime"], set=setter("ExposureTime"),
           vmin=lambda: _EXPOSURE_MIN_US, vmax=d.exposure_max_us, writable_if=lambda: v["ExposureAuto"] == "Off")
    nm.add("GainAuto", "enumeration", get=lambda: v["GainAuto"], set=setter("GainAuto"), entries=auto_entries())
    nm.add("Gain", "float", get=lambda: v["Gain"], set=setter("Gain"), vmin=lambda: _GAIN_RANGE_DB[0],
           vmax=lambda: _GAIN_RANGE_DB[1], writable_if=lambda: v["GainAuto"] == "Off")
    nm.add("GammaEnable", "boolean", get=lambda: v["GammaEnable"], set=setter("GammaEnable"))
    if d.frame_rate_nodes == "GEN2":
        nm.add("AcquisitionFrameRateAuto", "enumeration", get=lambda: v["AcquisitionFrameRateAuto"],
               set=setter("AcquisitionFrameRateAuto", d.clamp_exposure),
               entries=[_EnumEntry("Off", 0), _EnumEntry("Continuous", 2)])
        nm.add("AcquisitionFrameRateEnabled", "boolean", get=lambda: v["AcquisitionFrameRateEnabled"],
               set=setter("AcquisitionFrameRateEnabled", d.clamp_exposure))
    else:
        nm.add("AcquisitionFrameRateEnable", "boolean", get=lambda: v["AcquisitionFrameRateEnable"],
               set=setter("AcquisitionFrameRateEnable", d.clamp_exposure))
    nm.add("AcquisitionFrameRate", "float", get=d.frame_rate_hz, set=setter("AcquisitionFrameRate", d.clamp_exposure),
           vmin=lambda: _FRAME_RATE_MIN_HZ, vmax=d.max_frame_rate_hz, writable_if=d.frame_rate_enabled)
    nm.add("TimestampIncrement", "integer", get=lambda: 1, vmin=lambda: 1, vmax=lambda: 1)
    nm.add("DeviceFirmwareVersion", "string", get=lambda: d.firmware)
    return nm


def _build_tl_device_nodemap(handle: _Handle) -> _NodeMap:
    d = handle.device
    nm = _NodeMap(handle, needs_init=False)
    nm.add("DeviceSerialNumber", "string", get=lambda: d.serial)
    nm.add("DeviceModelName", "string", get=lambda: d.model)
    nm.add("DeviceVendorName", "string", get=lambda: "FLIR")
    nm.add("DeviceVersion", "string", get=lambda: d.firmware)
    return nm


def _build_tl_stream_nodemap(handle: _Handle) -> _NodeMap:
    d = handle.device
    v = d.v
    nm = _NodeMap(handle, needs_init=False)

    def setter(name: str) -> Callable[[Any], None]:
        return lambda value: v.__setitem__(name, value)

    nm.add("StreamBufferHandlingMode", "enumeration", get=lambda: v["StreamBufferHandlingMode"],
           set=setter("StreamBufferHandlingMode"), entries=[_EnumEntry(n, i) for i, n in enumerate(_BUFFER_MODES)],
           locked_while_streaming=True)
    nm.add("StreamBufferCountMode", "enumeration", get=lambda: v["StreamBufferCountMode"], set=setter("StreamBufferCountMode"),
           entries=[_EnumEntry("Manual", 0), _EnumEntry("Auto", 1)], locked_while_streaming=True)
    nm.add("StreamBufferCountManual", "integer", get=lambda: v["StreamBufferCountManual"], set=setter("StreamBufferCountManual"),
           vmin=lambda: _BUFFER_COUNT_RANGE[0], vmax=lambda: _BUFFER_COUNT_RANGE[1], locked_while_streaming=True,
           writable_if=lambda: v["StreamBufferCountMode"] == "Manual")
    return nm


# --------------------------------------------------------------------------- the bus (process-global, like the SDK)


class _Bus:
    """Everything the real SDK keeps per process: attached cameras, the System, references."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.devices: OrderedDict[str, _FakeDevice] = OrderedDict()
        self.system: System | None = None
        self.system_refs = 0
        self.live_cameras: weakref.WeakSet[CameraPtr] = weakref.WeakSet()
        self.handlers: list[Any] = []

    def present_devices(self) -> list[_FakeDevice]:
        with self.lock:
            return [d for d in self.devices.values() if d.present]


_bus = _Bus()


def _device(serial: str) -> _FakeDevice:
    try:
        return _bus.devices[str(serial)]
    except KeyError:
        raise KeyError(f"no fake camera with serial {serial!r}; attached: {list(_bus.devices)}") from None


class CameraPtr:
    """A reference to one camera (like the SDK's shared pointer)."""

    def __init__(self, device: _FakeDevice | None) -> None:
        self._handle = _Handle(device)
        _bus.live_cameras.add(self)

    # identity ---------------------------------------------------------------------------
    def IsValid(self) -> bool:  # noqa: N802
        if self._handle.device is not None:
            _sync_world_loss(self._handle.device)
        return self._handle.is_valid()

    def GetUniqueID(self) -> str:  # noqa: N802
        self._handle.check_present()
        return f"fake-{self._handle.device.serial}"

    def _dev(self) -> _FakeDevice:
        self._handle.check_present()
        return self._handle.device

    def _need_init(self) -> _FakeDevice:
        device = self._dev()
        if not device.initialised:
            raise SpinnakerException("Camera is not initialized", SPINNAKER_ERR_NOT_INITIALIZED)
        return device

    # lifecycle --------------------------------------------------------------------------
    def Init(self) -> None:  # noqa: N802
        device = self._dev()
        with device.cond:
            if device.in_use_elsewhere:
                raise SpinnakerException("Camera is in use by another process", SPINNAKER_ERR_RESOURCE_IN_USE)
            device.initialised = True

    def DeInit(self) -> None:  # noqa: N802
        device = self._dev()
        with device.cond:
            device.end()
            device.initialised = False

    def IsInitialized(self) -> bool:  # noqa: N802
        return self._handle.is_valid() and self._handle.device.initialised

    def IsStreaming(self) -> bool:  # noqa: N802
        return self._handle.is_valid() and self._handle.device.streaming

    def GetTLDeviceNodeMap(self) -> _NodeMap:  # noqa: N802
        self._dev()
        return _build_tl_device_nodemap(self._handle)

    def GetTLStreamNodeMap(self) -> _NodeMap:  # noqa: N802
        self._dev()
        return _build_tl_stream_nodemap(self._handle)

    def GetNodeMap(self) -> _NodeMap:  # noqa: N802
        self._need_init()
        return _build_genicam_nodemap(self._handle)

    # streaming --------------------------------------------------------------------------
    def BeginAcquisition(self) -> None:  # noqa: N802
        device = self._need_init()
        with device.cond:
            if device.streaming:
                raise SpinnakerException("Camera is already streaming", SPINNAKER_ERR_RESOURCE_IN_USE)
            device.begin()
            device.log.append(("BeginAcquisition", True))

    def EndAcquisition(self) -> None:  # noqa: N802
        device = self._need_init()
        with device.cond:
            if not device.streaming:
                raise SpinnakerException("Camera is not started", SPINNAKER_ERR_ERROR)
            device.end()
            device.log.append(("EndAcquisition", True))

    def GetNextImage(self, grabTimeout: int = EVENT_TIMEOUT_INFINITE, streamIndex: int = 0) -> ImagePtr:  # noqa: N802,N803
        """Next image; blocks up to ``grabTimeout`` ms (camera clock), then raises -1011."""
        device = self._need_init()
        with device.cond:
            if not device.streaming:
                raise SpinnakerException("Camera is not started", SPINNAKER_ERR_ERROR)
            infinite = grabTimeout is None or grabTimeout >= EVENT_TIMEOUT_INFINITE
            deadline_s = math.inf if infinite else device.clock.now_s() + grabTimeout / 1000.0
            if device.pending_errors:
                code = device.pending_errors.popleft()
                raise SpinnakerException(f"Injected grab error {code}", code)
            while True:
                _sync_world_loss(device)
                self._handle.check_present()
                if not device.streaming:
                    raise SpinnakerException("Acquisition was ended while waiting for an image", SPINNAKER_ERR_ABORT)
                device.advance()
                if device.queue:
                    index, time_s, status = device.take()
                    return device.render(index, time_s, status, device.v["PixelFormat"])
                now_s = device.clock.now_s()
                if now_s >= deadline_s:
                    raise SpinnakerException("Failed waiting for EventData on NEW_BUFFER_DATA event", SPINNAKER_ERR_TIMEOUT)
                wait_s = max(0.0, min(device.next_frame_time_s(), deadline_s) - now_s) / max(device.clock.speed, 1e-9)
                device.cond.wait(min(max(wait_s, 1e-4), 0.05))


class CameraList:
    """The cameras found by ``System.GetCameras()``; holds references until ``Clear()``."""

    def __init__(self, devices: list[_FakeDevice]) -> None:
        self._cams: list[CameraPtr] = [CameraPtr(d) for d in devices]

    def GetSize(self) -> int:  # noqa: N802
        return len(self._cams)

    def __len__(self) -> int:
        return len(self._cams)

    def __iter__(self) -> Iterator[CameraPtr]:
        return iter(list(self._cams))

    def GetByIndex(self, index: int) -> CameraPtr:  # noqa: N802
        if not 0 <= index < len(self._cams):
            raise SpinnakerException(f"Camera index {index} is out of range (size {len(self._cams)})", SPINNAKER_ERR_INVALID_PARAMETER)
        return CameraPtr(self._cams[index]._handle.device)

    def GetBySerial(self, serial: str) -> CameraPtr:  # noqa: N802
        """The camera with that serial, or an invalid pointer (``IsValid()`` False)."""
        for cam in self._cams:
            if cam._handle.device.serial == str(serial):
                return CameraPtr(cam._handle.device)
        return CameraPtr(None)

    def Clear(self) -> None:  # noqa: N802
        self._cams.clear()


@dataclass(frozen=True)
class LibraryVersion:
    major: int = 4
    minor: int = 0
    type: int = 0
    build: int = 0


class InterfaceEventHandler:
    """Subclass and override ``OnDeviceArrival`` / ``OnDeviceRemoval`` (each gets a CameraPtr)."""

    def OnDeviceArrival(self, camera: CameraPtr) -> None:  # noqa: N802
        return None

    def OnDeviceRemoval(self, camera: CameraPtr) -> None:  # noqa: N802
        return None


class System:
    """The process-global system object: ``System.GetInstance()`` / ``ReleaseInstance()``."""

    @staticmethod
    def GetInstance() -> "System":  # noqa: N802
        with _bus.lock:
            if _bus.system is None:
                _bus.system = System()
            _bus.system_refs += 1
            return _bus.system

    def _check(self) -> None:
        if _bus.system is not self:
            raise SpinnakerException("System instance was released", SPINNAKER_ERR_INVALID_HANDLE)

    def GetLibraryVersion(self) -> LibraryVersion:  # noqa: N802
        self._check()
        return LibraryVersion()

    def IsInUse(self) -> bool:  # noqa: N802
        return any(d.initialised for d in _bus.present_devices())

    def GetCameras(self, updateInterfaces: bool = True, updateCameras: bool = True) -> CameraList:  # noqa: N802,N803
        self._check()
        if updateCameras:
            self.UpdateCameras()
        return CameraList(_bus.present_devices())

    def UpdateCameras(self, updateInterfaces: bool = True) -> bool:  # noqa: N802,N803
        """Rescan the bus (cameras lost or returned in a simulated world are noticed here)."""
        self._check()
        before = [d.serial for d in _bus.present_devices()]
        for device in list(_bus.devices.values()):
            _sync_world_loss(device, allow_return=True)
        return before != [d.serial for d in _bus.present_devices()]

    def RegisterEventHandler(self, handler: InterfaceEventHandler) -> None:  # noqa: N802
        self._check()
        with _bus.lock:
            _bus.handlers.append(handler)

    def UnregisterEventHandler(self, handler: InterfaceEventHandler) -> None:  # noqa: N802
        with _bus.lock:
            if handler not in _bus.handlers:
                raise SpinnakerException("Event handler is not registered", SPINNAKER_ERR_INVALID_PARAMETER)
            _bus.handlers.remove(handler)

    def ReleaseInstance(self) -> None:  # noqa: N802
        """Drop one reference; the last one raises -1004 if cameras, images or handlers survive."""
        with _bus.lock:
            self._check()
            if _bus.system_refs > 1:
                _bus.system_refs -= 1
                return
            survivors = _survivors()
            if survivors:
                raise SpinnakerException("Can't release the system instance: " + "; ".join(survivors), SPINNAKER_ERR_RESOURCE_IN_USE)
            _bus.system_refs = 0
            _bus.system = None


def _survivors() -> list[str]:
    found = []
    live = [c for c in list(_bus.live_cameras) if c._handle.device is not None]
    if live:
        found.append(f"{len(live)} camera reference(s) still held")
    initialised = [d.serial for d in _bus.present_devices() if d.initialised]
    if initialised:
        found.append(f"camera(s) {initialised} still initialised (call DeInit)")
    images = sum(d.outstanding for d in _bus.devices.values())
    if images:
        found.append(f"{images} image(s) not released")
    if _bus.handlers:
        found.append(f"{len(_bus.handlers)} event handler(s) still registered")
    return found


# --------------------------------------------------------------------------- test hooks (not in PySpin)


def attach_camera(
    serial: str,
    frame_source: FrameSource | Camera,
    *,
    clock: Clock | None = None,
    model: str = GS3_MODEL,
    sensor_shape: tuple[int, int] = GS3_SENSOR_SHAPE,
    frame_rate_nodes: str = "GEN2",
    firmware: str = "fake-2.0",
    faults: WorldFaults | None = None,
) -> None:
    """Plug a camera into the fake bus.

    ``frame_source`` is a ``render(roi, exposure_ms, gain_db)`` callable (e.g.
    ``world.render``) or a :class:`operascope.devices.base.Camera` (wrapped in
    :class:`CameraFrameSource`). ``clock`` times frames (default: wall clock; pass
    ``world.clock`` to follow the simulation). ``frame_rate_nodes`` = "GEN2" (GS3:
    ``AcquisitionFrameRateAuto``/``...Enabled``) or "SFNC" (``AcquisitionFrameRateEnable``).
    ``faults`` feeds a simulated world's injected faults into this camera (:class:`WorldFaults`).
    """
    source = CameraFrameSource(frame_source) if isinstance(frame_source, Camera) else frame_source
    if not callable(source):
        raise TypeError(f"frame_source must be a render callable or a operascope.devices.base.Camera, got {type(frame_source).__name__}")
    with _bus.lock:
        if str(serial) in _bus.devices:
            raise ValueError(f"a fake camera with serial {serial!r} is already attached")
        _bus.devices[str(serial)] = _FakeDevice(str(serial), source, clock or WallClock(), model,
                                                tuple(sensor_shape), frame_rate_nodes, firmware, faults)


def attach_world(world: Any, camera_serial: str = "EMU-CAM-0", focus_serial: str = "EMU-FOCUS-1",
                 focus_profile_axis: int = 1) -> None:
    """Attach the simulated world's two cameras, both timed by ``world.clock``.

    Index 0 / ``camera_serial`` renders the sample at each exposure (``world.render_at``);
    index 1 / ``focus_serial`` shows the reflected focus-laser line (``world.focus_profile``,
    along ``focus_profile_axis``), for ``FlirCamera`` and ``FlirLineSensor`` respectively.
    The world's faults of roles "camera" and "focus_sensor" act on them (:class:`WorldFaults`).
    """
    attach_camera(camera_serial, WorldFrameSource(world), clock=world.clock, faults=WorldFaults(world, "camera"))
    attach_camera(focus_serial, LineFrameSource(world.focus_profile, focus_profile_axis), clock=world.clock,
                  faults=WorldFaults(world, "focus_sensor"))


def _sync_world_loss(device: _FakeDevice, allow_return: bool = False) -> None:
    """Unplug a camera the world has lost; with ``allow_return``, replug it once the world allows."""
    if device.faults is None:
        return
    if device.present:
        if device.faults.is_lost():
            device.lost_by_world = True
            unplug(device.serial)
    elif allow_return and device.lost_by_world and device.faults.try_reconnect():
        device.lost_by_world = False
        replug(device.serial)


def _notify(serial: str, arrival: bool) -> None:
    device = _device(serial)
    for handler in list(_bus.handlers):
        camera = CameraPtr(device)
        (handler.OnDeviceArrival if arrival else handler.OnDeviceRemoval)(camera)
        del camera


def unplug(serial: str) -> None:
    """Pull the USB cable: later calls raise -1010 and ``IsValid()`` becomes False."""
    device = _device(serial)
    with device.cond:
        device.present = False
        device.streaming = False
        device.initialised = False
        device.queue.clear()
        device.outstanding = 0
        device.cond.notify_all()
    _notify(serial, arrival=False)


def detach(serial: str) -> None:
    """Unplug a camera and remove it from the bus (emulator shutdown). Unknown serials are ignored."""
    if str(serial) not in _bus.devices:
        return
    unplug(serial)
    with _bus.lock:
        _bus.devices.pop(str(serial), None)


def replug(serial: str) -> None:
    """Plug the camera back in: it powers up with factory defaults; old pointers stay invalid."""
    device = _device(serial)
    with device.cond:
        device.generation += 1
        device.present = True
        device.power_on()
        device.cond.notify_all()
    _notify(serial, arrival=True)


def stall(serial: str, duration_s: float) -> None:
    """The stream stalls at once for ``duration_s`` (camera clock): frames waiting in the
    host queue and every exposure of the interval are lost, so IDs jump."""
    device = _device(serial)
    with device.cond:
        device.advance()
        device.dropped += len(device.queue)
        device.queue.clear()
        device.stall_until_s = device.clock.now_s() + duration_s


def inject_incomplete(serial: str, count: int = 1) -> None:
    """The next ``count`` frames handed to the application are incomplete (missing packets):
    frames already queued first, then new exposures."""
    device = _device(serial)
    with device.cond:
        device.advance()
        marked = min(int(count), len(device.queue))
        for i in range(marked):
            index, time_s, _ = device.queue[i]
            device.queue[i] = (index, time_s, SPINNAKER_IMAGE_STATUS_MISSING_PACKETS)
        device.pending_incomplete += int(count) - marked


def drop_frames(serial: str, count: int = 1) -> None:
    """The next ``count`` frames are lost in transport (the frame ID jumps): frames already
    queued first, then new exposures."""
    device = _device(serial)
    with device.cond:
        device.advance()
        removed = min(int(count), len(device.queue))
        for _ in range(removed):
            device.queue.popleft()
        device.dropped += removed
        device.pending_drops += int(count) - removed


def inject_error(serial: str, errorcode: int, count: int = 1) -> None:
    """The next ``count`` ``GetNextImage`` calls raise SpinnakerException(``errorcode``)."""
    device = _device(serial)
    with device.cond:
        device.pending_errors.extend([int(errorcode)] * int(count))


def set_in_use(serial: str, in_use: bool = True) -> None:
    """Pretend another process holds the camera: ``Init`` raises -1004."""
    _device(serial).in_use_elsewhere = bool(in_use)


def write_log(serial: str) -> list[tuple[str, Any]]:
    """Every successful node write (name, value read back) and Begin/EndAcquisition, in order."""
    return list(_device(serial).log)


def clear_write_log(serial: str) -> None:
    _device(serial).log.clear()


def stream_stats(serial: str) -> dict[str, int]:
    """Buffer-pool counters: ``outstanding`` (delivered, not released), ``queued``, ``produced``,
    ``dropped``, ``delivered``, ``buffers``."""
    d = _device(serial)
    with d.cond:
        return {"outstanding": d.outstanding, "queued": len(d.queue), "produced": d.produced,
                "dropped": d.dropped, "delivered": d.delivered, "buffers": d.buffer_count()}


def is_initialised(serial: str) -> bool:
    """True if the camera is initialised (by anyone)."""
    return _device(serial).initialised


def system_reference_count() -> int:
    """How many ``GetInstance`` references are held."""
    return _bus.system_refs


def reset() -> None:
    """Forget every camera, the System instance, handlers and references (between tests)."""
    global _bus
    _bus = _Bus()
