"""Attach to a running engine: :func:`connect` returns a :class:`RemoteEngine` with the engine's surface.

    from operascope.client import connect
    with connect() as scope:                # reads ~/.local/state/operascope/engine.json
        print(scope.status().state)
        scope.take_control()
        scope.start_recording("runs/r.h5", duration_s=600)

Requests time out (``timeout_s``, default 5 s) with :class:`EngineUnreachable` instead of hanging; the
engine's status heartbeat tells :attr:`RemoteEngine.connected` (lost after ``lost_after_s``, default 2 s).
Live frames, differentials, status and events arrive on a background thread; the newest of each is kept.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import zmq

from operascope.acquisition.worker import Worker
from operascope.service import wire
from operascope.service.state import EngineAddress, read_engine_file

log = logging.getLogger(__name__)


class EngineUnreachable(ConnectionError):
    """The engine did not answer in time (stopped, killed or busy)."""


class EngineRefused(RuntimeError):
    """The engine answered with an error (bad argument, not the controller, a device refusal)."""


class RemoteEngine:
    """The engine's surface over the wire. Thread-safe; use as a context manager or call :meth:`close`."""

    def __init__(self, address: EngineAddress, timeout_s: float = 5.0, lost_after_s: float = 2.0,
                 client_name: str = "client") -> None:
        self.address = address
        self.timeout_s = float(timeout_s)
        self.lost_after_s = float(lost_after_s)
        self.client_id = f"{client_name}-{uuid.uuid4().hex[:12]}"
        self._types = wire.engine_types()
        self._context = zmq.Context()
        self._call_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._dealer = self._new_dealer()
        self._newest: dict[str, Any] = {}
        self._newest_lock = threading.Lock()
        self._heartbeat_s = 0.0
        self._speed: float | None = None
        self._event_callbacks: list[Callable[[Any], None]] = []
        self._focus_callbacks: list[Callable[[Any], None]] = []
        self._subscriber = Worker(f"engine-subscriber-{self.client_id}", self._subscribe_loop).start()
        self._pinger = Worker(f"engine-ping-{self.client_id}", self._ping_loop).start()

    # ------------------------------------------------------------------ plumbing
    def _new_dealer(self) -> zmq.Socket:
        dealer = self._context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(self.address.command_endpoint)
        return dealer

    def call(self, method: str, **args: Any) -> Any:
        """Send one command and wait for its reply (at most ``timeout_s``)."""
        with self._call_lock:
            request_id = next(self._ids)
            body = json.dumps({"token": self.address.token, "client": self.client_id, "id": request_id,
                               "method": method, "args": args}).encode()
            self._dealer.send(body)
            deadline = time.monotonic() + self.timeout_s
            while True:
                remaining_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
                if remaining_ms == 0 or not self._dealer.poll(remaining_ms):
                    # Drop the socket so a late reply cannot be taken for the next request's.
                    self._dealer.close(0)
                    self._dealer = self._new_dealer()
                    raise EngineUnreachable(f"the engine at {self.address.command_endpoint} did not answer "
                                            f"{method!r} within {self.timeout_s:g} s")
                reply = wire.decode(self._dealer.recv_multipart(), self._types)
                if isinstance(reply, dict) and reply.get("id") == request_id:
                    break
        if not reply.get("ok"):
            raise EngineRefused(str(reply.get("error")))
        return reply.get("result")

    def _subscribe_loop(self, stop: threading.Event) -> None:
        sub = self._context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, 8)
        for topic in (b"status", b"frame", b"diff", b"event", b"focus", b"profile", b"mask"):
            sub.setsockopt(zmq.SUBSCRIBE, topic)
        sub.connect(self.address.publish_endpoint)
        try:
            while not stop.is_set():
                if not sub.poll(100):
                    continue
                topic, *frames = sub.recv_multipart()
                try:
                    data = wire.decode(frames, self._types)
                except wire.WireError as exc:
                    log.warning("malformed %s publication: %s", topic, exc)
                    continue
                name = topic.decode()
                if name in ("event", "focus"):
                    callbacks = self._event_callbacks if name == "event" else self._focus_callbacks
                    for item in ([data] if name == "event" else data):
                        for callback in list(callbacks):
                            try:
                                callback(item)
                            except Exception:  # noqa: BLE001
                                log.exception("%s callback failed", name)
                    continue
                with self._newest_lock:
                    self._newest[name] = data
                    if name == "status":
                        self._heartbeat_s = time.monotonic()
        finally:
            sub.close(0)

    def _ping_loop(self, stop: threading.Event) -> None:
        """Keep a held control lease alive while this client lives."""
        while not stop.wait(2.0):
            try:
                self.call("ping")
            except (EngineUnreachable, EngineRefused):
                pass

    def close(self) -> None:
        """Give up control (if held), stop the background threads and close the sockets. The engine goes on."""
        if self.connected and self.controller == self.client_id:
            self.timeout_s = min(self.timeout_s, 1.0)
            try:
                self.call("release_control")
            except (EngineUnreachable, EngineRefused):
                pass
        self._pinger.stop(3.0)
        self._subscriber.stop(3.0)
        with self._call_lock:
            self._dealer.close(0)
        self._context.term()

    def __enter__(self) -> "RemoteEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ connection state
    @property
    def connected(self) -> bool:
        """True while the engine's heartbeat arrives (within ``lost_after_s``)."""
        return time.monotonic() - self._heartbeat_s < self.lost_after_s

    def wait_connected(self, timeout_s: float = 5.0) -> bool:
        """Wait for the first heartbeat; True once connected."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.connected:
                return True
            time.sleep(0.02)
        return self.connected

    def _latest(self, name: str) -> Any:
        with self._newest_lock:
            return self._newest.get(name)

    # ------------------------------------------------------------------ the engine's surface
    def status(self) -> Any:
        """The engine status (from the heartbeat when fresh, else asked for)."""
        published = self._latest("status")
        if published is not None and self.connected:
            return published["status"]
        return self.call("status")

    @property
    def controller(self) -> str | None:
        published = self._latest("status")
        return published.get("controller") if published else None

    def latest_frame(self) -> Any:
        return self._latest("frame")

    def latest_differential(self) -> Any:
        return self._latest("diff")

    def subscribe_events(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        self._event_callbacks.append(callback)
        return lambda: self._event_callbacks.remove(callback) if callback in self._event_callbacks else None

    def subscribe_focus_samples(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        self._focus_callbacks.append(callback)
        return lambda: self._focus_callbacks.remove(callback) if callback in self._focus_callbacks else None

    def latest_focus_profile(self) -> tuple[Any, int]:
        published = self._latest("profile")
        return (published["profile"], published["counter"]) if published else (None, -1)

    def read_focus_profile(self) -> Any:
        return self.latest_focus_profile()[0]

    @property
    def live_mask(self) -> Any:
        return self._latest("mask")

    @property
    def is_live(self) -> bool:
        return str(self.status().state) in ("live", "recording")

    @property
    def is_recording(self) -> bool:
        return str(self.status().state) == "recording"

    def open(self) -> None:
        """Attach as the controlling client (the engine is already open; it stays open after :meth:`detach`)."""
        self.take_control()

    def detach(self) -> None:
        """Give up control and disconnect; the engine and its recording go on (same as :meth:`close`)."""
        self.close()

    def make_protocol(self, protocol: str, duration_s: float | None = None) -> Any:
        raise EngineRefused("protocols are built on the engine side from its config: call start_protocol(kind) "
                            "or start_protocol(ProtocolRequest(...))")

    def request_stop(self, reason: str = "stop requested") -> None:
        self.stop_recording(reason)

    def events(self) -> list[Any]:
        return self.call("events")

    def take_control(self, force: bool = False) -> None:
        self.call("take_control", force=force)

    def release_control(self) -> None:
        self.call("release_control")

    def start_live(self) -> None:
        self.call("start_live")

    def stop_live(self) -> None:
        self.call("stop_live")

    def start_recording(self, out_path: str | Path, bin_size: int | None = None, save_raw: bool | None = None,
                        duration_s: float | None = None, positions: Any = None, dwell_bins: int = 1) -> str:
        """``positions``: a PositionList (sent as TOML) or a TOML path on the engine's machine."""
        extra: dict[str, Any] = {}
        if positions is not None:
            from operascope.acquisition.positions import PositionList, positions_to_toml

            extra = ({"positions_toml": positions_to_toml(positions)} if isinstance(positions, PositionList)
                     else {"positions": str(positions)})
            extra["dwell_bins"] = dwell_bins
        return self.call("start_recording", out_path=str(out_path), bin_size=bin_size, save_raw=save_raw,
                         duration_s=duration_s, **extra)

    def position_statuses(self) -> list[Any]:
        """Each position's status of a multi-position recording (empty otherwise)."""
        return self.call("position_statuses")

    def stop_recording(self, reason: str = "stopped by a client") -> Any:
        return self.call("stop_recording", reason=reason)

    def start_protocol(self, protocol: Any, duration_s: float | None = None) -> str:
        """A kind ("charge", ...) with the engine's config defaults, or a ProtocolRequest (its fields are sent)."""
        if isinstance(protocol, str):
            return self.call("start_protocol", kind=protocol, duration_s=duration_s)
        import dataclasses

        return self.call("start_protocol", request=dataclasses.asdict(protocol), duration_s=duration_s)

    def stop_protocol(self) -> None:
        self.call("stop_protocol")

    def clock_s(self) -> float:
        """The rig clock now: the newest heartbeat's clock, advanced by the wall time since it arrived."""
        with self._newest_lock:
            status, arrived_s = self._newest.get("status"), self._heartbeat_s
        if status is None or not self.connected:
            return self.call("clock_s")
        return status["status"].clock_s + (time.monotonic() - arrived_s) * self.clock_speed()

    def clock_speed(self) -> float:
        if self._speed is None:
            self._speed = float(self.call("clock_speed"))
        return self._speed

    def echem_samples(self, start: int = 0) -> list[Any]:
        return self.call("echem_samples", start=start)

    def note(self, message: str, source: str = "client", level: str = "info") -> None:
        self.call("note", message=message, source=source, level=level)

    def calibrate_focus(self) -> dict:
        return self.call("calibrate_focus")

    def lock_focus(self) -> dict | None:
        return self.call("lock_focus")

    def unlock_focus(self) -> None:
        self.call("unlock_focus")

    def set_focus_offset_nm(self, offset_nm: float) -> None:
        self.call("set_focus_offset_nm", offset_nm=offset_nm)

    def move_stage_nm(self, targets_nm: dict[str, float], confirmed: bool = False, origin: str = "script") -> None:
        """A manual move; the engine refuses it during a lock or recording unless ``confirmed``."""
        self.call("move_stage_nm", targets_nm=targets_nm, confirmed=confirmed, origin=origin)

    def halt_stage(self) -> None:
        self.call("halt_stage")

    def stage_position_nm(self) -> dict[str, float]:
        return self.call("stage_position_nm")

    def set_led(self, on: bool | None = None, current_a: float | None = None, origin: str = "script") -> Any:
        return self.call("set_led", on=on, current_a=current_a)

    def set_laser(self, on: bool | None = None, power_w: float | None = None, origin: str = "script") -> Any:
        return self.call("set_laser", on=on, power_w=power_w)

    def set_fiducial(self, x_px: float, y_px: float) -> None:
        self.call("set_fiducial", x_px=x_px, y_px=y_px)

    def shutdown(self) -> None:
        """Stop the engine process (ends a recording cleanly first)."""
        self.call("shutdown")


def connect(address: EngineAddress | None = None, state_folder: Path | None = None, timeout_s: float = 5.0,
            client_name: str = "client") -> RemoteEngine:
    """Attach to the engine named by the engine file (or ``address``); waits for its first heartbeat."""
    address = address or read_engine_file(state_folder)
    engine = RemoteEngine(address, timeout_s=timeout_s, client_name=client_name)
    if not engine.wait_connected(timeout_s):
        engine.close()
        raise EngineUnreachable(f"no heartbeat from the engine at {address.publish_endpoint} within {timeout_s:g} s")
    return engine
