"""Differential image (paper Eq. 2): (I_i - I_1) / I_1 inside the particle mask."""

from __future__ import annotations

import numpy as np


def differential(frame: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(frame - reference) / reference as float32, NaN outside ``mask`` and where reference <= 0.

    ``frame`` and ``reference`` must be drift-corrected onto the same grid. ``mask`` None means
    every pixel with a positive reference.
    """
    f = np.asarray(frame, dtype=np.float32)
    r = np.asarray(reference, dtype=np.float32)
    if f.shape != r.shape or f.ndim != 2:
        raise ValueError(f"frame {f.shape} and reference {r.shape} must be 2-D images of the same shape")
    valid = np.isfinite(r) & (r > 0)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != f.shape:
            raise ValueError(f"mask {m.shape} must match the frame shape {f.shape}")
        valid &= m
    out = np.full(f.shape, np.nan, dtype=np.float32)
    np.divide(f - r, r, out=out, where=valid)
    return out


def differential_stack(frames: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """:func:`differential` of every frame of an (n, h, w) stack."""
    stack = np.asarray(frames)
    if stack.ndim != 3:
        raise ValueError(f"frames must be (n, h, w), got shape {stack.shape}")
    return np.stack([differential(f, reference, mask) for f in stack])
