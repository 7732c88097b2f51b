"""ManualControl: the engine's safety policy for operator commands (GUI, scripts, clients alike).

- A manual stage move while the focus lock is active or a recording runs is refused unless confirmed.
- A large move (``confirm_above_z_um`` in z, ``confirm_above_xy_um`` in x/y) always needs confirmation.
- z targets must lie inside the stage soft limits and the configured ``z_safe_range_um``; these are
  never overridden by a confirmation.
- Every manual move (done or refused), LED/laser change and protocol command becomes an engine event,
  so a running recording stores it in ``/entry/events``.

The Microscope owns one instance (``scope.manual``). No Qt here.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)

EmitEvent = Callable[[str, str, str], Any]
EVENT_SOURCE = "manual"
#: start of the message of a refusal that a confirmation would lift (clients may match on it)
NEEDS_CONFIRMATION = "manual move needs confirmation"


class ManualMoveRefused(RuntimeError):
    """A manual command the policy refused. ``needs_confirmation``: repeating it with
    ``confirmed=True`` would be allowed (False: never allowed, e.g. outside the safe z range)."""

    def __init__(self, message: str, needs_confirmation: bool) -> None:
        super().__init__(message)
        self.needs_confirmation = needs_confirmation


@dataclass(frozen=True)
class MoveReview:
    """What the policy says about one requested move (targets in nm)."""

    targets_nm: dict[str, float]
    from_nm: dict[str, float]
    confirm_reasons: list[str] = field(default_factory=list)
    forbidden_reasons: list[str] = field(default_factory=list)

    @property
    def allowed_without_confirmation(self) -> bool:
        return not self.confirm_reasons and not self.forbidden_reasons


def format_um(value_nm: float) -> str:
    """``value_nm`` as µm with 3 decimals and no negative zero."""
    value_um = round(value_nm / 1000.0, 3)
    return f"{value_um + 0.0:.3f} µm"


class ManualControl:
    """Checks, performs and logs operator commands.

    ``rig()`` returns the open rig (stage, led, laser); ``lock_active()`` is True while the focus
    lock loop runs; ``recording()`` while a recording runs; ``emit(level, source, message)`` records
    an event. ``config`` is a ``operascope.config.schema.ManualControlConfig``.
    """

    def __init__(self, config: Any, rig: Callable[[], Any], lock_active: Callable[[], bool],
                 recording: Callable[[], bool], emit: EmitEvent) -> None:
        self.config = config
        self._rig = rig
        self._lock_active = lock_active
        self._recording = recording
        self._emit = emit

    # ------------------------------------------------------------------ stage
    def review_move(self, targets_nm: dict[str, float]) -> MoveReview:
        """What a move to ``targets_nm`` would need (reads the current position; moves nothing)."""
        stage = self._rig().stage
        targets = {str(axis): float(value) for axis, value in targets_nm.items()}
        if not targets:
            raise ValueError("a manual move needs at least one axis target (x, y or z in nm)")
        review = MoveReview(targets, {})
        for axis, target in targets.items():
            positioner = stage.axis(axis)   # OutOfRange names the allowed axes
            if not math.isfinite(target):
                review.forbidden_reasons.append(f"{axis} target {target} is not a finite number")
                continue
            review.from_nm[axis] = float(positioner.position_nm())
            low, high = positioner.limits_nm
            if not low <= target <= high:
                review.forbidden_reasons.append(
                    f"{axis} target {format_um(target)} is outside the stage soft limits "
                    f"[{format_um(low)}, {format_um(high)}]")
        self._review_z_range(review)
        self._review_size(review)
        if self._lock_active():
            review.confirm_reasons.append("the focus lock is active")
        if self._recording():
            review.confirm_reasons.append("a recording is running")
        return review

    def _review_z_range(self, review: MoveReview) -> None:
        safe = self.config.z_safe_range_um
        z = review.targets_nm.get("z")
        if safe is None or z is None or not math.isfinite(z):
            return
        low_nm, high_nm = safe[0] * 1000.0, safe[1] * 1000.0
        if not low_nm <= z <= high_nm:
            review.forbidden_reasons.append(
                f"z target {format_um(z)} is outside the configured safe range "
                f"[{format_um(low_nm)}, {format_um(high_nm)}] (manual_control.z_safe_range_um)")

    def _review_size(self, review: MoveReview) -> None:
        for axis, target in review.targets_nm.items():
            start = review.from_nm.get(axis)
            if start is None:
                continue
            limit_um = self.config.confirm_above_z_um if axis == "z" else self.config.confirm_above_xy_um
            distance_um = abs(target - start) / 1000.0
            if distance_um > limit_um:
                review.confirm_reasons.append(f"the {axis} move of {distance_um:.3f} µm is larger than {limit_um:g} µm")

    def move_stage(self, targets_nm: dict[str, float], confirmed: bool = False, origin: str = "operator") -> MoveReview:
        """Move the stage to absolute ``targets_nm`` if the policy allows it; returns the review.

        Raises :class:`ManualMoveRefused` (the refusal is also an event). ``origin`` names the
        caller in the event (``gui``, ``script``, ...).
        """
        review = self.review_move(targets_nm)
        what = _describe_move(review)
        if review.forbidden_reasons:
            message = f"manual move refused ({origin}): {what}: " + "; ".join(review.forbidden_reasons) + "; nothing was moved"
            self._emit("warning", EVENT_SOURCE, message)
            raise ManualMoveRefused(message, needs_confirmation=False)
        if review.confirm_reasons and not confirmed:
            message = (f"{NEEDS_CONFIRMATION} ({origin}): {what}: " + "; ".join(review.confirm_reasons)
                       + "; nothing was moved (confirm to move anyway)")
            self._emit("warning", EVENT_SOURCE, message)
            raise ManualMoveRefused(message, needs_confirmation=True)
        self._rig().stage.move_to(**review.targets_nm)
        note = f" (confirmed: {'; '.join(review.confirm_reasons)})" if review.confirm_reasons else ""
        self._emit("info", EVENT_SOURCE, f"manual move ({origin}): {what}{note}")
        return review

    # ------------------------------------------------------------------ light sources
    def set_led_current(self, current_a: float, origin: str = "operator") -> None:
        """Set the LED current (A) and log it."""
        self._rig().led.set_current(float(current_a))
        self._emit("info", EVENT_SOURCE, f"LED current set to {format_si(float(current_a), 'A')} ({origin})")

    def enable_led(self, on: bool, origin: str = "operator") -> None:
        """Switch the LED on/off and log it."""
        self._rig().led.enable(bool(on))
        self._emit("info", EVENT_SOURCE, f"LED switched {'on' if on else 'off'} ({origin})")

    def set_laser_power(self, power_w: float, origin: str = "operator") -> None:
        """Set the focus-laser power (W) and log it."""
        self._rig().laser.set_power(float(power_w))
        self._emit("info", EVENT_SOURCE, f"focus laser power set to {format_si(float(power_w), 'W')} ({origin})")

    def enable_laser(self, on: bool, origin: str = "operator") -> None:
        """Switch the focus laser on/off and log it."""
        self._rig().laser.enable(bool(on))
        self._emit("info", EVENT_SOURCE, f"focus laser switched {'on' if on else 'off'} ({origin})")

    def protocol_command(self, description: str, origin: str = "operator") -> None:
        """Log a protocol command (start/stop) as an event."""
        self._emit("info", EVENT_SOURCE, f"protocol command ({origin}): {description}")


def _describe_move(review: MoveReview) -> str:
    parts = []
    for axis, target in review.targets_nm.items():
        start = review.from_nm.get(axis)
        start_text = format_um(start) if start is not None else "?"
        parts.append(f"{axis} {start_text} -> {format_um(target) if math.isfinite(target) else target}")
    return ", ".join(parts)


_SI_PREFIXES = ((1e0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))


def format_si(value: float, unit: str, digits: int = 3) -> str:
    """``value`` with an SI prefix (A -> mA, µA, nA), ``digits`` significant figures, no negative zero."""
    if not math.isfinite(value):
        return f"– {unit}"
    if value == 0:
        return f"0 {unit}"
    magnitude = abs(value)
    for scale, prefix in _SI_PREFIXES:
        if magnitude >= scale * 0.9995:
            break
    scaled = value / scale
    text = f"{scaled:.{digits}g}"
    if float(text) == 0:
        text = text.lstrip("-")
    return f"{text} {prefix}{unit}"
