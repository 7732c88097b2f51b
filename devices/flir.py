"""FLIR Grasshopper3 (GS3-U3-23S6M-C) camera driver on the Spinnaker SDK (``PySpin``).

The SDK module is imported lazily in :meth:`FlirCamera.open` by name (config field
``sdk_module``: ``"PySpin"`` on the microscope PC, ``"operascope.simulators.emulators.fake_pyspin"`` for the
emulator), so a missing SDK is a :class:`MissingVendorLibrary` error, not an ImportError
at start-up. Call order, node names and error codes follow ``reference/devices.md`` §1.

Pixels are returned in a uint16 array as 12-bit ADC counts (0..4095) for Mono16 and the
Mono12 formats, and as 8-bit values (0..255) for Mono8, the same convention as the
simulated camera. Whether a 12-bit GS3 puts Mono16 data in the top or bottom 12 bits is not
stated in the FLIR material checked (examples, PySpin users' issues); ``mono16_alignment``
("auto" by default) decides it from the data (:mod:`operascope.devices.flir_pixels`). Mono12
packed formats are converted to Mono16 with ``ImageProcessor().Convert`` first, then the same.

A lost camera is detected from GetNextImage errors (-1010/-1006, -1002 while streaming),
from repeated timeouts, and only additionally from ``IsValid()``: FLIR documents IsValid as a
pointer check, so it may never turn False on unplug.

Frame IDs: ``Frame.frame_id`` continues across ``stop``/``start`` and reconnects. Within a
stream it follows the camera's block ID, so gaps are dropped frames; after a reconnect it
jumps by the number of frame periods the camera was away (:attr:`FlirCameraStats.last_reconnect_gap_frames`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
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
    OutOfRange,
    Roi,
    WallClock,
    validate_in_range,
)

from operascope.devices.flir_frames import FlirFramesMixin
from operascope.devices.flir_pixels import MONO16_ALIGNMENTS, Mono16Alignment
from operascope.devices.flir_settings import FlirSettingsMixin
from operascope.devices.flir_sdk import (  # noqa: F401 - re-exported for users of operascope.devices.flir
    BUFFER_HANDLING_MODES,
    DEVICE_LOST_ERRORS,
    ERR_INVALID_HANDLE,
    ERR_IO,
    ERR_NOT_INITIALIZED,
    ERR_RESOURCE_IN_USE,
    ERR_TIMEOUT,
    GENICAM_ERR_ACCESS_DENIED,
    GENICAM_ERR_OUT_OF_RANGE,
    GENICAM_ERR_TIMEOUT,
    INSTALL_HINT,
    FlirCameraStats,
    _NodeAccess,
    _Request,
    load_spinnaker,
)

log = logging.getLogger(__name__)


class FlirCamera(FlirSettingsMixin, FlirFramesMixin, Camera):
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
        mono16_alignment: str = "auto",
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
        if mono16_alignment not in MONO16_ALIGNMENTS:
            raise OutOfRange(self.name, f"mono16_alignment {mono16_alignment!r} is not one of {', '.join(MONO16_ALIGNMENTS)}")
        self._mono16 = Mono16Alignment(mono16_alignment)
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
                log.warning("camera treated as lost after %d grab timeouts in a row", self._consecutive_timeouts)
                raise DeviceLost(
                    self.name, f"{self._consecutive_timeouts} grab timeouts in a row ({timeout_s:g} s each); "
                    "treating the camera as lost: check the cable, then reconnect()"
                )
            raise DeviceTimeout(
                self.name, f"no frame within {timeout_s:g} s ({self._consecutive_timeouts} of {self._timeouts_lost} "
                "allowed in a row); check the frame rate and the cable"
            )
        if not isinstance(error, DeviceLost) and code == ERR_NOT_INITIALIZED:
            # streaming, yet the SDK says not initialised: the camera was reset or re-plugged under us
            self._lost = True
            error = DeviceLost(self.name, f"{error.detail}; the camera was reset or re-plugged: reconnect()")
        elif not isinstance(error, DeviceLost) and not self._camera_valid():
            self._lost = True  # IsValid may stay True on unplug (a pointer check), so it is only a second opinion
            error = DeviceLost(self.name, f"{error.detail}; the camera is no longer valid (unplugged?): reconnect()")
        if isinstance(error, DeviceLost):
            log.warning("camera lost: %s", error.detail)
        raise error

    def _release(self, image: Any) -> None:
        try:
            image.Release()
        except self._spin.SpinnakerException:
            pass  # the device is gone with its buffers; nothing left to give back

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
            log.info("camera %s reconnected (reconnect #%d)", serial, self._stats.reconnects)
            self._gap_pending = True
            self._session_base = None
            if was_streaming:
                self.start()
