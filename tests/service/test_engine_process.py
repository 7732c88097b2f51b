"""The engine as a service, with real processes and real kills (issue: a recording survives the window)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest
import zmq

from operascope.service.client import EngineRefused, EngineUnreachable, RemoteEngine, connect


def _wait_until(predicate, timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def _binned_frame_ids(path, swmr: bool = False) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path, "r", locking=False, swmr=swmr) as f:
        binned = f["entry/binned"] if "entry/binned" in f else f["entry/data"]
        first = np.asarray(binned["first_frame_id"][...])
        last = np.asarray(binned["last_frame_id"][...])
    return first, last


def test_a_killed_script_client_leaves_the_recording_running_to_its_end(engine_process, tmp_path):
    engine = engine_process()
    out = tmp_path / "run.h5"
    script = textwrap.dedent(f"""
        import time
        from operascope.service.client import connect
        from operascope.service.state import EngineAddress
        scope = connect(EngineAddress(**{engine.address.__dict__!r}))
        scope.take_control()
        scope.start_recording({str(out)!r}, bin_size=4, duration_s=40)
        print("recording", flush=True)
        time.sleep(60)
    """)
    client = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=engine.env)
    assert client.stdout.readline().strip() == "recording"
    client.send_signal(signal.SIGKILL)
    client.wait(10)
    with connect(engine.address, client_name="observer") as observer:
        assert observer.status().state == "recording"
        # A new client sees the state and live frames within 2 s of attaching.
        attached = time.monotonic()
        assert _wait_until(lambda: observer.latest_frame() is not None, 2.0)
        assert time.monotonic() - attached < 2.0
        assert _wait_until(lambda: observer.status().state != "recording", 60.0), "recording did not end"
    first, last = _binned_frame_ids(out)
    assert len(first) >= 30 * 4 // 4 * 0.9  # 40 s at 4 fps in bins of 4: about 40 bins
    assert np.all(first[1:] == last[:-1] + 1), "every frame of the run is in a bin (no gap)"


def test_two_clients_see_the_same_state_and_only_the_controller_acts(engine_process):
    engine = engine_process()
    with connect(engine.address, client_name="gui") as gui, connect(engine.address, client_name="script") as script:
        gui.take_control()
        assert _wait_until(lambda: script.controller == gui.client_id, 2.0)
        with pytest.raises(EngineRefused, match="only observes"):
            script.start_protocol("charge")
        with pytest.raises(EngineRefused, match="controls the engine"):
            script.take_control()
        events: list = []
        script.subscribe_events(events.append)
        gui.start_protocol("ocv", duration_s=30)
        assert _wait_until(lambda: script.status().protocol == "ocv", 3.0)
        assert gui.status().protocol == script.status().protocol == "ocv"
        assert _wait_until(lambda: any(e.source == "protocol" for e in events), 3.0)
        script.take_control(force=True)  # explicit take-over is allowed
        with pytest.raises(EngineRefused, match="only observes"):
            gui.stop_protocol()


def test_no_token_garbage_and_huge_messages_are_refused_and_the_engine_goes_on(engine_process):
    engine = engine_process()
    with connect(engine.address, client_name="watch") as watch:
        before = watch.status()
        context = zmq.Context()
        try:
            dealer = context.socket(zmq.DEALER)
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.connect(engine.address.command_endpoint)
            for body in (b'{"method": "stop_live", "client": "x", "id": 1}', b"\x00\xff garbage", os.urandom(4096),
                         b"[1, 2, 3]", b'{"token": "%s", "client": "x", "id": 2, "method": "rm -rf"}'
                         % engine.address.token.encode()):
                dealer.send(body)
                assert dealer.poll(5000), f"no reply to {body[:20]!r}"
                reply = dealer.recv_multipart()
                assert b'"ok":false' in reply[0]
            dealer.send(b"x" * (100 * 1024 * 1024))  # 100 MB: zmq drops it and disconnects the sender
            dealer.close(0)
        finally:
            context.term()
        time.sleep(1.0)
        after = watch.status()
        assert after.state == "live" and after.frames_in > before.frames_in
        assert after.frames_dropped == before.frames_dropped, "the camera stream has no gap"
        assert watch.call("ping") == "pong"


def test_a_killed_engine_is_reported_within_two_seconds_and_its_file_stays_valid(engine_process, tmp_path):
    engine = engine_process()
    out = tmp_path / "killed.h5"
    with connect(engine.address, client_name="gui", timeout_s=1.0) as gui:
        gui.take_control()
        gui.start_recording(str(out), bin_size=4)
        assert _wait_until(lambda: gui.status().bins_written >= 3, 30.0)
        engine.kill()
        killed = time.monotonic()
        assert _wait_until(lambda: not gui.connected, 2.5)
        assert time.monotonic() - killed <= 2.5
        started = time.monotonic()
        with pytest.raises(EngineUnreachable):
            gui.call("status")
        assert time.monotonic() - started < 2.0, "a call to a dead engine does not hang"
    first, last = _binned_frame_ids(out, swmr=True)  # a killed writer leaves the SWMR flag set
    assert len(first) >= 2


def test_remote_engine_needs_the_right_token(engine_process):
    engine = engine_process()
    from dataclasses import replace

    with RemoteEngine(replace(engine.address, token="0" * 64), timeout_s=2.0) as intruder:
        with pytest.raises(EngineRefused, match="not authorised"):
            intruder.call("status")


def test_a_remote_client_drives_the_focus_lock_and_the_led_and_sees_focus_samples(engine_process):
    engine = engine_process()
    with connect(engine.address, client_name="gui") as gui:
        gui.take_control()
        samples: list = []
        gui.subscribe_focus_samples(samples.append)
        light = gui.set_led(on=True)
        assert light.enabled is True
        gui.lock_focus()
        assert _wait_until(lambda: gui.status().focus_state in ("locked", "locking") and len(samples) > 5, 20.0)
        assert samples[-1].state in ("locked", "locking")
        profile, counter = gui.latest_focus_profile()
        assert profile is not None and profile.ndim == 1 and counter >= 0
        position = gui.stage_position_nm()
        assert set(position) == {"x", "y", "z"}
        gui.unlock_focus()
        assert _wait_until(lambda: gui.status().focus_state == "off", 5.0)


def test_a_killed_gui_leaves_the_recording_running_and_a_new_gui_attaches(engine_process, tmp_path):
    engine = engine_process()
    out = tmp_path / "gui_run.h5"
    with connect(engine.address, client_name="script") as script:
        script.take_control()
        script.start_recording(str(out), bin_size=4, duration_s=40)
        script.release_control()
        gui = subprocess.Popen([sys.executable, "-m", "operascope.gui", "--attach"], env=engine.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert _wait_until(lambda: (script.controller or "").startswith("gui-"), 30.0), "the GUI did not attach"
            gui.send_signal(signal.SIGKILL)
            gui.wait(10)
        finally:
            if gui.poll() is None:
                gui.kill()
        assert script.status().state == "recording"
        second = subprocess.Popen([sys.executable, "-m", "operascope.gui", "--attach", "--screenshot",
                                   str(tmp_path / "second.png"), "--quit-after", "2"], env=engine.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out_text, err_text = second.communicate(timeout=60)
        assert second.returncode == 0, err_text[-2000:]
        assert (tmp_path / "second.png").stat().st_size > 10_000
        assert _wait_until(lambda: script.status().state != "recording", 60.0)
    first, last = _binned_frame_ids(out)
    assert len(first) >= 35 and np.all(first[1:] == last[:-1] + 1), "every frame of the run is in a bin"
