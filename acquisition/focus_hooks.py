"""Glue between the Microscope and the image-based focus tools (autofocus, lock target refresh,
lock-fault reactions). The Microscope keeps only one-line hooks that call these functions, so the
tools merge onto any version of the engine.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from operascope.acquisition.autofocus import (
    AutofocusResult,
    AutofocusSettings,
    CameraFrameSource,
    FrameSource,
    LiveFrameSource,
    run_autofocus,
)

log = logging.getLogger(__name__)

__all__ = ["frame_source_for", "scope_autofocus"]


def frame_source_for(scope: Any) -> FrameSource:
    """The live view's frames while the camera streams, else the camera read directly."""
    if scope.is_live:
        return LiveFrameSource(scope.latest_frame)
    return CameraFrameSource(scope.camera)


#: Run-file event messages are stored in 512-byte fields: each result event stays below this.
EVENT_TEXT_LIMIT = 500


def result_event_texts(result: AutofocusResult) -> list[str]:
    """The autofocus result as compact JSON events (fit, fine curve, coarse curve), each < 500 chars."""
    fit = result.fit
    head = {"best_z_nm": round(result.best_z_nm, 1), "start_z_nm": round(result.start_z_nm, 1), "metric": result.metric,
            "z0_sigma_nm": round(fit.z0_sigma_nm, 2), "a": float(f"{fit.a:.5g}"), "c": float(f"{fit.c:.5g}"),
            "r2": round(fit.r2, 4), "planes": result.planes, "duration_s": round(result.duration_s, 2)}
    texts = ["autofocus fit " + json.dumps(head, separators=(",", ":"))]
    for name, z, values in (("fine", result.z_nm, result.values), ("coarse", result.coarse_z_nm, result.coarse_values)):
        if z:
            curve = {"z_nm": [round(v, 1) for v in z], "values": [float(f"{v:.4g}") for v in values]}
            texts.append(f"autofocus {name} curve " + json.dumps(curve, separators=(",", ":")))
    return [text[:EVENT_TEXT_LIMIT] for text in texts]


def scope_autofocus(scope: Any, settings: AutofocusSettings | None = None) -> AutofocusResult:
    """Autofocus the microscope's z axis; a running focus lock is released and re-engaged at best focus.

    Emits two events (source ``autofocus``): a one-line summary and the result as JSON.
    """
    lock = scope._focus_lock
    was_locked = lock is not None and lock.is_running
    if was_locked:
        lock.unlock()
    fiducial = scope.config.acquisition.fiducial_xy_px
    try:
        result = run_autofocus(scope.stage.axis("z"), scope.clock, frame_source_for(scope), settings,
                               fiducial_xy_px=tuple(fiducial) if fiducial is not None else None)
    except Exception as exc:
        scope.events.emit("error", "autofocus", f"autofocus failed: {exc}")
        if was_locked:
            lock.lock()
        raise
    scope.events.emit("info", "autofocus", result.summary())
    for text in result_event_texts(result):
        scope.events.emit("info", "autofocus", text)
    for note in result.notes:
        scope.events.emit("warning", "autofocus", note)
    if was_locked:
        lock.lock()
    return result
