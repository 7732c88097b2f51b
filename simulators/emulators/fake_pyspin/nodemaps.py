"""The node maps of a fake camera (GenICam, TL device, TL stream), of an interface and of the system.

Node names and categories follow the SFNC / FLIR names used by the Spinnaker examples; display names,
tooltips and the category layout are this emulator's.
"""

from __future__ import annotations

from typing import Any, Callable

from .constants import BUFFER_HANDLING_MODES, ENUM_ENTRIES, PIXEL_FORMAT_NAMES
from .device import EXPOSURE_MIN_US, FRAME_RATE_MIN_HZ, GAIN_RANGE_DB
from .nodes import ALWAYS, _EnumEntry, _NodeMap

WIDTH_INC, HEIGHT_INC, OFFSET_INC = 4, 2, 2
BUFFER_COUNT_RANGE = (1, 1000)
CHUNK_VALUE_NODES = ("FrameID", "ExposureTime", "Gain", "BlackLevel", "Width", "Height", "OffsetX", "OffsetY",
                     "Timestamp", "PixelFormat", "SequencerSetActive", "CRC")


def _entries(node: str) -> list[_EnumEntry]:
    if node == "PixelFormat":
        return [_EnumEntry(name, value) for value, name in PIXEL_FORMAT_NAMES.items()]
    return [_EnumEntry(name, index) for index, name in enumerate(ENUM_ENTRIES[node])]


def build_genicam_nodemap(handle: Any) -> _NodeMap:
    d = handle.device
    nm = _NodeMap(handle, needs_init=True)
    v = d.v

    def setter(name: str, after: Callable[[], None] | None = None) -> Callable[[Any], None]:
        def _change(value: Any) -> None:
            v[name] = value
            if after is not None:
                after()
        return lambda value: d.retime(lambda: _change(value))

    def enum(name: str, after: Callable[[], None] | None = None, **kw: Any) -> None:
        nm.add(name, "enumeration", get=lambda: v[name], set=setter(name, after), entries=_entries(name), **kw)

    h_max, w_max = d.sensor_shape
    enum("PixelFormat", d.clamp_exposure, locked_while_streaming=True)
    nm.add("SensorWidth", "integer", get=lambda: w_max, vmin=lambda: w_max, vmax=lambda: w_max)
    nm.add("SensorHeight", "integer", get=lambda: h_max, vmin=lambda: h_max, vmax=lambda: h_max)
    nm.add("WidthMax", "integer", get=lambda: w_max, vmin=lambda: w_max, vmax=lambda: w_max)
    nm.add("HeightMax", "integer", get=lambda: h_max, vmin=lambda: h_max, vmax=lambda: h_max)
    nm.add("Width", "integer", get=lambda: v["Width"], set=setter("Width", d.clamp_exposure), inc=WIDTH_INC,
           vmin=lambda: WIDTH_INC * 4, vmax=lambda: w_max - v["OffsetX"], locked_while_streaming=True)
    nm.add("Height", "integer", get=lambda: v["Height"], set=setter("Height", d.clamp_exposure), inc=HEIGHT_INC,
           vmin=lambda: HEIGHT_INC * 2, vmax=lambda: h_max - v["OffsetY"], locked_while_streaming=True)
    nm.add("OffsetX", "integer", get=lambda: v["OffsetX"], set=setter("OffsetX"), inc=OFFSET_INC,
           vmin=lambda: 0, vmax=lambda: w_max - v["Width"], locked_while_streaming=True)
    nm.add("OffsetY", "integer", get=lambda: v["OffsetY"], set=setter("OffsetY"), inc=OFFSET_INC,
           vmin=lambda: 0, vmax=lambda: h_max - v["Height"], locked_while_streaming=True)
    enum("AcquisitionMode", locked_while_streaming=True)
    nm.add("AcquisitionStart", "command", execute=lambda: None)
    nm.add("AcquisitionStop", "command", execute=lambda: None)
    enum("ExposureAuto")
    nm.add("ExposureTime", "float", get=lambda: v["ExposureTime"], set=setter("ExposureTime"),
           vmin=lambda: EXPOSURE_MIN_US, vmax=d.exposure_max_us, writable_if=lambda: v["ExposureAuto"] == "Off")
    enum("GainAuto")
    nm.add("Gain", "float", get=lambda: v["Gain"], set=setter("Gain"), vmin=lambda: GAIN_RANGE_DB[0],
           vmax=lambda: GAIN_RANGE_DB[1], writable_if=lambda: v["GainAuto"] == "Off")
    nm.add("BlackLevel", "float", get=lambda: v["BlackLevel"], set=setter("BlackLevel"), vmin=lambda: 0.0, vmax=lambda: 12.5)
    nm.add("GammaEnable", "boolean", get=lambda: v["GammaEnable"], set=setter("GammaEnable"))
    if d.frame_rate_nodes == "GEN2":
        nm.add("AcquisitionFrameRateAuto", "enumeration", get=lambda: v["AcquisitionFrameRateAuto"],
               set=setter("AcquisitionFrameRateAuto", d.clamp_exposure),
               entries=[e for e in _entries("AcquisitionFrameRateAuto") if e.name != "Once"])
        nm.add("AcquisitionFrameRateEnabled", "boolean", get=lambda: v["AcquisitionFrameRateEnabled"],
               set=setter("AcquisitionFrameRateEnabled", d.clamp_exposure))
    else:
        nm.add("AcquisitionFrameRateEnable", "boolean", get=lambda: v["AcquisitionFrameRateEnable"],
               set=setter("AcquisitionFrameRateEnable", d.clamp_exposure))
    nm.add("AcquisitionFrameRate", "float", get=d.frame_rate_hz, set=setter("AcquisitionFrameRate", d.clamp_exposure),
           vmin=lambda: FRAME_RATE_MIN_HZ, vmax=d.max_frame_rate_hz, writable_if=d.frame_rate_enabled)
    _add_trigger_nodes(nm, d, enum)
    _add_chunk_nodes(nm, d)
    _add_event_nodes(nm, d)
    nm.add("TimestampIncrement", "integer", get=lambda: 1, vmin=lambda: 1, vmax=lambda: 1)
    nm.add("TimestampLatch", "command", execute=d.latch_timestamp)
    nm.add("TimestampLatchValue", "integer", get=lambda: d.latched_timestamp_ns, vmin=lambda: 0,
           vmax=lambda: 2 ** 63 - 1)
    nm.add("DeviceFirmwareVersion", "string", get=lambda: d.firmware)
    nm.add("DeviceSerialNumber", "string", get=lambda: d.serial)
    nm.add("DeviceModelName", "string", get=lambda: d.model)
    nm.category("DeviceControl", ["DeviceModelName", "DeviceSerialNumber", "DeviceFirmwareVersion", "TimestampIncrement",
                                   "TimestampLatch", "TimestampLatchValue"])
    nm.category("ImageFormatControl", ["SensorWidth", "SensorHeight", "WidthMax", "HeightMax", "Width", "Height",
                                       "OffsetX", "OffsetY", "PixelFormat"])
    nm.category("AcquisitionControl", ["AcquisitionMode", "AcquisitionStart", "AcquisitionStop", "AcquisitionFrameRate",
                                       "AcquisitionFrameRateAuto", "AcquisitionFrameRateEnabled",
                                       "AcquisitionFrameRateEnable", "ExposureAuto", "ExposureTime", "TriggerSelector",
                                       "TriggerMode", "TriggerSource", "TriggerActivation", "TriggerOverlap",
                                       "TriggerSoftware"])
    nm.category("AnalogControl", ["GainAuto", "Gain", "BlackLevel", "GammaEnable"])
    nm.category("ChunkDataControl", ["ChunkModeActive", "ChunkSelector", "ChunkEnable"]
                + [f"Chunk{name}" for name in CHUNK_VALUE_NODES])
    nm.category("EventControl", ["EventSelector", "EventNotification"])
    nm.category("Root", ["DeviceControl", "ImageFormatControl", "AcquisitionControl", "AnalogControl",
                         "ChunkDataControl", "EventControl"])
    return nm


def _add_trigger_nodes(nm: _NodeMap, d: Any, enum: Callable[..., None]) -> None:
    """Trigger nodes; selector and source only change with TriggerMode Off (as FLIR cameras require)."""
    trigger_off = lambda: d.v["TriggerMode"] == "Off"  # noqa: E731
    enum("TriggerSelector", writable_if=trigger_off)
    enum("TriggerMode")
    enum("TriggerSource", writable_if=trigger_off)
    enum("TriggerActivation")
    enum("TriggerOverlap")
    nm.add("TriggerSoftware", "command", execute=d.software_trigger,
           writable_if=lambda: d.v["TriggerMode"] == "On" and d.v["TriggerSource"] == "Software")


def _add_chunk_nodes(nm: _NodeMap, d: Any) -> None:
    v = d.v

    def set_enable(value: bool) -> None:
        d.chunk_enable[v["ChunkSelector"]] = bool(value)

    nm.add("ChunkModeActive", "boolean", get=lambda: v["ChunkModeActive"],
           set=lambda value: v.__setitem__("ChunkModeActive", bool(value)), locked_while_streaming=True)
    nm.add("ChunkSelector", "enumeration", get=lambda: v["ChunkSelector"],
           set=lambda value: v.__setitem__("ChunkSelector", value), entries=_entries("ChunkSelector"))
    nm.add("ChunkEnable", "boolean", get=lambda: d.chunk_enable[v["ChunkSelector"]], set=set_enable,
           writable_if=lambda: v["ChunkSelector"] != "Image", locked_while_streaming=True)
    for name in CHUNK_VALUE_NODES:
        kind = "float" if name in ("ExposureTime", "Gain", "BlackLevel") else "integer"
        shown = lambda name=name: d.last_chunks is not None and name in d.last_chunks  # noqa: E731
        nm.add(f"Chunk{name}", kind, get=lambda name=name: d.last_chunks[name], available_if=shown,
               vmin=lambda: 0, vmax=lambda: 2**63 - 1)


def _add_event_nodes(nm: _NodeMap, d: Any) -> None:
    v = d.v

    def set_notification(symbol: str) -> None:
        d.event_notification[v["EventSelector"]] = symbol == "On"

    nm.add("EventSelector", "enumeration", get=lambda: v["EventSelector"],
           set=lambda value: v.__setitem__("EventSelector", value), entries=_entries("EventSelector"))
    nm.add("EventNotification", "enumeration", set=set_notification, entries=_entries("EventNotification"),
           get=lambda: "On" if d.event_notification[v["EventSelector"]] else "Off")


def build_tl_device_nodemap(handle: Any) -> _NodeMap:
    d = handle.device
    nm = _NodeMap(handle, needs_init=False)
    nm.add("DeviceID", "string", get=lambda: f"fake-{d.serial}")
    nm.add("DeviceSerialNumber", "string", get=lambda: d.serial)
    nm.add("DeviceVendorName", "string", get=lambda: "FLIR")
    nm.add("DeviceModelName", "string", get=lambda: d.model)
    nm.add("DeviceVersion", "string", get=lambda: d.firmware)
    nm.add("DeviceDisplayName", "string", get=lambda: f"FLIR {d.model}")
    nm.add("DeviceType", "string", get=lambda: "USB3Vision")
    nm.category("DeviceInformation", ["DeviceID", "DeviceSerialNumber", "DeviceVendorName", "DeviceModelName",
                                      "DeviceType", "DeviceDisplayName", "DeviceVersion"])
    nm.category("Root", ["DeviceInformation"])
    return nm


def build_tl_stream_nodemap(handle: Any) -> _NodeMap:
    d = handle.device
    v = d.v
    nm = _NodeMap(handle, needs_init=False)

    def setter(name: str) -> Callable[[Any], None]:
        return lambda value: v.__setitem__(name, value)

    nm.add("StreamBufferHandlingMode", "enumeration", get=lambda: v["StreamBufferHandlingMode"],
           set=setter("StreamBufferHandlingMode"), entries=[_EnumEntry(n, i) for i, n in enumerate(BUFFER_HANDLING_MODES)],
           locked_while_streaming=True)
    nm.add("StreamBufferCountMode", "enumeration", get=lambda: v["StreamBufferCountMode"], set=setter("StreamBufferCountMode"),
           entries=_entries("StreamBufferCountMode"), locked_while_streaming=True)
    nm.add("StreamBufferCountManual", "integer", get=lambda: v["StreamBufferCountManual"], set=setter("StreamBufferCountManual"),
           vmin=lambda: BUFFER_COUNT_RANGE[0], vmax=lambda: BUFFER_COUNT_RANGE[1], locked_while_streaming=True,
           writable_if=lambda: v["StreamBufferCountMode"] == "Manual")
    nm.add("StreamBufferCountResult", "integer", get=d.buffer_count, vmin=lambda: 1, vmax=lambda: BUFFER_COUNT_RANGE[1])
    nm.add("StreamDeliveredFrameCount", "integer", get=lambda: d.delivered, vmin=lambda: 0, vmax=lambda: 2**63 - 1)
    nm.add("StreamLostFrameCount", "integer", get=lambda: d.dropped, vmin=lambda: 0, vmax=lambda: 2**63 - 1)
    nm.category("BufferHandlingControl", ["StreamBufferHandlingMode", "StreamBufferCountMode", "StreamBufferCountManual",
                                          "StreamBufferCountResult"])
    nm.category("StreamDiagnostics", ["StreamDeliveredFrameCount", "StreamLostFrameCount"])
    nm.category("Root", ["BufferHandlingControl", "StreamDiagnostics"])
    return nm


def build_interface_nodemap(interface_id: str, display_name: str) -> _NodeMap:
    nm = _NodeMap(ALWAYS, needs_init=False)
    nm.add("InterfaceID", "string", get=lambda: interface_id)
    nm.add("InterfaceDisplayName", "string", get=lambda: display_name)
    nm.add("InterfaceType", "string", get=lambda: "USB3Vision")
    nm.category("InterfaceInformation", ["InterfaceID", "InterfaceDisplayName", "InterfaceType"])
    nm.category("Root", ["InterfaceInformation"])
    return nm


def build_system_nodemap(version: str) -> _NodeMap:
    nm = _NodeMap(ALWAYS, needs_init=False)
    nm.add("TLID", "string", get=lambda: "fake-pyspin")
    nm.add("TLVendorName", "string", get=lambda: "operascope fake PySpin")
    nm.add("TLModelName", "string", get=lambda: "Spinnaker emulator")
    nm.add("TLVersion", "string", get=lambda: version)
    nm.add("TLType", "string", get=lambda: "Mixed")
    nm.category("SystemInformation", ["TLID", "TLVendorName", "TLModelName", "TLVersion", "TLType"])
    nm.category("Root", ["SystemInformation"])
    return nm
