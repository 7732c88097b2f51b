"""``CameraPtr`` (lifecycle, node maps, QuickSpin attributes, streaming, event handlers) and ``CameraList``."""

from __future__ import annotations

import math
from typing import Any, Iterator

from .bus import BUS, Handle, sync_world_loss
from .constants import (
    EVENT_TIMEOUT_INFINITE,
    SPINNAKER_ERR_ABORT,
    SPINNAKER_ERR_ERROR,
    SPINNAKER_ERR_INVALID_PARAMETER,
    SPINNAKER_ERR_NOT_INITIALIZED,
    SPINNAKER_ERR_RESOURCE_IN_USE,
    SPINNAKER_ERR_TIMEOUT,
)
from .device import FakeDevice
from .errors import SpinnakerException
from .handlers import DeviceEventHandler, ImageEventHandler, dispatch_device_events, start_pump, stop_pump
from .images import ImagePtr
from .nodemaps import build_genicam_nodemap, build_tl_device_nodemap, build_tl_stream_nodemap
from .nodes import _NodeMap
from .quickspin import QuickNodes, quick_node


class CameraPtr:
    """A reference to one camera (like the SDK's shared pointer).

    ``IsValid()``: by default False once the camera is unplugged (``isvalid_tracks_presence``); the real
    SDK documents IsValid as "the pointer is not null" and FLIR material does not settle whether an
    unplug makes it False, so ``fake_pyspin.set_isvalid_semantics("pointer")`` makes it stay True.
    """

    def __init__(self, device: FakeDevice | None) -> None:
        self._handle = Handle(device)
        BUS.live_cameras.add(self)

    # identity ---------------------------------------------------------------------------
    def IsValid(self) -> bool:  # noqa: N802
        device = self._handle.device
        if device is None:
            return False
        sync_world_loss(device)
        if not getattr(BUS, "isvalid_tracks_presence", True):
            return True
        return self._handle.is_valid()

    def GetUniqueID(self) -> str:  # noqa: N802
        self._handle.check_present()
        return f"fake-{self._handle.device.serial}"

    def _dev(self) -> FakeDevice:
        self._handle.check_present()
        return self._handle.device

    def _need_init(self) -> FakeDevice:
        device = self._dev()
        if not device.initialised:
            raise SpinnakerException("Camera is not initialized", SPINNAKER_ERR_NOT_INITIALIZED)
        return device

    # QuickSpin ---------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name == "TLDevice":
            return QuickNodes(lambda: build_tl_device_nodemap(self._handle), "the TL device node map")
        if name == "TLStream":
            return QuickNodes(lambda: build_tl_stream_nodemap(self._handle), "the TL stream node map")
        if self._handle.device is None:
            raise AttributeError(f"invalid camera pointer has no node {name!r}")
        return quick_node(build_genicam_nodemap(self._handle), name, "the camera's GenICam node map")

    # lifecycle --------------------------------------------------------------------------
    def Init(self) -> None:  # noqa: N802
        device = self._dev()
        with device.cond:
            if device.in_use_elsewhere:
                raise SpinnakerException("Camera is in use by another process", SPINNAKER_ERR_RESOURCE_IN_USE)
            device.initialised = True

    def DeInit(self) -> None:  # noqa: N802
        """Refused while streaming (-1004, as the SDK: "Can't de-initialize camera. Camera is still streaming")."""
        device = self._dev()
        with device.cond:
            if device.streaming:
                raise SpinnakerException("Can't de-initialize camera. Camera is still streaming.", SPINNAKER_ERR_RESOURCE_IN_USE)
            device.initialised = False

    def IsInitialized(self) -> bool:  # noqa: N802
        return self._handle.is_valid() and self._handle.device.initialised

    def IsStreaming(self) -> bool:  # noqa: N802
        return self._handle.is_valid() and self._handle.device.streaming

    def GetTLDeviceNodeMap(self) -> _NodeMap:  # noqa: N802
        self._dev()
        return build_tl_device_nodemap(self._handle)

    def GetTLStreamNodeMap(self) -> _NodeMap:  # noqa: N802
        self._dev()
        return build_tl_stream_nodemap(self._handle)

    def GetNodeMap(self) -> _NodeMap:  # noqa: N802
        self._need_init()
        return build_genicam_nodemap(self._handle)

    # event handlers ---------------------------------------------------------------------
    def RegisterEventHandler(self, handler: Any, eventName: str | None = None) -> None:  # noqa: N802,N803
        """Register an ImageEventHandler, or a DeviceEventHandler for all events or one (``"EventExposureEnd"``)."""
        device = self._need_init()
        with device.cond:
            if isinstance(handler, ImageEventHandler):
                if eventName is not None:
                    raise SpinnakerException("An image event handler takes no event name", SPINNAKER_ERR_INVALID_PARAMETER)
                device.image_handlers.append(handler)
            elif isinstance(handler, DeviceEventHandler):
                device.device_handlers.append((handler, eventName))
            else:
                raise SpinnakerException(f"{type(handler).__name__} is not an event handler of this camera",
                                         SPINNAKER_ERR_INVALID_PARAMETER)
        start_pump(device)

    def UnregisterEventHandler(self, handler: Any) -> None:  # noqa: N802
        device = self._dev()
        with device.cond:
            if handler in device.image_handlers:
                device.image_handlers.remove(handler)
                return
            for entry in list(device.device_handlers):
                if entry[0] is handler:
                    device.device_handlers.remove(entry)
                    return
        raise SpinnakerException("Event handler is not registered", SPINNAKER_ERR_INVALID_PARAMETER)

    RegisterEvent = RegisterEventHandler  # Spinnaker 1.x names  # noqa: N815
    UnregisterEvent = UnregisterEventHandler  # noqa: N815

    # streaming --------------------------------------------------------------------------
    def BeginAcquisition(self) -> None:  # noqa: N802
        device = self._need_init()
        with device.cond:
            if device.streaming:
                raise SpinnakerException("Camera is already streaming", SPINNAKER_ERR_RESOURCE_IN_USE)
            device.begin()
            device.log.append(("BeginAcquisition", True))
        start_pump(device)

    def EndAcquisition(self) -> None:  # noqa: N802
        device = self._need_init()
        with device.cond:
            if not device.streaming:
                raise SpinnakerException("Camera is not started", SPINNAKER_ERR_ERROR)
            device.end()
            device.log.append(("EndAcquisition", True))
        stop_pump(device)

    def GetNextImage(self, grabTimeout: int = EVENT_TIMEOUT_INFINITE, streamIndex: int = 0) -> ImagePtr:  # noqa: N802,N803
        """Next image; blocks up to ``grabTimeout`` ms (camera clock), then raises -1011."""
        device = self._need_init()
        try:
            return self._wait_for_image(device, grabTimeout)
        finally:
            dispatch_device_events(device)

    def _wait_for_image(self, device: FakeDevice, timeout_ms: int | None) -> ImagePtr:
        with device.cond:
            if not device.streaming:
                raise SpinnakerException("Camera is not started", SPINNAKER_ERR_ERROR)
            infinite = timeout_ms is None or timeout_ms >= EVENT_TIMEOUT_INFINITE
            deadline_s = math.inf if infinite else device.clock.now_s() + timeout_ms / 1000.0
            if device.pending_errors:
                code = device.pending_errors.popleft()
                raise SpinnakerException(f"Injected grab error {code}", code)
            while True:
                sync_world_loss(device)
                self._handle.check_present()
                if not device.streaming:
                    raise SpinnakerException("Acquisition was ended while waiting for an image", SPINNAKER_ERR_ABORT)
                device.advance()
                if device.queue:
                    return device.render(*device.take())
                now_s = device.clock.now_s()
                if now_s >= deadline_s:
                    raise SpinnakerException("Failed waiting for EventData on NEW_BUFFER_DATA event", SPINNAKER_ERR_TIMEOUT)
                wait_s = max(0.0, min(device.next_frame_time_s(), deadline_s) - now_s) / max(device.clock.speed, 1e-9)
                device.cond.wait(min(max(wait_s, 1e-4), 0.05))


class CameraList:
    """The cameras found by ``System.GetCameras()``; holds references until ``Clear()``."""

    def __init__(self, devices: list[FakeDevice]) -> None:
        self._cams: list[CameraPtr] = [CameraPtr(d) for d in devices]

    def GetSize(self) -> int:  # noqa: N802
        return len(self._cams)

    def __len__(self) -> int:
        return len(self._cams)

    def __iter__(self) -> Iterator[CameraPtr]:
        return iter(list(self._cams))

    def __getitem__(self, index: int) -> CameraPtr:
        return self.GetByIndex(index)

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
