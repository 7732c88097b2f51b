"""``System`` (the process-global instance), interfaces and the release rules.

Release rules (checked against FLIR material): ``ReleaseInstance`` raises -1004 "Can't clear a camera
because something still holds a reference to the camera" while a CameraPtr is alive (GitHub reports of
PySpin users quote this message). Cameras left initialised but no longer referenced are de-initialised
by the release (the SDK cleans them up; FLIR's examples say the system "will do so itself" if not
released). FLIR's Enumeration example notes that unreleased resources and still-registered events throw
at release: the emulator refuses unreleased images, registered handlers and live interface pointers
(the exact codes for those are unconfirmed; -1004 is used).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from .bus import BUS, sync_world_loss
from .camera import CameraList
from .constants import SPINNAKER_ERR_INVALID_HANDLE, SPINNAKER_ERR_INVALID_PARAMETER, SPINNAKER_ERR_RESOURCE_IN_USE
from .errors import SpinnakerException
from .handlers import InterfaceEventHandler, stop_pump
from .nodemaps import build_interface_nodemap, build_system_nodemap
from .nodes import _NodeMap
from .quickspin import QuickNodes

INTERFACE_ID = "fake-usb3-0"
INTERFACE_NAME = "FLIR USB3 Vision interface (fake)"


@dataclass(frozen=True)
class LibraryVersion:
    major: int = 4
    minor: int = 0
    type: int = 0
    build: int = 0


def _check_system(system: "System") -> None:
    if BUS.system is not system:
        raise SpinnakerException("System instance was released", SPINNAKER_ERR_INVALID_HANDLE)


def _update_cameras() -> bool:
    before = [d.serial for d in BUS.present_devices()]
    for device in list(BUS.devices.values()):
        sync_world_loss(device, allow_return=True)
    return before != [d.serial for d in BUS.present_devices()]


def _register(handler: Any) -> None:
    if not isinstance(handler, InterfaceEventHandler):
        raise SpinnakerException(f"{type(handler).__name__} is not an InterfaceEventHandler", SPINNAKER_ERR_INVALID_PARAMETER)
    with BUS.lock:
        BUS.handlers.append(handler)


def _unregister(handler: Any) -> None:
    with BUS.lock:
        if handler not in BUS.handlers:
            raise SpinnakerException("Event handler is not registered", SPINNAKER_ERR_INVALID_PARAMETER)
        BUS.handlers.remove(handler)


class InterfacePtr:
    """The (single, fake) USB3 interface every camera is attached to."""

    def __init__(self) -> None:
        BUS.live_interfaces.add(self)

    def IsValid(self) -> bool:  # noqa: N802
        return BUS.system is not None

    def GetTLNodeMap(self) -> _NodeMap:  # noqa: N802
        return build_interface_nodemap(INTERFACE_ID, INTERFACE_NAME)

    @property
    def TLInterface(self) -> QuickNodes:  # noqa: N802
        return QuickNodes(self.GetTLNodeMap, "the interface node map")

    def UpdateCameras(self) -> bool:  # noqa: N802
        return _update_cameras()

    def GetCameras(self, updateCameras: bool = True) -> CameraList:  # noqa: N802,N803
        if updateCameras:
            _update_cameras()
        return CameraList(BUS.present_devices())

    def IsInUse(self) -> bool:  # noqa: N802
        return any(d.initialised for d in BUS.present_devices())

    def RegisterEventHandler(self, handler: Any) -> None:  # noqa: N802
        _register(handler)

    def UnregisterEventHandler(self, handler: Any) -> None:  # noqa: N802
        _unregister(handler)


class InterfaceList:
    """The interfaces found by ``System.GetInterfaces()``; holds references until ``Clear()``."""

    def __init__(self) -> None:
        self._interfaces = [InterfacePtr()]

    def GetSize(self) -> int:  # noqa: N802
        return len(self._interfaces)

    def __len__(self) -> int:
        return len(self._interfaces)

    def __iter__(self) -> Iterator[InterfacePtr]:
        return iter(list(self._interfaces))

    def __getitem__(self, index: int) -> InterfacePtr:
        return self.GetByIndex(index)

    def GetByIndex(self, index: int) -> InterfacePtr:  # noqa: N802
        if not 0 <= index < len(self._interfaces):
            raise SpinnakerException(f"Interface index {index} is out of range (size {len(self._interfaces)})",
                                     SPINNAKER_ERR_INVALID_PARAMETER)
        return self._interfaces[index]

    def Clear(self) -> None:  # noqa: N802
        self._interfaces.clear()


class System:
    """The process-global system object: ``System.GetInstance()`` / ``ReleaseInstance()``."""

    @staticmethod
    def GetInstance() -> "System":  # noqa: N802
        with BUS.lock:
            if BUS.system is None:
                BUS.system = System()
            BUS.system_refs += 1
            return BUS.system

    def GetLibraryVersion(self) -> LibraryVersion:  # noqa: N802
        _check_system(self)
        return LibraryVersion()

    def GetTLNodeMap(self) -> _NodeMap:  # noqa: N802
        _check_system(self)
        version = LibraryVersion()
        return build_system_nodemap(f"{version.major}.{version.minor}.{version.type}.{version.build}")

    def IsInUse(self) -> bool:  # noqa: N802
        return any(d.initialised for d in BUS.present_devices())

    def GetInterfaces(self, updateInterface: bool = True) -> InterfaceList:  # noqa: N802,N803
        _check_system(self)
        return InterfaceList()

    def GetCameras(self, updateInterfaces: bool = True, updateCameras: bool = True) -> CameraList:  # noqa: N802,N803
        _check_system(self)
        if updateCameras:
            self.UpdateCameras()
        return CameraList(BUS.present_devices())

    def UpdateCameras(self, updateInterfaces: bool = True) -> bool:  # noqa: N802,N803
        """Rescan the bus (cameras lost or returned in a simulated world are noticed here)."""
        _check_system(self)
        return _update_cameras()

    def UpdateInterfaceList(self) -> None:  # noqa: N802
        _check_system(self)

    def RegisterEventHandler(self, handler: Any) -> None:  # noqa: N802
        _check_system(self)
        _register(handler)

    def UnregisterEventHandler(self, handler: Any) -> None:  # noqa: N802
        _unregister(handler)

    def ReleaseInstance(self) -> None:  # noqa: N802
        """Drop one reference; the last one raises -1004 if references, images or handlers survive."""
        with BUS.lock:
            _check_system(self)
            if BUS.system_refs > 1:
                BUS.system_refs -= 1
                return
            found = survivors()
            if found:
                raise SpinnakerException("Can't clear a camera because something still holds a reference to the camera: "
                                         + "; ".join(found), SPINNAKER_ERR_RESOURCE_IN_USE)
            for device in BUS.devices.values():  # unreferenced cameras are cleaned up by the release
                with device.cond:
                    device.end()
                    device.initialised = False
                stop_pump(device)
            BUS.system_refs = 0
            BUS.system = None


def survivors() -> list[str]:
    """What would make ``ReleaseInstance`` fail now."""
    found = []
    live = [c for c in list(BUS.live_cameras) if c._handle.device is not None]
    if live:
        found.append(f"{len(live)} camera reference(s) still held")
    interfaces = list(BUS.live_interfaces)
    if interfaces:
        found.append(f"{len(interfaces)} interface reference(s) still held (Clear the InterfaceList, del the pointer)")
    images = sum(d.outstanding for d in BUS.devices.values())
    if images:
        found.append(f"{images} image(s) not released")
    handlers = len(BUS.handlers) + sum(len(d.image_handlers) + len(d.device_handlers) for d in BUS.devices.values())
    if handlers:
        found.append(f"{handlers} event handler(s) still registered")
    return found
