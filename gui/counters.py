"""Frame counters that each mean one thing (issue 20 item 4), as text for the Live panel and status bar.

- camera drops: frame-id gaps of the camera itself (a real loss; should be 0);
- frames not binned: frames of the recording that missed their bin (must be 0);
- display skipped: frames the screen did not need to show (expected, shown discreetly);
- simulator behind: a simulated camera whose rendering cannot keep up with frame rate x speed;
  shown as a warning with the speed the simulation can achieve, never as camera drops.
"""

from __future__ import annotations

from dataclasses import dataclass

#: achieved / requested frame rate below which a simulation counts as "cannot keep up"
KEEP_UP_FRACTION = 0.9


@dataclass(frozen=True)
class FrameCounters:
    """Counts at one refresh (totals since the live view started, except ``not_binned``)."""

    frames_in: int
    camera_gaps: int                 # all frame-id gaps seen by the capture thread
    simulator_behind: int = 0        # of those, ids a simulated camera lost by falling behind
    frames_shown: int = 0
    not_binned: int = 0
    recording: bool = False

    @property
    def camera_drops(self) -> int:
        return max(0, self.camera_gaps - self.simulator_behind)

    @property
    def display_skipped(self) -> int:
        return max(0, self.frames_in - self.frames_shown)


def simulator_warning(counters: FrameCounters, fps_in_wall: float, frame_rate_hz: float, speed: float) -> str:
    """'' or a warning that the simulation cannot keep up, with the speed it can achieve."""
    if counters.simulator_behind <= 0 or frame_rate_hz <= 0 or speed <= 0:
        return ""
    requested = frame_rate_hz * speed
    if fps_in_wall >= KEEP_UP_FRACTION * requested:
        return ""
    achievable = fps_in_wall / frame_rate_hz
    return (f"simulator cannot keep up: renders {fps_in_wall:.0f} frames per wall second of the {requested:.0f} "
            f"asked ({frame_rate_hz:g} fps x speed {speed:g}); achievable speed about {achievable:.1f}x "
            f"({counters.simulator_behind} frames skipped, not camera drops)")


def live_counter_text(counters: FrameCounters, fps_in: float, fps_out: float) -> str:
    """One line for the Live panel."""
    parts = [f"camera {fps_in:.1f} fps in", f"camera dropped {counters.camera_drops} (frame-id gaps)"]
    if counters.recording or counters.not_binned:
        parts.append(f"not binned {counters.not_binned}")
    parts.append(f"<span style='color:#888'>display {fps_out:.1f} fps · {counters.display_skipped} not shown</span>")
    return " · ".join(parts)


def status_counter_text(state: str, counters: FrameCounters) -> str:
    """The status bar's state and counters (camera drops only when there are any)."""
    text = f"{state} · {counters.frames_in} frames"
    if counters.camera_drops:
        text += f" · camera dropped {counters.camera_drops}"
    if counters.not_binned:
        text += f" · {counters.not_binned} not binned"
    return text
