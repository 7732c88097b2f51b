"""GUI with the engine in its own process vs in the GUI's process: event-loop lag and frame-to-screen latency.

Scenarios (simulated rig, speed 1, full frame 1920x1200 Mono16): 10 Hz (the experiment's rate) and 82 Hz (the
camera's maximum). "in-process" is today's standalone window; "service" runs `operascope serve` in a child
process and the window attaches to it (`operascope-gui --attach`), so frames cross the wire as the newest only.
Goals: latency median < 100 ms, lag median < 50 ms. Printed side by side, with the ratio service/in-process.

Run: .venv/bin/python benchmarks/bench_service_gui.py [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt5 import QtCore, QtWidgets  # noqa: E402

from operascope.config.loader import load_config  # noqa: E402
from operascope.gui.app import attach_factory, build_window, make_settings  # noqa: E402

LAG_TIMER_MS = 10


def _wait(app: QtWidgets.QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents(QtCore.QEventLoop.AllEvents, 10)
        time.sleep(0.001)


def _lags(app: QtWidgets.QApplication, seconds: float) -> list[float]:
    lags: list[float] = []
    expected = [time.monotonic() + LAG_TIMER_MS / 1000]
    timer = QtCore.QTimer()
    timer.setInterval(LAG_TIMER_MS)

    def tick() -> None:
        now = time.monotonic()
        lags.append(max(0.0, (now - expected[0]) * 1000))
        expected[0] = now + LAG_TIMER_MS / 1000

    timer.timeout.connect(tick)
    timer.start()
    _wait(app, seconds)
    timer.stop()
    return lags


def _measure(app, window, seconds: float) -> dict:
    deadline = time.monotonic() + 60
    while window.live_panel.frames_shown < 3 and time.monotonic() < deadline:
        _wait(app, 0.05)
    _wait(app, 1.5)
    window.live_panel.latencies_s.clear()
    shown_0, t0 = window.live_panel.frames_shown, time.monotonic()
    lags = _lags(app, seconds)
    latencies = [x * 1000 for x in window.live_panel.latencies_s]
    return {"lag_ms": statistics.median(lags) if lags else float("nan"),
            "lag_worst_ms": max(lags) if lags else float("nan"),
            "latency_ms": statistics.median(latencies) if latencies else float("nan"),
            "shown_fps": (window.live_panel.frames_shown - shown_0) / (time.monotonic() - t0)}


def _config_file(folder: Path, fps: float) -> Path:
    path = folder / f"full_{fps:g}.toml"
    path.write_text("[acquisition]\nroi = [0, 0, 1920, 1200]\nframe_rate_hz = %g\nexposure_ms = 5.0\n"
                    "[simulation]\nspeed = 1.0\n" % fps)
    return path


def in_process(app, folder: Path, fps: float, seconds: float) -> dict:
    config = load_config(_config_file(folder, fps))
    window = build_window(config, make_settings(folder / f"in_{fps:g}.ini"))
    window.show()
    try:
        return _measure(app, window, seconds)
    finally:
        window.close_without_asking()
        _wait(app, 0.5)


def attached(app, folder: Path, fps: float, seconds: float) -> dict:
    state = folder / f"state_{fps:g}"
    env = {**os.environ, "OPERASCOPE_STATE_DIR": str(state)}
    engine = subprocess.Popen([sys.executable, "-m", "operascope", "serve", "--config",
                               str(_config_file(folder, fps))], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    os.environ["OPERASCOPE_STATE_DIR"] = str(state)
    try:
        deadline = time.monotonic() + 60
        while not (state / "engine.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        json.loads((state / "engine.json").read_text())
        config = load_config(_config_file(folder, fps))
        window = build_window(config, make_settings(folder / f"svc_{fps:g}.ini"), open_microscope=attach_factory(),
                              attached=True)
        window.show()
        try:
            return _measure(app, window, seconds)
        finally:
            window.close_without_asking()
            _wait(app, 0.5)
    finally:
        engine.send_signal(signal.SIGTERM)
        engine.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = [(fps, in_process(app, folder, fps, args.seconds), attached(app, folder, fps, args.seconds))
                for fps in (10.0, 82.0)]
    print("full frame 1920x1200, simulated camera; medians (worst lag); 'svc/in' = service / in-process")
    print(f"{'rate':>6} | {'in-process lag':>16} {'latency':>8} {'shown/s':>7} | {'service lag':>14} "
          f"{'latency':>8} {'shown/s':>7} | svc/in latency")
    for fps, a, b in rows:
        print(f"{fps:5.0f}Hz | {a['lag_ms']:6.1f} ({a['lag_worst_ms']:5.0f}) ms {a['latency_ms']:6.1f}ms {a['shown_fps']:7.1f} | "
              f"{b['lag_ms']:5.1f} ({b['lag_worst_ms']:5.0f}) ms {b['latency_ms']:6.1f}ms {b['shown_fps']:7.1f} | "
              f"{b['latency_ms'] / a['latency_ms']:.2f}")
    ok = all(r['latency_ms'] < 100 and r['lag_ms'] < 50 for _, a, b in rows for r in (a, b))
    print(f"goals (latency < 100 ms, lag < 50 ms): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
