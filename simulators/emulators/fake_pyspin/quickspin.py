"""QuickSpin: nodes as attributes (``cam.ExposureTime``, ``cam.TLDevice.DeviceSerialNumber``, ``cam.TLStream...``).

Each attribute is a typed node pointer of the named node; enumeration attributes take and return the
integer constants (``cam.ExposureAuto.SetValue(PySpin.ExposureAuto_Off)``), as in the real binding.
"""

from __future__ import annotations

from typing import Any, Callable

from .constants import GENICAM_ERR_INVALID_ARGUMENT
from .errors import SpinnakerException
from .nodes import CBooleanPtr, CCategoryPtr, CCommandPtr, CEnumerationPtr, CFloatPtr, CIntegerPtr, CStringPtr, _NodeMap


class QuickEnumeration(CEnumerationPtr):
    """An enumeration attribute: ``GetValue``/``SetValue`` use the integer entry constants."""

    def GetValue(self) -> int:  # noqa: N802
        return self.GetIntValue()

    def SetValue(self, value: Any) -> None:  # noqa: N802
        if isinstance(value, str):
            entry = self.GetEntryByName(value)
            if entry is None:
                raise SpinnakerException(f"{value!r} is not an entry of node {self.GetName()}", GENICAM_ERR_INVALID_ARGUMENT)
            value = entry.GetValue()
        self.SetIntValue(int(value))


_POINTER_OF_KIND = {"float": CFloatPtr, "integer": CIntegerPtr, "boolean": CBooleanPtr, "string": CStringPtr,
                    "command": CCommandPtr, "category": CCategoryPtr, "enumeration": QuickEnumeration}


class QuickNodes:
    """Attribute access to the nodes of one node map (built on demand by ``build``)."""

    def __init__(self, build: Callable[[], _NodeMap], what: str) -> None:
        self._build = build
        self._what = what

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        node = self._build().GetNode(name)
        if node is None:
            raise AttributeError(f"{self._what} has no node {name!r}")
        return _POINTER_OF_KIND[node.kind](node)


def quick_node(nodemap: _NodeMap, name: str, what: str) -> Any:
    """The QuickSpin pointer for ``name`` in ``nodemap``; AttributeError if the map has no such node."""
    node = nodemap.GetNode(name)
    if node is None:
        raise AttributeError(f"{what} has no node {name!r}")
    return _POINTER_OF_KIND[node.kind](node)
