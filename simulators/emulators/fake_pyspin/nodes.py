"""GenICam nodes, node maps and the typed node pointers (``CFloatPtr``, ``CCategoryPtr`` ...) of the fake PySpin.

A node belongs to a node map bound to one camera handle (or to the system / an interface); reads and writes
are checked against the camera's state: present, initialised (GenICam map), streaming (locked nodes), and
the node's own condition (e.g. ``ExposureTime`` only writable with ``ExposureAuto`` Off).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from .constants import (
    GENICAM_ERR_ACCESS_DENIED,
    GENICAM_ERR_DYNAMIC_CAST,
    GENICAM_ERR_INVALID_ARGUMENT,
    GENICAM_ERR_OUT_OF_RANGE,
    INTERFACE_OF_KIND,
    NA,
    NI,
    RO,
    RW,
    SPINNAKER_ERR_NOT_AVAILABLE,
    SPINNAKER_ERR_NOT_INITIALIZED,
    WO,
    intfIEnumEntry,
)
from .errors import SpinnakerException


class _Always:
    """Owner stand-in for node maps not tied to a camera (system, interface): always present."""

    cond = threading.RLock()
    initialised = True
    streaming = False
    log: list = []

    def check_present(self) -> None:
        return None

    def is_valid(self) -> bool:
        return True

    @property
    def device(self) -> "_Always":
        return self

    def notify_all(self) -> None:
        return None


ALWAYS = _Always()


@dataclass
class _EnumEntry:
    name: str
    value: int
    node_name: str = ""

    kind = "enumentry"

    def GetValue(self) -> int:  # noqa: N802
        return self.value

    def GetSymbolic(self) -> str:  # noqa: N802
        return self.name

    def GetName(self) -> str:  # noqa: N802
        return f"EnumEntry_{self.node_name}_{self.name}" if self.node_name else f"EnumEntry_{self.name}"

    def GetDisplayName(self) -> str:  # noqa: N802
        return self.name

    def GetPrincipalInterfaceType(self) -> int:  # noqa: N802
        return intfIEnumEntry

    def ToString(self) -> str:  # noqa: N802
        return self.name

    def available(self) -> bool:
        return True


class _Node:
    """One GenICam node. ``kind``: float, integer, boolean, string, enumeration, command or category."""

    def __init__(self, owner: "_NodeMap", name: str, kind: str, *, get: Callable[[], Any] | None = None,
                 set: Callable[[Any], None] | None = None,  # noqa: A002
                 vmin: Callable[[], float] | None = None, vmax: Callable[[], float] | None = None, inc: int = 1,
                 entries: list[_EnumEntry] | None = None, writable_if: Callable[[], bool] = lambda: True,
                 available_if: Callable[[], bool] = lambda: True, locked_while_streaming: bool = False,
                 execute: Callable[[], None] | None = None, features: list[str] | None = None,
                 display_name: str | None = None, tooltip: str = "") -> None:
        self.owner = owner
        self.name = name
        self.kind = kind
        self._get = get
        self._set = set
        self._min = vmin
        self._max = vmax
        self.inc = inc
        self.entries = entries or []
        for entry in self.entries:
            entry.node_name = name
        self._writable_if = writable_if
        self._available_if = available_if
        self.locked_while_streaming = locked_while_streaming
        self._execute = execute
        self.features = features or []
        self.display_name = display_name or name
        self.tooltip = tooltip or f"{self.display_name} (fake PySpin node)"

    # INode methods (raw nodes from GetNode / GetFeatures) ------------------------------
    def GetName(self) -> str:  # noqa: N802
        return self.name

    def GetDisplayName(self) -> str:  # noqa: N802
        return self.display_name

    def GetToolTip(self) -> str:  # noqa: N802
        return self.tooltip

    def GetPrincipalInterfaceType(self) -> int:  # noqa: N802
        return INTERFACE_OF_KIND[self.kind]

    # access -------------------------------------------------------------------------
    def _device(self) -> Any:
        return self.owner.handle.device

    def check_present(self) -> None:
        self.owner.handle.check_present()
        if self.owner.needs_init and not self._device().initialised:
            raise SpinnakerException(f"Camera is not initialized; cannot access node {self.name}", SPINNAKER_ERR_NOT_INITIALIZED)
        if not self._available_if():
            raise SpinnakerException(f"Node {self.name} is not available now", GENICAM_ERR_ACCESS_DENIED)

    def available(self) -> bool:
        reachable = self.owner.handle.is_valid() and (not self.owner.needs_init or self._device().initialised)
        return reachable and bool(self._available_if())

    def readable(self) -> bool:
        return self.available()

    def writable(self) -> bool:
        if not self.available() or self._set is None and self._execute is None:
            return False
        if self.locked_while_streaming and self._device().streaming:
            return False
        return bool(self._writable_if())

    def access_mode(self) -> int:
        if not self.owner.handle.is_valid() or self.owner.needs_init and not self._device().initialised:
            return NI
        if not self.available():
            return NA
        if self.kind == "command":
            return WO if self.writable() else NA
        return RW if self.writable() else RO

    def read(self) -> Any:
        with self._device().cond:
            self.check_present()
            if self._get is None:
                raise SpinnakerException(f"Node {self.name} has no value", GENICAM_ERR_ACCESS_DENIED)
            return self._get()

    def write(self, value: Any) -> None:
        device = self._device()
        with device.cond:
            self.check_present()
            if self.locked_while_streaming and device.streaming:
                raise SpinnakerException(f"Node {self.name} is not writable while the camera is streaming", GENICAM_ERR_ACCESS_DENIED)
            if self._set is None or not self._writable_if():
                raise SpinnakerException(f"Node {self.name} is not writable now", GENICAM_ERR_ACCESS_DENIED)
            if self.kind in ("float", "integer"):
                low, high = self._min(), self._max()
                if not (low <= value <= high):
                    raise SpinnakerException(f"Value {value} of node {self.name} is out of range [{low}, {high}]", GENICAM_ERR_OUT_OF_RANGE)
                if self.kind == "integer" and (value - low) % self.inc:
                    raise SpinnakerException(f"Value {value} of node {self.name} is not a multiple of the increment {self.inc}",
                                             GENICAM_ERR_OUT_OF_RANGE)
            self._set(value)
            device.log.append((self.name, self._get() if self._get is not None else value))
            device.notify_all()

    def limit(self, which: str) -> float:
        with self._device().cond:
            self.check_present()
            return (self._min if which == "min" else self._max)()

    def to_string(self) -> str:
        if self.kind == "command":
            return ""
        if self.kind == "category":
            return ", ".join(self.features)
        value = self.read()
        if self.kind == "boolean":
            return "1" if value else "0"
        return str(value)


class _NodeMap:
    """A node map bound to one handle; ``GetNode`` returns ``None`` for absent nodes (as PySpin does)."""

    def __init__(self, handle: Any, needs_init: bool) -> None:
        self.handle = handle
        self.needs_init = needs_init
        self.nodes: dict[str, _Node] = {}

    def add(self, name: str, kind: str, **kw: Any) -> None:
        self.nodes[name] = _Node(self, name, kind, **kw)

    def category(self, name: str, features: list[str]) -> None:
        """A category node listing ``features`` that exist in this map."""
        self.nodes[name] = _Node(self, name, "category", features=[f for f in features if f in self.nodes])

    def GetNode(self, name: str) -> _Node | None:  # noqa: N802
        return self.nodes.get(name)

    def GetNodes(self) -> list[_Node]:  # noqa: N802
        return list(self.nodes.values())


def _unwrap(node: Any) -> Any:
    return node._node if isinstance(node, _Ptr) else node


class _Ptr:
    """Base of the node pointers; casting a node of another type raises -2008 (as GenApi's dynamic cast)."""

    _kind: str | None = None

    def __init__(self, node: Any = None) -> None:
        node = _unwrap(node)
        if node is not None and self._kind is not None and node.kind != self._kind:
            raise SpinnakerException(f"Node {node.GetName() if isinstance(node, _EnumEntry) else node.name} is a "
                                     f"{node.kind} node, not {self._kind}", GENICAM_ERR_DYNAMIC_CAST)
        self._node = node

    def _need(self) -> Any:
        if self._node is None:
            raise SpinnakerException("Node pointer is NULL (node not available)", SPINNAKER_ERR_NOT_AVAILABLE)
        return self._node

    def IsValid(self) -> bool:  # noqa: N802
        return self._node is not None

    def GetName(self) -> str:  # noqa: N802
        node = self._need()
        return node.GetName() if isinstance(node, _EnumEntry) else node.name

    def GetDisplayName(self) -> str:  # noqa: N802
        node = self._need()
        return node.GetDisplayName() if isinstance(node, _EnumEntry) else node.display_name

    def GetToolTip(self) -> str:  # noqa: N802
        node = self._need()
        return node.name if isinstance(node, _EnumEntry) else node.tooltip

    def GetDescription(self) -> str:  # noqa: N802
        return self.GetToolTip()

    def GetPrincipalInterfaceType(self) -> int:  # noqa: N802
        node = self._need()
        return node.GetPrincipalInterfaceType() if isinstance(node, _EnumEntry) else INTERFACE_OF_KIND[node.kind]

    def GetAccessMode(self) -> int:  # noqa: N802
        node = self._node
        if node is None:
            return NI
        return RO if isinstance(node, _EnumEntry) else node.access_mode()

    def ToString(self) -> str:  # noqa: N802
        node = self._need()
        return node.ToString() if isinstance(node, _EnumEntry) else node.to_string()


class CNodePtr(_Ptr):
    """Untyped node pointer."""


class CValuePtr(_Ptr):
    """Untyped value pointer (``ToString``)."""


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

    def GetUnit(self) -> str:  # noqa: N802
        return ""


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
            node.check_present()
            if not node.writable():
                raise SpinnakerException(f"Command {node.name} is not executable now", GENICAM_ERR_ACCESS_DENIED)
            node._execute()
            node._device().log.append((node.name, True))

    def IsDone(self) -> bool:  # noqa: N802
        return True


class CCategoryPtr(_Ptr):
    _kind = "category"

    def GetFeatures(self) -> list[_Node]:  # noqa: N802
        node = self._need()
        return [node.owner.nodes[name] for name in node.features]


class CEnumEntryPtr(_Ptr):
    _kind = "enumentry"

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

    def GetEntry(self, value: int) -> _EnumEntry | None:  # noqa: N802
        return next((e for e in self._need().entries if e.value == value), None)

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
    node = _unwrap(node)
    return node is not None and node.available()


def IsReadable(node: Any) -> bool:  # noqa: N802
    node = _unwrap(node)
    if node is None:
        return False
    return True if isinstance(node, _EnumEntry) else node.readable()


def IsWritable(node: Any) -> bool:  # noqa: N802
    node = _unwrap(node)
    if node is None or isinstance(node, _EnumEntry):
        return False
    return node.writable()


def IsImplemented(node: Any) -> bool:  # noqa: N802
    return _unwrap(node) is not None
