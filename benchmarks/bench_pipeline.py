"""Acquisition pipeline throughput, raw recording at 10 Hz and memory over 20,000 frames.

A replay camera serves pre-made uint16 frames as fast as they are read (no rendering cost), so
the figures measure the engine: capture -> bin 20 -> live differential (drift fit + shift + mask)
-> SWMR run writer. For the CPU per frame (vs the bare loop of pipeline_reference.py) the camera
never runs more than 4 frames ahead of the binner, as a camera slower than the pipeline; the
throughput figure lets it run free. The other devices are the simulated ones. Prints frames/s as a ratio to the
FLIR GS3-U3-23S6M-C's maximum full-frame rate (82 fps Mono16, 162.67 fps Mono8; devices.md 1.2).

    .venv/bin/python benchmarks/bench_pipeline.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from operascope.acquisition.microscope import Microscope  # noqa: E402
from operascope.acquisition.rig import build_rig  # noqa: E402
from operascope.devices.base import Camera, CameraSettings, DeviceInfo, Frame, Roi  # noqa: E402

from pipeline_reference import bare_loop  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

CAMERA_MAX_FPS = {"Mono16": 82.0, "Mono8": 162.67}
FULL_FRAME = (1200, 1920)


def make_frames(shape: tuple[int, int], count: int, seed: int = 0) -> list[np.ndarray]:
    """Frames of a scene (background, 3 particles, a fiducial spot) drifting 0.05 px per frame, with noise."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for k in range(count):
        dx, dy = 0.05 * k, -0.03 * k
        img = np.full(shape, 2000.0, dtype=np.float32)
        for cx, cy, r in ((0.3, 0.4, 0.06), (0.55, 0.5, 0.05), (0.75, 0.35, 0.04)):
            img += 1500.0 * (((xx - cx * w - dx) ** 2 + (yy - cy * h - dy) ** 2) < (r * min(h, w)) ** 2)
        fx, fy = 0.1 * w + dx, 0.8 * h + dy
        img += 6000.0 * np.exp(-((xx - fx) ** 2 + (yy - fy) ** 2) / (2 * 3.2 ** 2))
        img += rng.normal(0.0, 45.0, shape).astype(np.float32)
        frames.append(np.clip(img, 0, 4095).astype(np.uint16))
    return frames


class ReplayCamera(Camera):
    """Serves pre-made frames in a loop; ``rate_hz`` None = as fast as read, else paced on the wall clock.
    ``gate``: called before each frame; it may wait (a camera that never runs ahead of the pipeline)."""

    def __init__(self, frames: list[np.ndarray], rate_hz: float | None = None,
                 gate: Callable[[], None] | None = None) -> None:
        self._frames = frames
        self._rate_hz = rate_hz
        self._gate = gate
        self._open = self._streaming = False
        h, w = frames[0].shape
        self._settings = CameraSettings(2.5, rate_hz or 1000.0, Roi(0, 0, w, h), "Mono16", 0.0)
        self._k = 0

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False

    def info(self) -> DeviceInfo:
        return DeviceInfo("replay camera", "REPLAY-0", driver="benchmark")

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def sensor_shape(self):
        return self._frames[0].shape

    def configure(self, exposure_ms, frame_rate_hz, roi=None, pixel_format="Mono16", gain_db=0.0):
        return self._settings  # replays what it holds

    def settings(self):
        return self._settings

    def start(self) -> None:
        self._streaming = True
        self._t0 = time.monotonic()

    def stop(self) -> None:
        self._streaming = False

    @property
    def is_streaming(self) -> bool:
        return self._streaming

    def read(self, timeout_s: float = 1.0) -> Frame:
        if self._gate is not None:
            self._gate()
        if self._rate_hz is not None:
            wait = self._t0 + self._k / self._rate_hz - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        pixels = self._frames[self._k % len(self._frames)].copy()   # a frame owns its pixels, as a real driver's
        frame = Frame(pixels, self._k, self._k * 1000, time.monotonic())
        self._k += 1
        return frame


def microscope_with(camera: ReplayCamera, **overrides) -> Microscope:
    def factory(config):
        rig = build_rig(config)
        rig.devices["camera"] = camera
        return rig
    from operascope.acquisition.settings import config_with_overrides

    return Microscope(config_with_overrides(None, {"roi": None, **overrides}), rig_factory=factory)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def throughput(tmp: Path, n_frames: int) -> None:
    # 30 frames drifting 0.05 px each: bins of 20 cycle through different means, so the live drift
    # correction really shifts frames (the shift is skipped below 0.01 px).
    frames = make_frames(FULL_FRAME, 30)
    scope = microscope_with(ReplayCamera(frames))
    with scope:
        scope.start_recording(tmp / "throughput.h5", bin_size=20)
        t0 = time.perf_counter()
        while scope.status().frames_recorded < n_frames:
            time.sleep(0.01)
        summary = scope.stop_recording("benchmark")
        elapsed = time.perf_counter() - t0
    fps = summary.frames_in / elapsed
    with h5py.File(tmp / "throughput.h5", "r") as f:
        shifts = np.hypot(f["/entry/differential/drift_x_px"][()], f["/entry/differential/drift_y_px"][()])
    print(f"[throughput] 1920x1200 uint16, bin 20, live differential + writer: {summary.frames_in} frames in "
          f"{elapsed:.1f} s = {fps:.0f} frames/s, {summary.bins} bins, dropped {summary.frames_dropped}; "
          f"{(shifts > 0.01).sum()} bins drift-corrected (|shift| up to {shifts.max():.2f} px)")
    for fmt, max_fps in CAMERA_MAX_FPS.items():
        verdict = "keeps up" if fps >= max_fps else "BELOW camera max"
        print(f"[throughput] ratio to camera max {fmt} ({max_fps:g} fps): {fps / max_fps:.2f}  ({verdict})")


PIPELINE_THREADS = ("camera-capture", "binner", "differential", "run-writer")
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _task_user_system_s(native_id: int) -> tuple[float, float]:
    """CPU seconds (user, system) of thread ``native_id`` of this process (/proc, clock-tick resolution)."""
    with open(f"/proc/self/task/{native_id}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS_PER_S, int(fields[12]) / CLOCK_TICKS_PER_S   # utime, stime


def thread_cpu_s() -> dict[int, tuple[str, float, float]]:
    """CPU seconds so far of every live thread of this process: native id -> (name, user, system)."""
    out = {}
    for thread in threading.enumerate():
        try:
            out[thread.native_id] = (thread.name, *_task_user_system_s(thread.native_id))
        except (OSError, TypeError):   # the thread ended meanwhile
            pass
    return out


#: frames the CPU measurement lets wait in the binner queue before the replay camera waits
MAX_QUEUED_FRAMES = 4
#: writer messages (a bin is two: binned + differential) the CPU measurement lets wait before the camera waits
MAX_QUEUED_WRITES = 2


def _wait_below(q: Any, limit: int) -> None:
    """Wait while ``limit`` items wait in queue.Queue ``q`` (its not_full condition is notified by every get)."""
    with q.not_full:
        q.not_full.wait_for(lambda: len(q.queue) < limit, timeout=1.0)


def queue_gate(holder: dict, max_queued: int = MAX_QUEUED_FRAMES, max_writes: int = MAX_QUEUED_WRITES
               ) -> Callable[[], None]:
    """A camera gate: wait while ``max_queued`` frames wait for the binner of ``holder["scope"]``, or
    ``max_writes`` messages wait for its run writer.

    A camera slower than the pipeline (the rig: <= 82 fps, a bin every 0.24 s at bin 20; the pipeline
    sustains more) never fills a queue; a free-running replay would park ~2 GB of frames in the binner
    queue, each frame read back cold hundreds of frames later, and bins in the writer queue, so every
    pooled array is in use and each bin takes fresh memory, none of which the bare loop (one frame at a
    time) pays. The waits are on the queues' own conditions, so they cost the capture thread no polling.
    """
    def gate() -> None:
        pipeline = holder["scope"].pipeline if "scope" in holder else None
        if pipeline is None:
            return
        _wait_below(pipeline.binner_queue._queue, max_queued)
        session = pipeline.session
        if session is not None:
            _wait_below(session.writer.queue._queue, max_writes)
    return gate


@dataclass
class PipelineCpu:
    """CPU seconds per frame: pipeline threads (user, system; per thread total), whole process, drops."""

    user_s: float
    system_s: float
    per_thread: dict[str, float]
    process_s: float
    dropped: int

    @property
    def total_s(self) -> float:
        return self.user_s + self.system_s


def pipeline_cpu_s(tmp: Path, frames: list[np.ndarray], n_frames: int, warmup_frames: int = 100) -> PipelineCpu:
    """CPU per frame of the pipeline threads, counted over bins the writer has written; the replay camera
    keeps at most MAX_QUEUED_FRAMES frames waiting (see :func:`queue_gate`)."""
    holder: dict = {}
    scope = holder["scope"] = microscope_with(ReplayCamera(frames, gate=queue_gate(holder)))
    bin_size = 20
    with scope:
        scope.start_recording(tmp / "cpu.h5", bin_size=bin_size, overwrite=True)
        while scope.status().bins_written < warmup_frames // bin_size:
            time.sleep(0.005)
        # counted in bins the writer has put in the file: every counted frame went through all four threads
        start, bins0, process0 = thread_cpu_s(), scope.status().bins_written, time.process_time()
        last = start
        while (done := scope.status().bins_written) < bins0 + n_frames // bin_size:
            last = {**last, **thread_cpu_s()}
            time.sleep(0.01)
        last, process1 = {**last, **thread_cpu_s()}, time.process_time()
        summary = scope.stop_recording("benchmark")
    (tmp / "cpu.h5").unlink()
    per_thread: dict[str, float] = {}
    user = system = 0.0
    counted = (done - bins0) * bin_size
    for ident, (name, user_s, system_s) in last.items():
        if name in PIPELINE_THREADS:
            _, user0, system0 = start.get(ident, (name, 0.0, 0.0))
            user, system = user + (user_s - user0) / counted, system + (system_s - system0) / counted
            per_thread[name] = per_thread.get(name, 0.0) + (user_s - user0 + system_s - system0) / counted
    return PipelineCpu(user, system, per_thread, (process1 - process0) / counted, summary.frames_dropped)


def page_cache_cost_ms(tmp: Path, frame_shape: tuple[int, int] = FULL_FRAME, n_frames: int = 24) -> tuple[float, float]:
    """CPU ms to append one float32 frame to an HDF5 file on fresh page-cache memory, then on memory just freed.

    On a VM whose host takes idle guest memory back (free-page reporting, DAMON page-out), the first
    touch of a page costs the writing thread far more than the copy itself; the gap between the two
    figures is that cost, which both loops pay for every byte they write, depending on timing.
    """
    pixels = np.ones(frame_shape, dtype=np.float32)
    costs = []
    for _ in range(2):
        path = tmp / "page_cache.h5"
        with h5py.File(path, "w") as f:
            ds = f.create_dataset("frames", shape=(0, *frame_shape), maxshape=(None, *frame_shape),
                                  chunks=(1, *frame_shape), dtype="f4")
            t0 = time.thread_time()
            for k in range(n_frames):
                ds.resize(k + 1, axis=0)
                ds[k] = pixels
                f.flush()
            costs.append((time.thread_time() - t0) / n_frames * 1e3)
        path.unlink()
    return costs[0], costs[1]


def cpu_per_frame(tmp: Path, n_frames: int, rounds: int = 2) -> None:
    """CPU per frame of the pipeline threads vs the bare reference loop, same frames, same work; the two
    alternate ``rounds`` times (which goes first alternates too: the one after the other's file is deleted
    gets its warm page cache) and the least of each is compared (the machine is shared)."""
    frames = make_frames(FULL_FRAME, 30)
    time.sleep(3.0)   # memory freed by the set-up is handed back before the first round, as later
    fresh_ms, reused_ms = page_cache_cost_ms(tmp)
    print(f"[cpu] this machine: appending one 9.2 MB float32 frame to an HDF5 file costs {fresh_ms:.1f} ms CPU on "
          f"fresh page-cache memory, {reused_ms:.1f} ms on memory just freed (ratio {fresh_ms / max(reused_ms, 1e-9):.1f}); "
          "both loops write 2 such frames per bin, so compare the user-CPU ratio when these differ")
    bare: list[tuple[float, float]] = []
    piped: list[PipelineCpu] = []

    def run_bare() -> None:
        bare.append(bare_loop(frames, n_frames, tmp / "bare.h5"))
        (tmp / "bare.h5").unlink()      # neither leaves its file behind

    for k in range(rounds):
        for run in ((run_bare, lambda: piped.append(pipeline_cpu_s(tmp, frames, n_frames)))[::1 - 2 * (k % 2)]):
            run()
        p, (b_user, b_system) = piped[-1], bare[-1]
        print(f"[cpu] round {k + 1} ({'bare' if k % 2 == 0 else 'pipeline'} first): bare loop "
              f"{(b_user + b_system) * 1e3:.2f} ms per frame (user {b_user * 1e3:.2f} + system {b_system * 1e3:.2f}); "
              f"pipeline threads {p.total_s * 1e3:.2f} (user {p.user_s * 1e3:.2f} + system {p.system_s * 1e3:.2f}; "
              + ", ".join(f"{name} {sec * 1e3:.2f}" for name, sec in sorted(p.per_thread.items()))
              + f"); whole process incl. the simulated rig {p.process_s * 1e3:.2f}; dropped {p.dropped}")
    bare_total = min(u + s for u, s in bare)
    pipe_total = min(p.total_s for p in piped)
    bare_user, pipe_user = min(u for u, _ in bare), min(p.user_s for p in piped)
    print(f"[cpu] full frame, bin 20, {n_frames} frames: bare numpy + h5py loop {bare_total * 1e3:.2f} ms CPU per frame "
          f"(copy, bin, fiducial fit, slice shift, masked divide, SWMR append + flush per bin); pipeline threads "
          f"{pipe_total * 1e3:.2f} ms (least of {rounds} rounds each)")
    for what, ratio, paired in (
            ("user + system", pipe_total / bare_total, [p.total_s / (u + s) for p, (u, s) in zip(piped, bare)]),
            ("user only", pipe_user / bare_user, [p.user_s / u for p, (u, _) in zip(piped, bare)])):
        paired = sorted(paired)
        print(f"[cpu] ratio pipeline / bare loop, {what}: {ratio:.2f} least vs least (goal <= 1.2: "
              f"{'met' if ratio <= 1.2 else 'NOT met'}); round by round: " + ", ".join(f"{r:.2f}" for r in paired)
              + f", median {float(np.median(paired)):.2f}")


def raw_recording(tmp: Path, seconds: float) -> None:
    frames = make_frames(FULL_FRAME, 10, seed=1)
    camera = ReplayCamera(frames, rate_hz=10.0)
    scope = microscope_with(camera, raw_compression="lzf", save_raw=True)
    path = tmp / "raw.h5"
    depths = []
    with scope:
        try:
            scope.start_recording(path, bin_size=20)
        except ValueError as exc:   # the writer measures the raw filter first and refuses one too slow here
            print(f"[raw 10 Hz] not measured: {exc}")
            return
        t0 = time.perf_counter()
        written_at_2s = None
        while (elapsed := time.perf_counter() - t0) < seconds:
            status = scope.status()
            depths.append(status.writer_queue_depth)
            if written_at_2s is None and elapsed >= 2.0:
                written_at_2s, t2 = status.raw_written, elapsed
            time.sleep(0.05)
        status = scope.status()
        steady_fps = (status.raw_written - written_at_2s) / (elapsed - t2)
        summary = scope.stop_recording("benchmark")
    with h5py.File(path, "r") as f:
        raw = f["/entry/raw/frames"]
        stored = raw.id.get_storage_size()
        n_raw = raw.shape[0]
    raw_bytes = n_raw * FULL_FRAME[0] * FULL_FRAME[1] * 2
    late = depths[len(depths) // 2:]
    print(f"[raw 10 Hz] full frame, lzf: {n_raw} raw frames, written {steady_fps:.2f} frames/s after the first 2 s "
          f"(camera 10 fps; ratio {steady_fps / 10:.2f}), dropped {summary.frames_dropped}, every frame stored: "
          f"{n_raw == summary.frames_in}; writer queue depth max {max(depths)}, mean over the 2nd half "
          f"{np.mean(late):.1f}; lzf size ratio {raw_bytes / max(stored, 1):.2f} (noisy synthetic frames)")


def memory(tmp: Path, n_frames: int) -> None:
    frames = make_frames((240, 320), 10, seed=2)
    scope = microscope_with(ReplayCamera(frames))
    samples = []
    with scope:
        scope.start_recording(tmp / "memory.h5", bin_size=20)
        next_mark = 1000
        while True:
            done = scope.status().frames_recorded
            if done >= next_mark:
                samples.append((done, rss_mb()))
                next_mark += 1000
            if done >= n_frames:
                break
            time.sleep(0.005)
        summary = scope.stop_recording("benchmark")
    base = samples[1][1] if len(samples) > 1 else samples[0][1]
    print(f"[memory] 320x240 frames (smaller frame so 20,000 frames take seconds), bin 20: {summary.frames_in} frames, "
          f"{summary.bins} bins, dropped {summary.frames_dropped}")
    print("[memory] RSS (MB) at frames: " + ", ".join(f"{n // 1000}k: {mb:.1f}" for n, mb in samples[1::4]))
    print(f"[memory] growth from 2k to {samples[-1][0] // 1000}k frames: {samples[-1][1] - base:+.1f} MB "
          f"(ratio last/2k = {samples[-1][1] / base:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer frames (a smoke run)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        cpu_per_frame(tmp, 400 if args.quick else 1600, rounds=2 if args.quick else 3)
        throughput(tmp, 400 if args.quick else 1600)
        raw_recording(tmp, 5.0 if args.quick else 20.0)
        memory(tmp, 4000 if args.quick else 20_000)


if __name__ == "__main__":
    main()
