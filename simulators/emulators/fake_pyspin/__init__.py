"""A fake ``PySpin`` (FLIR Spinnaker SDK binding) that emulates a Grasshopper3 camera.

It speaks the vendor's Python API (names, call-order rules and error codes from
``reference/devices.md`` section 1, held against FLIR's Spinnaker Python examples: Acquisition, Trigger,
ImageFormatControl, BufferHandling, Enumeration, NodeMapInfo, ImageEvents, DeviceEvents,
Exposure_QuickSpin, ChunkData make the same calls against it in tests/simulators/test_fake_pyspin_*.py)
so that :mod:`operascope.devices.flir` runs unchanged against it: ``System.GetInstance`` / ``GetCameras`` / ``CameraList`` / ``CameraPtr`` with
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

Modules: ``constants`` (codes, enum constants), ``errors``, ``pixels`` (packing, Save), ``sources``,
``nodes`` (node pointers), ``nodemaps``, ``images``, ``device`` (the camera model: stream, trigger, camera
memory), ``camera`` (CameraPtr), ``quickspin``, ``handlers`` (event handlers), ``bus``, ``system``, ``hooks``.

Mono16 is MSB-aligned here (12-bit counts x 16), Mono8 is the top 8 bits. FLIR material read for this
(the Spinnaker examples, GitHub issues of PySpin users) does not state the Mono16 alignment of a 12-bit
GS3; the driver checks the data instead of trusting either (see devices/flir_pixels.py).
"""

from __future__ import annotations

from .bus import BUS as _BUS
from .camera import CameraList, CameraPtr
from .constants import *  # noqa: F401,F403 - the SDK's flat namespace
from .constants import enum_constants as _enum_constants
from .device import GS3_MODEL, GS3_SENSOR_SHAPE, FakeDevice
from .errors import Image_GetImageStatusDescription, SpinnakerException
from .handlers import DeviceEventHandler, ImageEventHandler, InterfaceEventHandler
from .hooks import (
    attach_camera,
    attach_world,
    clear_write_log,
    detach,
    drop_frames,
    initialised_serials,
    inject_error,
    inject_incomplete,
    is_initialised,
    replug,
    reset,
    set_in_use,
    set_isvalid_semantics,
    stall,
    stream_stats,
    system_reference_count,
    unplug,
    write_log,
)
from .images import ChunkData, ImagePtr, ImageProcessor
from .nodes import (
    CBooleanPtr,
    CCategoryPtr,
    CCommandPtr,
    CEnumEntryPtr,
    CEnumerationPtr,
    CFloatPtr,
    CIntegerPtr,
    CNodePtr,
    CStringPtr,
    CValuePtr,
    IsAvailable,
    IsImplemented,
    IsReadable,
    IsWritable,
)
from .pixels import pack_pixels, unpack_pixels
from .sources import CameraFrameSource, FrameSource, LineFrameSource, WorldFaults, WorldFrameSource
from .system import InterfaceList, InterfacePtr, LibraryVersion, System

globals().update({name: value for name, value in _enum_constants().items() if name not in globals()})

Image = ImagePtr
Camera = CameraPtr
ImageEvent, DeviceEvent, InterfaceEvent = ImageEventHandler, DeviceEventHandler, InterfaceEventHandler  # Spinnaker 1.x
