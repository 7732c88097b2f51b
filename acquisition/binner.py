"""Binner: averages consecutive camera frames into float32 binned frames."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from operascope.acquisition.array_pool import ArrayPool
from operascope.devices.base import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BinnedFrame:
    """Mean of ``n_frames`` camera frames.

    Times are rig-clock seconds. ``first_time_s``/``last_time_s`` are host read times of the first and
    last frame; ``host_time_s`` the mean host read time; ``frame_times_s`` each frame's exposure
    mid-time (from the camera stamps when the binner has a stamper, else its host read time) and
    ``mid_time_s`` their mean: the bin's time; ``camera_times_ns`` the frames' camera stamps. ``partial`` marks a last bin with fewer than ``bin_size``
    frames. ``dropped_in_bin`` counts frame ids missing inside the bin (gaps before its frames).
    """

    index: int
    pixels: np.ndarray
    n_frames: int
    first_frame_id: int
    last_frame_id: int
    first_time_s: float
    last_time_s: float
    partial: bool
    dropped_in_bin: int
    host_time_s: float = float("nan")
    frame_times_s: tuple[float, ...] = ()
    camera_times_ns: tuple[int, ...] = ()

    @property
    def mid_time_s(self) -> float:
        if self.frame_times_s:
            return float(np.mean(self.frame_times_s))
        return 0.5 * (self.first_time_s + self.last_time_s)


class FrameStamper(Protocol):
    """Maps camera stamps to exposure mid-times (see :class:`~operascope.acquisition.camera_clock.ExposureStamper`)."""

    def observe(self, frame: Frame) -> None: ...

    def mid_times_s(self, camera_times_ns: tuple[int, ...], host_times_s: tuple[float, ...]) -> tuple[float, ...]: ...


#: float32 holds every integer below 2**24 exactly, so sums of up to 256 uint16 frames are exact in it.
EXACT_FLOAT32_FRAMES = 256
#: bin means kept for reuse: the reference, bins queued for the differential and the writer, spares
MEAN_POOL_ARRAYS = 8
#: rows per strip when the last frame of a bin is added and the mean taken in one sweep
MEAN_STRIP_ROWS = 64


class Binner:
    """Sum frames and emit the mean (float32) every ``bin_size`` frames.

    The sum is kept in float32 while that is exact (bins of up to 256 uint16 frames, i.e. 65535 x 256
    < 2**24), else in float64. Also counts frame-id gaps between consecutive frames (dropped frames).
    """

    def __init__(self, bin_size: int, stamper: FrameStamper | None = None) -> None:
        if isinstance(bin_size, bool) or not isinstance(bin_size, (int, np.integer)) or bin_size < 1:
            raise ValueError(f"bin size must be an integer >= 1 frame, got {bin_size!r}")
        self.bin_size = int(bin_size)
        self.stamper = stamper
        self._sum_dtype = np.float32 if self.bin_size <= EXACT_FLOAT32_FRAMES else np.float64
        self.frames_in = 0
        self.frames_dropped = 0
        self.bins_out = 0
        self._last_id: int | None = None
        #: The gap this frame closed: (first missing id, how many), None when it followed its predecessor.
        self.last_gap: tuple[int, int] | None = None
        self._sum: np.ndarray | None = None
        self._mean: np.ndarray | None = None       # the complete bin's mean, made with its last frame
        self._means = ArrayPool(MEAN_POOL_ARRAYS)   # bin means reused once the writer and viewers let go
        self._reset_bin()

    def _reset_bin(self) -> None:
        """Start a new bin; the sum buffer is kept and overwritten by its first frame (no new allocation)."""
        self._count = 0
        self._first_id = self._last_bin_id = 0
        self._first_time = self._last_time = 0.0
        self._dropped_in_bin = 0
        self._host_times: list[float] = []
        self._camera_ns: list[int] = []

    def add(self, frame: Frame) -> BinnedFrame | None:
        """Add one frame; return the finished bin when it is complete, else None."""
        pixels = frame.pixels
        if self._count and pixels.shape != self._sum.shape:
            raise ValueError(f"frame {frame.frame_id} has shape {pixels.shape}; this bin holds {self._sum.shape}")
        self.last_gap: tuple[int, int] | None = None
        if self._last_id is not None and frame.frame_id > self._last_id + 1:
            gap = frame.frame_id - self._last_id - 1
            self.frames_dropped += gap
            self._dropped_in_bin += gap
            self.last_gap = (self._last_id + 1, gap)   # (first missing id, how many)
        self._last_id = frame.frame_id
        self.frames_in += 1
        if self._count == 0:
            if self._sum is None or self._sum.shape != pixels.shape:
                self._sum = np.empty(pixels.shape, dtype=self._sum_dtype)
            np.copyto(self._sum, pixels, casting="unsafe")   # the first frame starts the sum (exact, as 0 + x)
            self._first_id = frame.frame_id
            self._first_time = frame.host_time_s
        elif self._count + 1 >= self.bin_size:
            self._mean = self._add_last(pixels)
        else:
            np.add(self._sum, pixels, out=self._sum)
        self._count += 1
        self._last_bin_id = frame.frame_id
        self._last_time = frame.host_time_s
        self._host_times.append(frame.host_time_s)
        self._camera_ns.append(frame.camera_time_ns)
        if self.stamper is not None:
            self.stamper.observe(frame)
        if self._count >= self.bin_size:
            return self._emit(partial=False)
        return None

    def _add_last(self, pixels: np.ndarray) -> np.ndarray:
        """Add the bin's last frame and take the mean strip by strip, the sum's strip still in cache (the
        same two operations per pixel as adding, then dividing the whole frame: the same bits)."""
        total = self._sum
        mean = self._means.take(total.shape, np.float32)
        scale = 1.0 / (self._count + 1)
        step = MEAN_STRIP_ROWS
        for r0 in range(0, total.shape[0], step):
            strip = total[r0:r0 + step]
            np.add(strip, pixels[r0:r0 + step], out=strip)
            np.multiply(strip, scale, dtype=np.float32, out=mean[r0:r0 + step])
        return mean

    def flush(self) -> BinnedFrame | None:
        """The partial last bin (marked ``partial``), or None if no frame is pending."""
        if self._count == 0:
            return None
        return self._emit(partial=True)

    @property
    def pending(self) -> int:
        """Frames in the unfinished bin."""
        return self._count

    def _emit(self, partial: bool) -> BinnedFrame:
        assert self._sum is not None
        mean, self._mean = self._mean, None
        if mean is None:
            mean = np.multiply(self._sum, 1.0 / self._count, dtype=np.float32,
                               out=self._means.take(self._sum.shape, np.float32))
        stamper = self.stamper
        host = tuple(self._host_times)
        times = stamper.mid_times_s(tuple(self._camera_ns), host) if stamper is not None else host
        host_s = sum(host) / len(host)
        out = BinnedFrame(self.bins_out, mean, self._count, self._first_id, self._last_bin_id,
                          self._first_time, self._last_time, partial, self._dropped_in_bin, host_s, times,
                          tuple(self._camera_ns))
        self.bins_out += 1
        self._reset_bin()
        return out
