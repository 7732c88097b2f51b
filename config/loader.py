"""Load and validate TOML configuration files.

``load_config(None)`` gives the packaged ``config/simulated.toml`` (works from a
non-editable install). Every error is a :class:`ConfigError` with one line that
names the file, the key and what is allowed.
"""

from __future__ import annotations

import math
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pydantic
import tomli_w

from operascope.config.schema import RigConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PRESETS = ("simulated", "emulated", "rig.example")


class ConfigError(ValueError):
    """A configuration file is missing or invalid. The message is one line for the user
    (line breaks and other unprintable characters, e.g. from a key name, are escaped)."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


def _one_line(text: str) -> str:
    """``text`` with every unprintable character (line breaks included) as its escape sequence."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _shown(value: Any, limit: int = 80) -> str:
    """repr of a bad value, shortened to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + " ...)"


def preset_path(name: str) -> Path:
    """Path of a packaged preset (``simulated``, ``emulated``, ``rig.example``)."""
    return Path(str(resources.files("operascope.config").joinpath(f"{name}.toml")))


def _describe_error(err: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"] if not isinstance(p, int) or True)
    msg = err["msg"]
    ctx = err.get("ctx") or {}
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return f"unknown key '{key}'"
    if kind == "missing":
        return f"missing key '{key}'"
    if kind.startswith("greater_than") or kind.startswith("less_than"):
        return f"'{key}' = {_shown(err.get('input'))}: {msg}"
    if kind == "literal_error":
        return f"'{key}' = {_shown(err.get('input'))}: allowed values are {ctx.get('expected', '')}"
    if kind == "union_tag_invalid":
        return f"'{key}': driver {_shown(ctx.get('tag'))} is not known; allowed: {ctx.get('expected_tags')}"
    return f"'{key}' = {_shown(err.get('input'))}: {msg}"


def _first_non_finite(value: Any, key: str) -> tuple[str, float] | None:
    """(key path, value) of the first NaN or infinite float inside ``value``, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return key, value
    if isinstance(value, dict):
        items = ((f"{key}.{k}" if key else str(k), v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{key}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for sub_key, sub_value in items:
        found = _first_non_finite(sub_value, sub_key)
        if found is not None:
            return found
    return None


def parse_config(data: dict[str, Any], source: str = "<config>") -> RigConfig:
    """Validate a parsed TOML mapping; raise ConfigError naming ``source`` and the key.

    TOML allows ``nan`` and ``inf``; no setting of the rig means either, so they are refused.
    """
    non_finite = _first_non_finite(data, "")
    if non_finite is not None:
        key, value = non_finite
        raise ConfigError(f"{source}: '{key}' = {value!r}: must be a finite number")
    try:
        return RigConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"{source}: {_describe_error(first)}{suffix}") from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RigConfig:
    """Load ``path`` (default: the packaged simulated rig) and apply nested ``overrides``."""
    file = preset_path("simulated") if path is None else Path(path)
    if not file.is_file():
        raise ConfigError(f"{file}: config file not found (presets: {', '.join(PRESETS)} in the config/ folder)")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{file}: config file cannot be read ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    if overrides:
        data = merge(data, overrides)
    return parse_config(data, str(file))


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into a copy of ``base``."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def to_toml(config: RigConfig) -> str:
    """The validated configuration as TOML text (for the run file's /entry/config)."""
    return tomli_w.dumps(config.model_dump(mode="json", exclude_none=True))
