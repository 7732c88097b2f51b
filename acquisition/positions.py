"""Stage position lists for multi-position runs: named fields of view, loaded from and saved to TOML.

A list is a TOML file of ``[[positions]]`` tables (``name``, ``x_um``, ``y_um`` and the optional
``z_offset_um``, ``roi``, ``fiducial_xy_um``). Loading validates everything and raises ONE ``ValueError``
naming the file, the position and what is allowed; saving never overwrites a file unless told to.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_POSITIONS = 1000
_REQUIRED_KEYS = ("name", "x_um", "y_um")
_OPTIONAL_KEYS = ("z_offset_um", "roi", "fiducial_xy_um")
_ALLOWED_KEYS = _REQUIRED_KEYS + _OPTIONAL_KEYS
_COORD_LIMIT_UM = 1e6  # 1 m: anything beyond is a typo, whatever the stage


@dataclass(frozen=True)
class StagePosition:
    """One field of view: absolute stage x, y (µm), focus offset from the reference position, ROI, fiducial."""

    name: str
    x_um: float
    y_um: float
    z_offset_um: float = 0.0
    roi: tuple[int, int, int, int] | None = None
    fiducial_xy_um: tuple[float, float] | None = None


@dataclass(frozen=True)
class PositionList:
    """An ordered list of uniquely named stage positions (the order is the visiting order)."""

    positions: tuple[StagePosition, ...]

    def names(self) -> list[str]:
        return [p.name for p in self.positions]

    def __len__(self) -> int:
        return len(self.positions)

    def __iter__(self):
        return iter(self.positions)

    def by_name(self, name: str) -> StagePosition:
        for position in self.positions:
            if position.name == name:
                return position
        raise KeyError(f"no position named {name!r} (positions: {', '.join(self.names())})")


def load_positions(path: str | Path, soft_limits_um: dict[str, tuple[float, float]] | None = None) -> PositionList:
    """Read and validate a position list; ``soft_limits_um`` maps axis ``"x"``/``"y"`` to (low, high) µm."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{file}: position list not found (expected a TOML file of [[positions]] tables)")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{file}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ValueError(f"{file}: position list cannot be read ({exc.strerror or exc})") from None
    plist = positions_from_dict(data, source=str(file))
    if soft_limits_um:
        check_soft_limits(plist, soft_limits_um, source=str(file))
    log.info("loaded %d positions from %s", len(plist), file)
    return plist


def positions_from_toml(text: str, source: str = "positions") -> PositionList:
    """Validate TOML text (as :func:`positions_to_toml` writes it) into a :class:`PositionList`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from None
    return positions_from_dict(data, source=source)


def positions_from_dict(data: dict[str, Any], source: str = "positions") -> PositionList:
    """Validate parsed TOML (``{"positions": [...]}``) into a :class:`PositionList`."""
    unknown = sorted(set(data) - {"positions"})
    if unknown:
        raise ValueError(f"{source}: unknown top-level key(s) {', '.join(unknown)}; allowed: [[positions]] tables")
    entries = data.get("positions")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{source}: empty position list; add at least one [[positions]] table with name, x_um, y_um")
    if len(entries) > MAX_POSITIONS:
        raise ValueError(f"{source}: {len(entries)} positions; at most {MAX_POSITIONS} allowed")
    positions: list[StagePosition] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        position = _parse_position(entry, f"{source}: position {index + 1}")
        if position.name in seen:
            raise ValueError(f"{source}: position {index + 1} {position.name!r}: duplicate name; names must be unique")
        seen.add(position.name)
        positions.append(position)
    return PositionList(tuple(positions))


def check_soft_limits(plist: PositionList, soft_limits_um: dict[str, tuple[float, float]],
                      source: str = "positions") -> None:
    """Refuse any position whose x or y lies outside the given soft limits (µm)."""
    for position in plist.positions:
        for axis in ("x", "y"):
            if axis not in soft_limits_um:
                continue
            low, high = soft_limits_um[axis]
            value = getattr(position, f"{axis}_um")
            if not low <= value <= high:
                raise ValueError(
                    f"{source}: position {position.name!r}: {axis}_um = {value:g} is outside the stage soft limits "
                    f"[{low:g}, {high:g}] µm"
                )


def positions_to_toml(plist: PositionList) -> str:
    """The list as TOML text that :func:`load_positions` reads back to an equal list."""
    tables = []
    for p in plist.positions:
        table: dict[str, Any] = {"name": p.name, "x_um": float(p.x_um), "y_um": float(p.y_um),
                                 "z_offset_um": float(p.z_offset_um)}
        if p.roi is not None:
            table["roi"] = [int(v) for v in p.roi]
        if p.fiducial_xy_um is not None:
            table["fiducial_xy_um"] = [float(v) for v in p.fiducial_xy_um]
        tables.append(table)
    return tomli_w.dumps({"positions": tables})


def save_positions(plist: PositionList, path: str | Path, overwrite: bool = False) -> None:
    """Write ``plist`` to ``path``; refuses an existing file unless ``overwrite`` (written whole, then renamed)."""
    positions_from_dict({"positions": [_as_table(p) for p in plist.positions]}, source=str(path))
    file = Path(path)
    if file.exists() and not overwrite:
        raise FileExistsError(f"{file}: already exists; choose another name or pass overwrite=True to replace it")
    if not file.parent.is_dir():
        raise ValueError(f"{file}: folder {file.parent} does not exist")
    tmp = file.with_name(file.name + ".partial")
    tmp.write_text(positions_to_toml(plist), encoding="utf-8")
    tmp.replace(file)
    log.info("saved %d positions to %s", len(plist), file)


def _as_table(p: StagePosition) -> dict[str, Any]:
    table: dict[str, Any] = {"name": p.name, "x_um": p.x_um, "y_um": p.y_um, "z_offset_um": p.z_offset_um}
    if p.roi is not None:
        table["roi"] = list(p.roi)
    if p.fiducial_xy_um is not None:
        table["fiducial_xy_um"] = list(p.fiducial_xy_um)
    return table


def _parse_position(entry: Any, where: str) -> StagePosition:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: must be a [[positions]] table with name, x_um, y_um")
    name = entry.get("name")
    label = f"{where} {name!r}" if isinstance(name, str) else where
    unknown = sorted(set(entry) - set(_ALLOWED_KEYS))
    if unknown:
        raise ValueError(f"{label}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_ALLOWED_KEYS)}")
    missing = [key for key in _REQUIRED_KEYS if key not in entry]
    if missing:
        raise ValueError(f"{label}: missing {', '.join(missing)} (required: {', '.join(_REQUIRED_KEYS)})")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{label}: name must be 1-32 characters of letters, digits, '_' or '-'")
    x_um = _number(entry["x_um"], f"{label}: x_um", _COORD_LIMIT_UM)
    y_um = _number(entry["y_um"], f"{label}: y_um", _COORD_LIMIT_UM)
    z_offset_um = _number(entry.get("z_offset_um", 0.0), f"{label}: z_offset_um", 10_000.0)
    roi = None if entry.get("roi") is None else _roi(entry["roi"], f"{label}: roi")
    fiducial = None
    if entry.get("fiducial_xy_um") is not None:
        pair = entry["fiducial_xy_um"]
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError(f"{label}: fiducial_xy_um must be [x, y] in µm")
        fiducial = (_number(pair[0], f"{label}: fiducial_xy_um x", _COORD_LIMIT_UM),
                    _number(pair[1], f"{label}: fiducial_xy_um y", _COORD_LIMIT_UM))
    return StagePosition(name, x_um, y_um, z_offset_um, roi, fiducial)


def _number(value: Any, what: str, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value) or abs(value) > limit:
        raise ValueError(f"{what} = {value!r}: must be finite and within ±{limit:g} µm")
    return float(value)


def _roi(value: Any, what: str) -> tuple[int, int, int, int]:
    if (not isinstance(value, list) or len(value) != 4
            or any(isinstance(v, bool) or not isinstance(v, int) for v in value)):
        raise ValueError(f"{what} must be [x, y, width, height] as whole pixels, got {value!r}")
    x, y, width, height = value
    if x < 0 or y < 0 or width < 1 or height < 1:
        raise ValueError(f"{what} = {value}: x, y must be >= 0 and width, height >= 1 (pixels)")
    return (x, y, width, height)
