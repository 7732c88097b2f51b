"""FLIR Grasshopper3 (GS3-U3-23S6M-C) camera driver on the Spinnaker SDK (``PySpin``).

The SDK module is imported lazily in :meth:`FlirCamera.open` by name (config field
``sdk_module``: ``"PySpin"`` on the microscope PC, ``"operascope.simulators.emulators.fake_pyspin"`` for the
emulator), so a missing SDK is a :class:`MissingVendorLibrary` error, not an ImportError
at start-up. Call order, node names and error codes follow ``reference/devices.md`` §1.

Pixels are returned in a uint16 array as 12-bit ADC counts (0..4095) for Mono16 and the
Mono12 formats, and as 8-bit values (0..255) for Mono8, the same convention as the
simulated camera. FLIR's Mono16 is MSB-aligned (counts x 16) and is shifted down by 4 bits;
Mono12 packed formats are converted to Mono16 with ``ImageProcessor().Convert`` first (that
Convert also MSB-aligns is unconfirmed on hardware: a saturated pixel must read 4095).

Frame IDs: ``Frame.frame_id`` continues across ``stop``/``start`` and reconnects. Within a
stream it follows the camera's block ID, so gaps are dropped frames; after a reconnect it
jumps by the number of frame periods the camera was away (:attr:`FlirCameraStats.last_reconnect_gap_frames`).
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, Callable

import numpy as np

from operascope.devices.base import (
    PIXEL_FORMATS,
    Camera,
    CameraSettings,
    Clock,
    DeviceError,
    DeviceInfo,
    DeviceLost,
    DeviceTimeout,
    Frame,
    IncompleteFrame,
    MissingVendorLibrary,
    OutOfRange,
    Roi,
    WallClock,
    validate_in_range,
)

# Spinnaker / GenICam error codes (devices.md 1.5).
ERR_NOT_INITIALIZED = -1002
ERR_RESOURCE_IN_USE = -1004
ERR_INVALID_HANDLE = -1006
ERR_IO = -1010
ERR_TIMEOUT = -1011
GENICAM_ERR_OUT_OF_RANGE = -2002
GENICAM_ERR_ACCESS_DENIED = -2006
GENICAM_ERR_TIMEOUT = -2007
DEVICE_LOST_ERRORS = frozenset({ERR_IO, ERR_INVALID_HANDLE})

BUFFER_HANDLING_MODES = ("OldestFirst", "NewestOnly", "NewestFirst", "OldestFirstOverwrite")
MONO16_SHIFT_BITS = 4  # FLIR Mono16 carries the 12-bit ADC value in the top 12 bits
_LINEAR_RESPONSE_NODES = ("GammaEnable", "GammaEnabled", "SharpnessEnabled", "SharpeningEnable")
_EXPOSURE_CLAMP_TOLERANCE = 0.01  # an exposure within 1 % above the camera's max is clamped, not refused

INSTALL_HINT = (
    "Install FLIR/Teledyne's Spinnaker SDK for this OS and then its Python wheel from the same download: "
    "pip install spinnaker_python-<sdk version>-cp3XX-<platform>.whl (it must match the installed "
    "Spinnaker runtime and this Python version). The package called 'PySpin' on the public package index "
    "is an unrelated terminal spinner: never install it. Without hardware, set "
    "sdk_module = \"operascope.simulators.emulators.fake_pyspin\" to use the emulator."
)


def load_spinnaker(module_name: str, device: str = "camera") -> ModuleType:
    """Import the Spinnaker binding named ``module_name`` or raise MissingVendorLibrary."""
    if module_name.lower() == "pyspin" and module_name != "PySpin":
        raise MissingVendorLibrary(
            device, f"sdk_module {module_name!r} would load the unrelated spinner package; the FLIR binding "
            f"is imported as 'PySpin' (exact case). {INSTALL_HINT}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as ex:
        raise MissingVendorLibrary(device, f"cannot import the Spinnaker SDK module {module_name!r} ({ex}). {INSTALL_HINT}") from None
    if not all(hasattr(module, attr) for attr in ("System", "SpinnakerException", "CFloatPtr")):
        raise MissingVendorLibrary(
            device, f"module {module_name!r} is not FLIR's Spinnaker binding (no System/SpinnakerException). {INSTALL_HINT}"
        )
    return module


@dataclass
class FlirCameraStats:
    """Counters of one driver instance (frames are counted by ``read``)."""

    frames: int = 0
    incomplete_frames: int = 0
    timeouts: int = 0
    dropped_frames: int = 0
    reconnects: int = 0
    frames_lost_to_reconnect: int = 0
    last_reconnect_gap_frames: int = 0


@dataclass(frozen=True)
class _Request:
    exposure_ms: float
    frame_rate_hz: float
    roi: Roi
    pixel_format: str
    gain_db: float


class _NodeAccess:
    """Typed reads and checked writes on one Spinnaker node map; errors name the node."""

    def __init__(self, spin: ModuleType, nodemap: Any, device: str) -> None:
        self._spin = spin
        self._nodemap = nodemap
        self._device = device

    def has(self, name: str) -> bool:
        return bool(self._spin.IsAvailable(self._nodemap.GetNode(name)))

    def writable(self, name: str) -> bool:
        return bool(self._spin.IsWritable(self._nodemap.GetNode(name)))

    def _node(self, name: str, ptr_type: str, write: bool = False) -> Any:
        node = getattr(self._spin, ptr_type)(self._nodemap.GetNode(name))
        if not self._spin.IsAvailable(node) or not self._spin.IsReadable(node):
            raise DeviceError(self._device, f"node {name} is not available on this camera; check the model and firmware")
        if write and not self._spin.IsWritable(node):
            raise DeviceError(self._device, f"node {name} is not writable now (streaming, or an auto mode is on)")
        return node

    def get_float(self, name: str) -> float:
        return float(self._node(name, "CFloatPtr").GetValue())

    def get_int(self, name: str) -> int:
        return int(self._node(name, "CIntegerPtr").GetValue())

    def get_bool(self, name: str) -> bool:
        return bool(self._node(name, "CBooleanPtr").GetValue())

    def get_string(self, name: str) -> str:
        return str(self._node(name, "CStringPtr").GetValue())

    def get_enum(self, name: str) -> str:
        return str(self._node(name, "CEnumerationPtr").GetCurrentEntry().GetSymbolic())

    def enum_symbols(self, name: str) -> list[str]:
        node = self._node(name, "CEnumerationPtr")
        entries = [self._spin.CEnumEntryPtr(e) for e in node.GetEntries()]
        return [e.GetSymbolic() for e in entries if self._spin.IsAvailable(e) and self._spin.IsReadable(e)]

    def float_limits(self, name: str) -> tuple[float, float]:
        node = self._node(name, "CFloatPtr")
        return float(node.GetMin()), float(node.GetMax())

    def int_limits(self, name: str) -> tuple[int, int, int]:
        node = self._node(name, "CIntegerPtr")
        return int(node.GetMin()), int(node.GetMax()), int(node.GetInc())

    def set_float(self, name: str, value: float) -> float:
        node = self._node(name, "CFloatPtr", write=True)
        node.SetValue(float(value))
        return float(node.GetValue())

    def set_int(self, name: str, value: int) -> None:
        node = self._node(name, "CIntegerPtr", write=True)
        node.SetValue(int(value))
        self._verify(name, int(node.GetValue()), int(value))

    def set_bool(self, name: str, value: bool) -> None:
        node = self._node(name, "CBooleanPtr", write=True)
        node.SetValue(bool(value))
        self._verify(name, bool(node.GetValue()), bool(value))

    def set_enum(self, name: str, symbol: str) -> None:
        node = self._node(name, "CEnumerationPtr", write=True)
        entry = node.GetEntryByName(symbol)
        if entry is None or not self._spin.IsAvailable(entry) or not self._spin.IsReadable(entry):
            raise OutOfRange(self._device, f"{name} has no entry {symbol!r}; allowed: {', '.join(self.enum_symbols(name))}")
        node.SetIntValue(entry.GetValue())
        self._verify(name, node.GetCurrentEntry().GetSymbolic(), symbol)

    def _verify(self, name: str, got: Any, wanted: Any) -> None:
        if got != wanted:
            raise DeviceError(self._device, f"node {name} reads back {got!r} after writing {wanted!r}")


class FlirCamera(Camera):
    """A FLIR USB3 Vision camera (Grasshopper3 GEN2 or SFNC node names) through Spinnaker.

    Arguments are the fields of ``FlirCameraConfig`` plus an optional rig ``clock`` (used for
    ``Frame.host_time_s`` and the reconnect gap estimate).
    """

    name = "camera"

    def __init__(
        self,
        serial: str | None = None,
        index: int = 0,
        buffer_handling: str = "OldestFirst",
        buffer_count: int = 20,
        sdk_module: str = "PySpin",
        consecutive_timeouts_lost: int = 5,
        clock: Clock | None = None,
    ) -> None:
        if buffer_handling not in BUFFER_HANDLING_MODES:
            raise OutOfRange(self.name, f"buffer_handling {buffer_handling!r} is not one of {', '.join(BUFFER_HANDLING_MODES)}")
        if serial is not None and not str(serial).strip():
            raise OutOfRange(self.name, "serial must be a non-empty DeviceSerialNumber or None (then index is used)")
        self._wanted_serial = None if serial is None else str(serial).strip()
        self._index = int(validate_in_range(self.name, "index", index, 0, 255, ""))
        self._buffer_handling = buffer_handling
        self._buffer_count = int(validate_in_range(self.name, "buffer_count", buffer_count, 1, 1000, "buffers"))
        self._timeouts_lost = int(validate_in_range(self.name, "consecutive_timeouts_lost", consecutive_timeouts_lost, 1, 1000, ""))
        self._sdk_module = sdk_module
        self._clock = clock or WallClock()
        self._lock = threading.RLock()
        self._spin: ModuleType | None = None
        self._system: Any = None
        self._cam_list: Any = None
        self._cam: Any = None
        self._nodes: _NodeAccess | None = None
        self._stream_nodes: _NodeAccess | None = None
        self._processor: Any = None
        self._info: DeviceInfo | None = None
        self._sensor_shape: tuple[int, int] = (0, 0)
        self._requested: _Request | None = None
        self._streaming = False
        self._lost = False
        self._consecutive_timeouts = 0
        self._stats = FlirCameraStats()
        # frame-id bookkeeping
        self._next_frame_id = 0
        self._session_base: int | None = None
        self._session_offset = 0
        self._last_sdk_id = -1
        self._last_frame_host_s: float | None = None
        self._gap_pending = False

    # ------------------------------------------------------------------ SDK calls and errors
    def _translate(self, ex: Exception, action: str) -> DeviceError:
        """Map a SpinnakerException to a typed DeviceError (the SDK exception is not chained)."""
        code = getattr(ex, "errorcode", None)
        text = f"{action} failed: {ex}"
        if code == ERR_TIMEOUT or code == GENICAM_ERR_TIMEOUT:
            return DeviceTimeout(self.name, f"{text}; check the cable and the frame rate")
        if code in DEVICE_LOST_ERRORS:
            self._lost = True
            return DeviceLost(self.name, f"{text}; the camera was unplugged or reset: check the USB3 cable, then reconnect()")
        if code == ERR_RESOURCE_IN_USE:
            return DeviceError(self.name, f"{text}; another program holds the camera (close SpinView or other sessions)")
        if code == GENICAM_ERR_OUT_OF_RANGE:
            return OutOfRange(self.name, text)
        if code == GENICAM_ERR_ACCESS_DENIED:
            return DeviceError(self.name, f"{text}; the node is not writable in this state (stop streaming first)")
        if code == ERR_NOT_INITIALIZED:
            return DeviceError(self.name, f"{text}; the camera is not initialised (open() it again)")
        return DeviceError(self.name, text)

    def _call(self, action: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one SDK call; SpinnakerException becomes a typed DeviceError."""
        try:
            return fn(*args)
        except self._spin.SpinnakerException as ex:
            error = self._translate(ex, action)
        del fn, args  # no SDK object may stay referenced from the traceback
        raise error

    def _guarded(self, action: str, fn: Callable[[], Any]) -> Any:
        """Like :meth:`_call` for a block of driver code that makes several SDK calls.

        A node that vanished because the camera did is reported as DeviceLost.
        """
        try:
            return fn()
        except self._spin.SpinnakerException as ex:
            error = self._translate(ex, action)
        except DeviceError as ex:
            if isinstance(ex, (DeviceLost, OutOfRange)) or self._cam is None or self._camera_valid():
                raise
            self._lost = True
            error = DeviceLost(self.name, f"{action} failed: {ex.detail}; the camera is gone: check the USB3 cable, then reconnect()")
        del fn
        raise error

    def _camera_valid(self) -> bool:
        try:
            return bool(self._cam.IsValid())
        except self._spin.SpinnakerException:
            return False

    def _check_not_lost(self) -> None:
        self._require_open()
        if self._lost or self._cam is None:
            raise DeviceLost(self.name, "the camera was lost; call reconnect() once it is back")

    # ------------------------------------------------------------------ open / close
    @property
    def is_open(self) -> bool:
        return self._system is not None

    def open(self) -> None:
        """Find the camera (serial, else index), Init it and apply the stream settings."""
        with self._lock:
            if self.is_open:
                return
            self._spin = load_spinnaker(self._sdk_module, self.name)
            self._system = self._call("System.GetInstance", self._spin.System.GetInstance)
            try:
                self._attach(self._wanted_serial)
            except BaseException:
                self._detach()
                self._release_system()
                raise
            processor_cls = getattr(self._spin, "ImageProcessor", None)
            self._processor = processor_cls() if processor_cls is not None else None

    def _attach(self, serial: str | None) -> None:
        """Get the camera from a fresh camera list, read its identity, Init, prepare streaming."""
        spin = self._spin
        self._cam_list = self._call("System.GetCameras", self._system.GetCameras)
        count = self._cam_list.GetSize()
        if serial is not None:
            self._cam = self._find_by_serial(serial)
            if self._cam is None:
                present = self._guarded("list camera serials", self._present_serials)
                self._cam = None
                raise DeviceLost(
                    self.name, f"no camera with serial {serial!r} (present: {present or 'none'}); "
                    "check the USB3 cable and the serial in the config"
                )
        else:
            if self._index >= count:
                raise DeviceLost(self.name, f"camera index {self._index} requested but {count} camera(s) found; check the USB3 cable")
            self._cam = self._call("CameraList.GetByIndex", self._cam_list.GetByIndex, self._index)

        def identify_and_init() -> None:
            tl = _NodeAccess(spin, self._cam.GetTLDeviceNodeMap(), self.name)
            firmware = tl.get_string("DeviceVersion") if tl.has("DeviceVersion") else ""
            self._info = DeviceInfo(
                model=tl.get_string("DeviceModelName"), serial=tl.get_string("DeviceSerialNumber"), firmware=firmware, driver="flir"
            )
            self._cam.Init()
            self._nodes = _NodeAccess(spin, self._cam.GetNodeMap(), self.name)
            self._stream_nodes = _NodeAccess(spin, self._cam.GetTLStreamNodeMap(), self.name)
            if self._cam.IsStreaming():  # left streaming by an earlier session
                self._cam.EndAcquisition()
            self._sensor_shape = (self._nodes.get_int("HeightMax"), self._nodes.get_int("WidthMax"))
            self._apply_stream_settings()

        self._guarded(f"opening camera {serial or self._index}", identify_and_init)
        self._lost = False
        self._consecutive_timeouts = 0

    def _find_by_serial(self, serial: str) -> Any:
        """The camera with that serial, or None (SDKs return an invalid pointer or raise)."""
        try:
            camera = self._cam_list.GetBySerial(serial)
            if camera is not None and camera.IsValid():
                return camera
        except self._spin.SpinnakerException:
            pass
        return None

    def _present_serials(self) -> list[str]:
        return [
            _NodeAccess(self._spin, cam.GetTLDeviceNodeMap(), self.name).get_string("DeviceSerialNumber")
            for cam in self._cam_list
        ]

    def _apply_stream_settings(self) -> None:
        nodes = self._stream_nodes
        nodes.set_enum("StreamBufferHandlingMode", self._buffer_handling)
        nodes.set_enum("StreamBufferCountMode", "Manual")
        low, high, _ = nodes.int_limits("StreamBufferCountManual")
        if not low <= self._buffer_count <= high:
            raise OutOfRange(self.name, f"buffer_count {self._buffer_count} outside the camera's range [{low}, {high}]")
        nodes.set_int("StreamBufferCountManual", self._buffer_count)

    def _detach(self) -> None:
        """End acquisition, DeInit, drop every camera reference; ignores SDK errors (device may be gone)."""
        spin_error = self._spin.SpinnakerException if self._spin is not None else Exception
        if self._cam is not None:
            try:
                if self._cam.IsValid() and self._cam.IsStreaming():
                    self._cam.EndAcquisition()
            except spin_error:
                pass
            try:
                if self._cam.IsValid() and self._cam.IsInitialized():
                    self._cam.DeInit()
            except spin_error:
                pass
        self._nodes = None
        self._stream_nodes = None
        self._cam = None
        if self._cam_list is not None:
            try:
                self._cam_list.Clear()
            except spin_error:
                pass
            self._cam_list = None

    def _release_system(self) -> None:
        if self._system is None:
            return
        system, self._system = self._system, None
        try:
            system.ReleaseInstance()
        except self._spin.SpinnakerException as ex:
            error = DeviceError(self.name, f"Spinnaker system could not be released: {ex}; an image or camera reference leaked")
        else:
            return
        del system
        raise error

    def close(self) -> None:
        """Stop streaming, DeInit the camera and release the Spinnaker system. Idempotent."""
        with self._lock:
            if not self.is_open:
                return
            self._detach()
            self._streaming = False
            self._processor = None
            self._release_system()

    def info(self) -> DeviceInfo:
        self._require_open()
        return self._info

    @property
    def sensor_shape(self) -> tuple[int, int]:
        self._require_open()
        return self._sensor_shape

    @property
    def stats(self) -> FlirCameraStats:
        """A copy of the counters."""
        return replace(self._stats)

    # ------------------------------------------------------------------ configuration
    def configure(
        self,
        exposure_ms: float,
        frame_rate_hz: float,
        roi: Roi | None = None,
        pixel_format: str = "Mono16",
        gain_db: float = 0.0,
    ) -> CameraSettings:
        """Validate everything (nothing written), then write in the safe order and read back.

        Order: PixelFormat -> ROI -> AcquisitionMode -> frame rate -> ExposureAuto Off ->
        ExposureTime -> GainAuto Off -> Gain -> linear response -> stream buffers. If the
        camera streams, it is stopped for the change and restarted.
        """
        with self._lock:
            self._check_not_lost()
            request = self._guarded("reading camera limits", lambda: self._validate(exposure_ms, frame_rate_hz, roi, pixel_format, gain_db))
            was_streaming = self._streaming
            if was_streaming:
                self.stop()
            self._guarded("configuring the camera", lambda: self._apply(request))
            self._requested = request
            if was_streaming:
                self.start()
            return self.settings()

    def _validate(self, exposure_ms: float, frame_rate_hz: float, roi: Roi | None, pixel_format: str, gain_db: float) -> _Request:
        nodes = self._nodes
        if pixel_format not in PIXEL_FORMATS:
            raise OutOfRange(self.name, f"pixel_format {pixel_format!r} is not one of {', '.join(PIXEL_FORMATS)}")
        available = nodes.enum_symbols("PixelFormat")
        if pixel_format not in available:
            raise OutOfRange(self.name, f"pixel_format {pixel_format!r} is not offered by this camera; allowed: {', '.join(available)}")
        roi = self._validate_roi(roi)
        rate_low, rate_high = nodes.float_limits("AcquisitionFrameRate")
        same_geometry = pixel_format == nodes.get_enum("PixelFormat") and roi == self._current_roi()
        frame_rate_hz = validate_in_range(self.name, "frame_rate_hz", frame_rate_hz, rate_low, rate_high if same_geometry else 1e6, "Hz")
        exposure_low_ms = nodes.float_limits("ExposureTime")[0] / 1000.0
        period_ms = 1000.0 / frame_rate_hz
        exposure_ms = validate_in_range(self.name, "exposure_ms (at most the frame period)", exposure_ms, exposure_low_ms, period_ms, "ms")
        gain_low, gain_high = nodes.float_limits("Gain")
        gain_db = validate_in_range(self.name, "gain_db", gain_db, gain_low, gain_high, "dB")
        return _Request(exposure_ms, frame_rate_hz, roi, pixel_format, gain_db)

    def _current_roi(self) -> Roi:
        n = self._nodes
        return Roi(n.get_int("OffsetX"), n.get_int("OffsetY"), n.get_int("Width"), n.get_int("Height"))

    def _validate_roi(self, roi: Roi | None) -> Roi:
        height_max, width_max = self._sensor_shape
        if roi is None:
            return Roi(0, 0, width_max, height_max)
        if not isinstance(roi, Roi):
            raise OutOfRange(self.name, f"roi must be a operascope.devices.base.Roi or None, got {roi!r}")
        values = (roi.x, roi.y, roi.width, roi.height)
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            raise OutOfRange(self.name, f"roi {values} must be whole pixels")
        n = self._nodes
        width_min, _, width_inc = n.int_limits("Width")
        height_min, _, height_inc = n.int_limits("Height")
        x_inc, y_inc = n.int_limits("OffsetX")[2], n.int_limits("OffsetY")[2]
        problems = []
        if roi.x < 0 or roi.y < 0 or roi.x + roi.width > width_max or roi.y + roi.height > height_max:
            problems.append(f"it must lie inside the {width_max}x{height_max} sensor")
        if roi.width < width_min or roi.height < height_min:
            problems.append(f"the size must be at least {width_min}x{height_min}")
        for what, value, inc in (("width", roi.width, width_inc), ("height", roi.height, height_inc),
                                 ("x", roi.x, x_inc), ("y", roi.y, y_inc)):
            if value % inc:
                problems.append(f"{what} must be a multiple of {inc}")
        if problems:
            raise OutOfRange(self.name, f"roi (x={roi.x}, y={roi.y}, width={roi.width}, height={roi.height}): " + "; ".join(problems))
        return Roi(int(roi.x), int(roi.y), int(roi.width), int(roi.height))

    def _apply(self, request: _Request) -> None:
        nodes = self._nodes
        nodes.set_enum("PixelFormat", request.pixel_format)
        self._write_roi(request.roi)
        nodes.set_enum("AcquisitionMode", "Continuous")
        self._write_frame_rate(request)
        nodes.set_enum("ExposureAuto", "Off")
        exposure_us = request.exposure_ms * 1000.0
        exposure_max_us = nodes.float_limits("ExposureTime")[1]
        if exposure_us > exposure_max_us * (1 + _EXPOSURE_CLAMP_TOLERANCE):
            raise OutOfRange(self.name, f"exposure_ms {request.exposure_ms:g} exceeds the camera's maximum "
                             f"{exposure_max_us / 1000:g} ms at {request.frame_rate_hz:g} Hz")
        nodes.set_float("ExposureTime", min(exposure_us, exposure_max_us))
        nodes.set_enum("GainAuto", "Off")
        nodes.set_float("Gain", request.gain_db)
        for name in _LINEAR_RESPONSE_NODES:
            if nodes.has(name) and nodes.writable(name):
                nodes.set_bool(name, False)
        self._apply_stream_settings()

    def _write_roi(self, roi: Roi) -> None:
        """Shrink a size before moving its offset; move the offset before growing the size."""
        nodes = self._nodes
        for size_node, offset_node, size, offset in (("Width", "OffsetX", roi.width, roi.x), ("Height", "OffsetY", roi.height, roi.y)):
            if size <= nodes.get_int(size_node):
                nodes.set_int(size_node, size)
                nodes.set_int(offset_node, offset)
            else:
                nodes.set_int(offset_node, offset)
                nodes.set_int(size_node, size)

    def _write_frame_rate(self, request: _Request) -> None:
        """GS3 (GEN2): AcquisitionFrameRateAuto=Off, AcquisitionFrameRateEnabled=True; SFNC: ...Enable=True."""
        nodes = self._nodes
        if nodes.has("AcquisitionFrameRateEnable"):
            nodes.set_bool("AcquisitionFrameRateEnable", True)
        else:
            if nodes.has("AcquisitionFrameRateAuto"):
                nodes.set_enum("AcquisitionFrameRateAuto", "Off")
            nodes.set_bool("AcquisitionFrameRateEnabled", True)
        low, high = nodes.float_limits("AcquisitionFrameRate")
        if not low <= request.frame_rate_hz <= high:
            raise OutOfRange(
                self.name, f"frame_rate_hz {request.frame_rate_hz:g} is outside [{low:g}, {high:g}] Hz for "
                f"{request.pixel_format} at {request.roi.width}x{request.roi.height}; pixel format and ROI were "
                "applied, frame rate, exposure and gain were not changed"
            )
        nodes.set_float("AcquisitionFrameRate", request.frame_rate_hz)

    def settings(self) -> CameraSettings:
        """Current settings read back from the camera."""
        with self._lock:
            self._check_not_lost()
            n = self._nodes

            def read() -> CameraSettings:
                return CameraSettings(
                    exposure_ms=n.get_float("ExposureTime") / 1000.0,
                    frame_rate_hz=n.get_float("AcquisitionFrameRate"),
                    roi=self._current_roi(),
                    pixel_format=n.get_enum("PixelFormat"),
                    gain_db=n.get_float("Gain"),
                )

            return self._guarded("reading settings", read)

    # ------------------------------------------------------------------ streaming
    @property
    def is_streaming(self) -> bool:
        return self._streaming

    def start(self) -> None:
        """BeginAcquisition. Frame IDs continue from the last frame read."""
        with self._lock:
            self._check_not_lost()
            if self._streaming:
                return
            self._call("BeginAcquisition", self._cam.BeginAcquisition)
            self._streaming = True
            self._session_base = None
            self._consecutive_timeouts = 0

    def stop(self) -> None:
        """EndAcquisition. Idempotent; a lost camera just stops being 'streaming'."""
        with self._lock:
            if not self._streaming:
                return
            self._streaming = False
            if self._lost or self._cam is None:
                return
            try:
                self._call("EndAcquisition", self._cam.EndAcquisition)
            except DeviceLost:
                pass  # unplugged while streaming: nothing left to stop

    def read(self, timeout_s: float = 1.0) -> Frame:
        """Next frame (12-bit counts; Mono8: 8-bit). Every image is released, incomplete ones too.

        Raises DeviceTimeout (no frame in ``timeout_s``), DeviceLost (unplugged, or
        ``consecutive_timeouts_lost`` timeouts in a row), IncompleteFrame (counted, discarded).
        """
        timeout_s = validate_in_range(self.name, "timeout_s", timeout_s, 0.0, 86_400.0, "s")
        with self._lock:
            self._check_not_lost()
            if not self._streaming:
                raise DeviceError(self.name, "not streaming; call start() first")
            image = self._grab(timeout_s)
            try:
                return self._guarded("reading an image", lambda: self._frame_from(image))
            finally:
                self._release(image)

    def _grab(self, timeout_s: float) -> Any:
        try:
            image = self._cam.GetNextImage(int(round(timeout_s * 1000)))
        except self._spin.SpinnakerException as ex:
            code, error = ex.errorcode, self._translate(ex, f"GetNextImage({timeout_s:g} s)")
        else:
            self._consecutive_timeouts = 0
            return image
        if code == ERR_TIMEOUT:
            self._stats.timeouts += 1
            self._consecutive_timeouts += 1
            if self._consecutive_timeouts >= self._timeouts_lost:
                self._lost = True
                raise DeviceLost(
                    self.name, f"{self._consecutive_timeouts} grab timeouts in a row ({timeout_s:g} s each); "
                    "treating the camera as lost: check the cable, then reconnect()"
                )
            raise DeviceTimeout(
                self.name, f"no frame within {timeout_s:g} s ({self._consecutive_timeouts} of {self._timeouts_lost} "
                "allowed in a row); check the frame rate and the cable"
            )
        if not isinstance(error, DeviceLost) and not self._cam.IsValid():
            self._lost = True
            error = DeviceLost(self.name, f"{error.detail}; the camera is no longer valid (unplugged?): reconnect()")
        raise error

    def _release(self, image: Any) -> None:
        try:
            image.Release()
        except self._spin.SpinnakerException:
            pass  # the device is gone with its buffers; nothing left to give back

    def _frame_from(self, image: Any) -> Frame:
        frame_id = self._track_frame_id(int(image.GetFrameID()))
        timestamp_ns = int(image.GetTimeStamp())
        if image.IsIncomplete():
            status = int(image.GetImageStatus())
            self._stats.incomplete_frames += 1
            describe = getattr(self._spin, "Image_GetImageStatusDescription", None)
            text = describe(status) if describe else f"status {status}"
            raise IncompleteFrame(self.name, f"frame {frame_id} was incomplete ({text}, status {status}); discarded")
        pixels = self._pixels(image)
        self._stats.frames += 1
        return Frame(pixels=pixels, frame_id=frame_id, camera_time_ns=timestamp_ns, host_time_s=self._last_frame_host_s)

    def _pixels(self, image: Any) -> np.ndarray:
        """Copy the SDK buffer into a uint16 array (12-bit counts; Mono8 keeps its 8-bit values)."""
        spin = self._spin
        pixel_format = image.GetPixelFormat()
        height, width = int(image.GetHeight()), int(image.GetWidth())
        if pixel_format in (getattr(spin, "PixelFormat_Mono12Packed", None), getattr(spin, "PixelFormat_Mono12p", None)):
            converted = (self._processor.Convert(image, spin.PixelFormat_Mono16) if self._processor is not None
                         else image.Convert(spin.PixelFormat_Mono16))
            data = np.asarray(converted.GetNDArray(), dtype=np.uint16) >> MONO16_SHIFT_BITS
        elif pixel_format == spin.PixelFormat_Mono16:
            data = np.asarray(image.GetNDArray(), dtype=np.uint16) >> MONO16_SHIFT_BITS
        elif pixel_format == spin.PixelFormat_Mono8:
            data = np.asarray(image.GetNDArray(), dtype=np.uint8).astype(np.uint16)
        else:
            raise DeviceError(self.name, f"unsupported pixel format {image.GetPixelFormatName()}; use one of {', '.join(PIXEL_FORMATS)}")
        return np.ascontiguousarray(data.reshape(height, width))

    def _track_frame_id(self, sdk_id: int) -> int:
        """Map the camera's block ID to a run-continuous frame ID; count gaps as drops."""
        now_s = self._clock.now_s()
        if self._session_base is None or sdk_id <= self._last_sdk_id:
            gap = 0
            if self._gap_pending and self._last_frame_host_s is not None and self._requested is not None:
                gap = max(0, int(round((now_s - self._last_frame_host_s) * self._requested.frame_rate_hz)) - 1)
                self._stats.frames_lost_to_reconnect += gap
                self._stats.last_reconnect_gap_frames = gap
            self._gap_pending = False
            self._session_base = sdk_id
            self._session_offset = self._next_frame_id + gap
        elif sdk_id > self._last_sdk_id + 1:
            self._stats.dropped_frames += sdk_id - self._last_sdk_id - 1
        self._last_sdk_id = sdk_id
        frame_id = self._session_offset + (sdk_id - self._session_base)
        self._next_frame_id = frame_id + 1
        self._last_frame_host_s = now_s
        return frame_id

    # ------------------------------------------------------------------ recovery
    def reconnect(self) -> None:
        """Recover a lost camera: tear down, UpdateCameras, find it by serial, Init, re-apply.

        Raises DeviceLost if it is still absent (call again later, with back-off).
        The frame-ID gap is reported on the first frame afterwards.
        """
        with self._lock:
            self._require_open()
            was_streaming = self._streaming
            serial = self._info.serial if self._info is not None else self._wanted_serial
            self._detach()
            self._lost = True
            self._call("System.UpdateCameras", self._system.UpdateCameras)
            try:
                self._attach(serial)
                if self._requested is not None:
                    self._guarded("re-applying settings", lambda: self._apply(self._requested))
            except BaseException:
                self._detach()
                self._lost = True
                raise
            self._streaming = False
            self._stats.reconnects += 1
            self._gap_pending = True
            self._session_base = None
            if was_streaming:
                self.start()
