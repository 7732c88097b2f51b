"""Run-file benchmark: raw 1920x1200 Mono16 frames through RunWriter, default compression vs none.

Prints (1) frames/s of the writer flat out, default filter and uncompressed, same disk, same run, and
their ratio; (2) a paced 10 Hz recording with the default filter: frames offered, frames that found the
writer queue full (drops for a camera that cannot wait), queue depth peak; (3) compression ratio.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from operascope.acquisition.raw_compression import DEFAULT, sample_frame
from operascope.acquisition.run_writer import RunSetup, RunWriter
from operascope.devices.base import Frame

SHAPE = (1200, 1920)


def _writer(path: Path, compression: str, capacity: int = 8) -> RunWriter:
    writer = RunWriter(RunSetup(path=str(path), frame_shape=SHAPE, t0_s=0.0, config_toml="", save_raw=True,
                                raw_compression=compression, queue_capacity=capacity))
    writer.start()
    return writer


def flat_out(folder: Path, compression: str, n: int = 40) -> float:
    frames = [sample_frame(SHAPE, seed=k) for k in range(4)]
    writer = _writer(folder / f"flat_{compression}.h5", compression)
    t0 = time.perf_counter()
    for k in range(n):
        writer.write_raw(Frame(frames[k % 4], k, k, k * 0.1))
    writer.close("bench")
    return n / (time.perf_counter() - t0)


def paced(folder: Path, rate_hz: float = 10.0, seconds: float = 20.0) -> tuple[int, int, int, float]:
    frames = [sample_frame(SHAPE, seed=k) for k in range(4)]
    path = folder / "paced.h5"
    writer = _writer(path, DEFAULT, capacity=16)
    n = int(rate_hz * seconds)
    full = peak = 0
    t0 = time.perf_counter()
    for k in range(n):
        time.sleep(max(0.0, t0 + k / rate_hz - time.perf_counter()))
        depth = writer.queue.counts().depth
        peak = max(peak, depth)
        full += depth >= 16
        writer.write_raw(Frame(frames[k % 4], k, k, k / rate_hz))
    writer.close("bench")
    ratio = n * frames[0].nbytes / path.stat().st_size
    return n, full, peak, ratio


def main() -> int:
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        folder = Path(tmp)
        none = flat_out(folder, "none")
        default = flat_out(folder, DEFAULT)
        print(f"writer flat out, raw {SHAPE[1]}x{SHAPE[0]} Mono16: uncompressed {none:.1f} frames/s, "
              f"{DEFAULT} {default:.1f} frames/s (ratio to uncompressed {default / none:.2f})")
        n, full, peak, ratio = paced(folder)
        print(f"10 Hz for {n / 10:.0f} s with {DEFAULT}: {n} frames, {full} found the queue full (drops), "
              f"peak queue depth {peak}; compression ratio {ratio:.2f}x")
        return 0 if full == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
