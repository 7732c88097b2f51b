"""Run settings: a validated RigConfig plus flat keyword overrides (``speed=100``, ``bin_size=5``)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from operascope.config.loader import ConfigError, load_config, merge, parse_config
from operascope.config.schema import RigConfig

log = logging.getLogger(__name__)

#: Config sections whose fields may be overridden by bare name.
OVERRIDABLE_SECTIONS = ("acquisition", "focus_lock", "electrochemistry", "sample", "simulation")


def overrides_to_nested(overrides: dict[str, Any]) -> dict[str, Any]:
    """Map flat field names (and whole-section dicts) to the nested config layout.

    Raises ConfigError for a name that is no field of any overridable section.
    """
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in RigConfig.model_fields and isinstance(value, dict):
            nested = merge(nested, {key: value})
            continue
        owners = [s for s in OVERRIDABLE_SECTIONS if key in RigConfig.model_fields[s].annotation.model_fields]
        if not owners:
            raise ConfigError(f"unknown setting '{key}'; allowed: fields of the sections "
                              f"{', '.join(OVERRIDABLE_SECTIONS)} (e.g. speed, seed, bin_size, roi, exposure_ms)")
        nested = merge(nested, {owners[0]: {key: list(value) if isinstance(value, tuple) else value}})
    return nested


def config_with_overrides(config_or_path: RigConfig | str | Path | None, overrides: dict[str, Any] | None = None
                          ) -> RigConfig:
    """Load (None = the simulated rig) or take ``config_or_path`` and apply ``overrides``; validated."""
    nested = overrides_to_nested(overrides or {})
    if isinstance(config_or_path, RigConfig):
        if not nested:
            return config_or_path
        data = merge(config_or_path.model_dump(mode="json", exclude_none=True), nested)
        return parse_config(data, "<overrides>")
    return load_config(config_or_path, nested or None)


def check_bin_size(bin_size: Any) -> int:
    """``bin_size`` as int, or ValueError naming what is allowed."""
    if isinstance(bin_size, bool) or not isinstance(bin_size, int) or bin_size < 1:
        raise ValueError(f"bin size must be an integer >= 1 frame, got {bin_size!r}")
    return bin_size


def check_duration(duration_s: Any) -> None:
    """ValueError unless ``duration_s`` is None or a finite number of seconds > 0."""
    if duration_s is None:
        return
    if isinstance(duration_s, bool) or not isinstance(duration_s, (int, float)) or not (
            math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration must be a number of seconds > 0, got {duration_s!r}")
