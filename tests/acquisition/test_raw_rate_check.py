"""Before recording, a raw-frame filter that cannot hold the camera's frame rate is refused (and one with
little headroom warned about): RunWriter.start() measures it on a frame of the run's shape."""

from __future__ import annotations

import pytest

from operascope.acquisition import raw_compression
from operascope.acquisition.run_lock import lock_path
from operascope.acquisition.run_writer import RunSetup, RunWriter


def _setup(path, compression: str, frame_rate_hz: float, save_raw: bool = True) -> RunSetup:
    return RunSetup(path=str(path), frame_shape=(1200, 1920), t0_s=0.0, config_toml="", save_raw=save_raw,
                    raw_compression=compression, camera={"frame_rate": frame_rate_hz, "pixel_size": 345.0},
                    sample={})


def test_a_filter_slower_than_the_camera_is_refused_before_any_file_exists(tmp_path):
    path = tmp_path / "run.h5"
    # gzip on a full 1920x1200 Mono16 frame does tens of frames/s at most; a 100 kHz camera is out of reach
    with pytest.raises(ValueError, match=r"raw compression 'gzip' holds only .* 100000 Hz"):
        RunWriter(_setup(path, "gzip", 100_000.0)).start()
    assert not path.exists() and not lock_path(path).exists()


def test_a_filter_with_little_headroom_is_warned_about_and_recording_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(raw_compression, "measure_frames_per_s", lambda name, shape, n_frames=3: (12.0, 1.9))
    events = []
    writer = RunWriter(_setup(tmp_path / "run.h5", "gzip", 10.0), on_event=lambda lvl, msg: events.append((lvl, msg)))
    writer.start()
    writer.close("done")
    assert [lvl for lvl, _ in events] == ["warning"] and "12.0 frames/s" in events[0][1]


def test_the_default_filter_holds_ten_hertz_full_frames(tmp_path):
    events = []
    writer = RunWriter(_setup(tmp_path / "run.h5", raw_compression.DEFAULT, 10.0),
                       on_event=lambda lvl, msg: events.append((lvl, msg)))
    writer.start()
    writer.close("done")
    assert events == []


def test_no_check_without_raw_frames(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("measured although no raw frames are recorded")

    monkeypatch.setattr(raw_compression, "measure_frames_per_s", boom)
    writer = RunWriter(_setup(tmp_path / "run.h5", "gzip", 100_000.0, save_raw=False))
    writer.start()
    writer.close("done")
