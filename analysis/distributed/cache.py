"""Incremental analysis: the result of a chunk of bins stored under a key made of what it depends on — the
bytes of the chunk's particle windows as read from the file, the reference windows and masks, the drift of
those bins, the pixel size and the analysis settings. A run that has grown (or a study with one new run)
recomputes only chunks whose inputs changed. Entries are .npy files written atomically (temporary file,
then rename), so workers on several processes or machines may share one cache folder."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

log = logging.getLogger(__name__)

#: Drift values enter the key rounded to this (px): fits that differ only by floating-point noise share entries.
DRIFT_KEY_RESOLUTION_PX = 1e-6


#: Changes whenever the per-bin analysis changes, so results cached by an older version are not reused.
ANALYSIS_VERSION = "front_com-coverage-v1"


def chunk_key(settings: Any, pixel_size_nm: float, dx_px: np.ndarray, dy_px: np.ndarray,
              blocks: Sequence[np.ndarray], references: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> str:
    """SHA-256 hex key of everything a chunk's result depends on."""
    h = hashlib.sha256()
    h.update(ANALYSIS_VERSION.encode())
    fields = {k: v for k, v in asdict(settings).items() if k != "chunk_bins"}
    h.update(repr(sorted(fields.items())).encode())
    h.update(np.float64(pixel_size_nm).tobytes())
    for values in (dx_px, dy_px):
        h.update(np.round(np.asarray(values, float) / DRIFT_KEY_RESOLUTION_PX).astype(np.int64).tobytes())
    for block, ref, mask in zip(blocks, references, masks):
        for array in (block, ref, mask):
            a = np.ascontiguousarray(array)
            h.update(repr((a.shape, a.dtype.str)).encode())
            h.update(a.tobytes())
    return h.hexdigest()


def _entry(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / key[:2] / f"{key}.npy"


def load(cache_dir: str | Path, key: str) -> np.ndarray | None:
    """The stored result for ``key``, or None (absent or unreadable: it is then recomputed)."""
    path = _entry(cache_dir, key)
    if not path.exists():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        log.warning("cache entry %s unreadable (%s); recomputing", path, exc)
        return None


def store(cache_dir: str | Path, key: str, result: np.ndarray) -> None:
    """Store ``result`` under ``key`` atomically; a failed write only costs a recomputation later."""
    path = _entry(cache_dir, key)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            np.save(fh, result, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cache entry %s not written (%s)", path, exc)
        tmp.unlink(missing_ok=True)
