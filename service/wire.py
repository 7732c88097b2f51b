"""How engine data crosses the wire: a JSON header plus one raw frame per numpy array.

Dataclasses travel as ``{"__dc__": name, ...fields}`` and are rebuilt only if their name is in the
receiver's registry (anything else stays a plain dict); str-Enums travel as their value; arrays as
``{"__nd__": k, "dtype": ..., "shape": ...}`` pointing at the k-th extra frame. Nothing is ever unpickled,
so a hostile peer can at worst send a dict the receiver refuses.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from pathlib import PurePath
from typing import Any, Iterable

import numpy as np

#: Largest JSON header accepted from a peer (bytes). Requests are small; replies carry arrays as frames.
MAX_HEADER_BYTES = 1 << 20
#: Array dtypes allowed on the wire.
ALLOWED_DTYPES = frozenset({"uint8", "uint16", "int32", "int64", "float32", "float64", "bool"})


class WireError(ValueError):
    """A message that cannot be decoded (malformed, oversized or of a refused type)."""


def _to_plain(obj: Any, arrays: list[np.ndarray]) -> Any:
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, enum.Enum):
        return _to_plain(obj.value, arrays)
    if isinstance(obj, np.generic):
        return _to_plain(obj.item(), arrays)
    if isinstance(obj, np.ndarray):
        array = np.ascontiguousarray(obj)
        arrays.append(array)
        return {"__nd__": len(arrays) - 1, "dtype": array.dtype.name, "shape": list(array.shape)}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        plain = {f.name: _to_plain(getattr(obj, f.name), arrays) for f in dataclasses.fields(obj)}
        plain["__dc__"] = type(obj).__name__
        return plain
    if isinstance(obj, dict):
        return {str(k): _to_plain(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v, arrays) for v in obj]
    if isinstance(obj, PurePath):
        return str(obj)
    raise TypeError(f"cannot send a {type(obj).__name__} over the engine wire")


def encode(obj: Any) -> list[bytes]:
    """``obj`` as frames: the JSON header, then each array's bytes."""
    arrays: list[np.ndarray] = []
    header = json.dumps(_to_plain(obj, arrays), separators=(",", ":"), allow_nan=False).encode()
    return [header, *(a.tobytes() for a in arrays)]


def _from_plain(obj: Any, frames: list[bytes], registry: dict[str, type]) -> Any:
    if isinstance(obj, list):
        return [_from_plain(v, frames, registry) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__nd__" in obj:
        return _array(obj, frames)
    fields = {k: _from_plain(v, frames, registry) for k, v in obj.items() if k != "__dc__"}
    kind = registry.get(obj.get("__dc__", ""))
    if kind is None:
        return fields
    names = {f.name: f for f in dataclasses.fields(kind)}
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in fields.items() if k in names}
    try:
        return kind(**values)
    except TypeError:
        return fields


def _array(spec: dict, frames: list[bytes]) -> np.ndarray:
    index, dtype, shape = spec.get("__nd__"), spec.get("dtype"), spec.get("shape")
    if not isinstance(index, int) or not 0 <= index < len(frames) or dtype not in ALLOWED_DTYPES \
            or not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise WireError("malformed array in message")
    data = frames[index]
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if len(data) != expected:
        raise WireError(f"array frame holds {len(data)} bytes, its header says {expected}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def decode(frames: Iterable[bytes], registry: dict[str, type] | None = None) -> Any:
    """Rebuild what :func:`encode` sent. Raises :class:`WireError` for anything malformed."""
    frames = [bytes(f) for f in frames]
    if not frames:
        raise WireError("empty message")
    header = frames[0]
    if len(header) > MAX_HEADER_BYTES:
        raise WireError(f"message header of {len(header)} bytes (at most {MAX_HEADER_BYTES})")
    try:
        plain = json.loads(header.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"not a JSON message ({exc.__class__.__name__})") from None
    return _from_plain(plain, frames[1:], registry or {})


def engine_types() -> dict[str, type]:
    """The dataclasses a client rebuilds from the wire (by class name)."""
    from operascope.acquisition.echem_history import EchemSample
    from operascope.acquisition.events import Event
    from operascope.acquisition.focus_control import FocusSample
    from operascope.acquisition.live_differential import DifferentialFrame
    from operascope.acquisition.queues import ConsumerCounts
    from operascope.acquisition.status import MicroscopeStatus, RunSummary
    from operascope.devices.base import Frame, LaserState, LightState

    from operascope.acquisition.position_state import PositionStatus

    kinds: list[type] = [Event, DifferentialFrame, ConsumerCounts, MicroscopeStatus, RunSummary, Frame, EchemSample,
                         LightState, LaserState, FocusSample, PositionStatus]
    return {k.__name__: k for k in kinds}
