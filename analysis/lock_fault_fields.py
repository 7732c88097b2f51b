"""``summary.json``'s focus-lock fault fields, read from a run file's events.

A recording with the lock on ends with a ``focus_lock`` event ``lock fault summary {json}``
(acquisition/focus_hooks.py): number of faults, unlocked rig seconds, first fault time and message,
signal losses, recover re-acquisitions, window re-centrings. A file without that event (an old
file, a crash) falls back to counting the loud ``FOCUS LOCK FAULT at run time … s: …`` events; the
unlocked time is then unknown (None).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["SUMMARY_PREFIX", "lock_fault_fields"]

#: Must match acquisition/focus_hooks.LOCK_SUMMARY_PREFIX (analysis does not import the engine).
SUMMARY_PREFIX = "lock fault summary "
_LOUD = re.compile(r"FOCUS LOCK FAULT at run time ([0-9.eE+-]+) s: (.*?)(?: — |$)")


def lock_fault_fields(events: dict[str, Any] | None) -> dict[str, Any] | None:
    """The fields from the run's events table (``Run.events``); None when the lock never ran."""
    if events is None or "message" not in events:
        return None
    sources = events.get("source")
    messages = [str(m) for k, m in enumerate(events["message"])
                if sources is None or str(sources[k]) == "focus_lock"]
    for message in reversed(messages):
        if message.startswith(SUMMARY_PREFIX):
            try:
                fields = json.loads(message[len(SUMMARY_PREFIX):])
            except json.JSONDecodeError:
                log.warning("unreadable lock fault summary event: %.80s", message)
                break
            fields["source"] = "lock fault summary event"
            return fields
    loud = [m for m in (_LOUD.search(text) for text in messages) if m]
    if not loud and not messages:
        return None
    return {"n_faults": len(loud), "unlocked_s": None,
            "first_fault_s": float(loud[0].group(1)) if loud else None,
            "first_fault_message": loud[0].group(2) if loud else None,
            "source": "FOCUS LOCK FAULT events (no summary event: unlocked time unknown)"}
