"""Differential image (paper Eq. 2): (I_i - I_1) / I_1 inside the particle mask.

:func:`differential` is the one-call form. A live path that divides many frames by one reference
prepares it once with :func:`valid_reference` (the reference with NaN wherever it is not usable) and
calls :func:`differential_valid` per frame: a subtract and a divide, no per-frame mask work.
"""

from __future__ import annotations

import numpy as np


def valid_reference(reference: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``reference`` as float32 with NaN outside ``mask``, where it is not finite and where it is <= 0.

    ``mask`` None means every pixel with a positive reference.
    """
    r = np.asarray(reference, dtype=np.float32)
    if r.ndim != 2:
        raise ValueError(f"reference must be a 2-D image, got shape {r.shape}")
    valid = np.isfinite(r) & (r > 0)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != r.shape:
            raise ValueError(f"mask {m.shape} must match the frame shape {r.shape}")
        valid &= m
    return np.where(valid, r, np.float32(np.nan)).astype(np.float32, copy=False)


def differential_valid(frame: np.ndarray, reference_valid: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(frame - reference) / reference as float32, NaN wherever ``reference_valid`` (from
    :func:`valid_reference`) is NaN. ``out``: an optional float32 array of the frame's shape to fill."""
    f = np.asarray(frame, dtype=np.float32)
    if f.shape != reference_valid.shape or f.ndim != 2:
        raise ValueError(f"frame {f.shape} and reference {reference_valid.shape} must be 2-D images of the same shape")
    out = np.subtract(f, reference_valid, out=out, dtype=np.float32)
    return np.divide(out, reference_valid, out=out)


def differential(frame: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(frame - reference) / reference as float32, NaN outside ``mask`` and where reference <= 0.

    ``frame`` and ``reference`` must be drift-corrected onto the same grid. ``mask`` None means
    every pixel with a positive reference.
    """
    f = np.asarray(frame, dtype=np.float32)
    r = np.asarray(reference, dtype=np.float32)
    if f.shape != r.shape or f.ndim != 2:
        raise ValueError(f"frame {f.shape} and reference {r.shape} must be 2-D images of the same shape")
    return differential_valid(f, valid_reference(r, mask))


def differential_stack(frames: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """:func:`differential` of every frame of an (n, h, w) stack."""
    stack = np.asarray(frames)
    if stack.ndim != 3:
        raise ValueError(f"frames must be (n, h, w), got shape {stack.shape}")
    return np.stack([differential(f, reference, mask) for f in stack])
