"""Spinnaker plumbing of the FLIR driver: loading the binding, error codes, typed node access, counters."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from operascope.devices.base import DeviceError, MissingVendorLibrary, OutOfRange, Roi

log = logging.getLogger(__name__)

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

    def execute(self, name: str) -> None:
        """Run a command node (e.g. ``TimestampLatch``)."""
        node = getattr(self._spin, "CCommandPtr")(self._nodemap.GetNode(name))
        if not self._spin.IsAvailable(node) or not self._spin.IsWritable(node):
            raise DeviceError(self._device, f"command {name} is not available on this camera now")
        node.Execute()

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


