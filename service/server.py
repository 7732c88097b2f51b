"""The engine server: one engine, many clients, over pyzmq (ROUTER for commands, PUB for data).

Commands arrive as ``[identity, json]`` on a ROUTER socket bound to loopback; each carries the token,
the client's id, a request id, the method and its arguments. They are validated (token, command,
arguments, control) on the server thread, executed on a small pool (a long focus calibration never
blocks another client's ``status``) and answered on the server thread (zmq sockets stay on one thread).

Data goes out on a PUB socket: ``status`` (the heartbeat, ``publish_hz``), ``frame`` and ``diff`` (the
newest only — PUB drops for a slow subscriber, so clients never back-pressure the engine) and ``event``.
Oversized messages are refused by zmq itself (``MAXMSGSIZE``: the sender is disconnected).
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import zmq

from operascope.acquisition.worker import Worker
from operascope.service import wire
from operascope.service.commands import CommandError, build_commands, validate

log = logging.getLogger(__name__)

#: Largest request accepted (bytes); a larger one disconnects its sender, the engine goes on.
MAX_REQUEST_BYTES = 1 << 20
#: A controller silent this long (wall seconds) loses control (a killed GUI does not hold the rig).
CONTROL_LEASE_S = 10.0


@dataclass
class _Control:
    client: str | None = None
    seen_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class EngineServer:
    """Serves ``engine`` (a :class:`~operascope.acquisition.microscope.Microscope` or anything with its
    surface) on loopback. ``start()`` returns the endpoints; ``stop()`` ends both loops."""

    def __init__(self, engine: Any, token: str, host: str = "127.0.0.1", command_port: int = 0,
                 publish_port: int = 0, publish_hz: float = 10.0) -> None:
        if not token or len(token) < 16:
            raise ValueError("the engine token must be at least 16 characters")
        self.engine = engine
        self._token = token.encode()
        self._host = host
        self._ports = (command_port, publish_port)
        self.publish_hz = float(publish_hz)
        self._commands = build_commands()
        self._context = zmq.Context()
        self._replies: queue.Queue[tuple[bytes, list[bytes]]] = queue.Queue()
        self._events: queue.Queue[Any] = queue.Queue(maxsize=10_000)
        self._focus_samples: queue.Queue[Any] = queue.Queue(maxsize=2_000)
        self._unsubscribe_focus: Any = None
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="engine-command")
        self._control = _Control()
        self.shutdown_requested = threading.Event()
        self.record_deadline_s: float | None = None
        self.refused = 0
        self._workers: list[Worker] = []
        self._router: zmq.Socket | None = None
        self._pub: zmq.Socket | None = None
        self.command_endpoint = self.publish_endpoint = ""
        self._unsubscribe = None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> tuple[str, str]:
        """Bind both sockets and start the command and publish loops."""
        router = self._context.socket(zmq.ROUTER)
        router.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
        router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        router.setsockopt(zmq.LINGER, 0)
        pub = self._context.socket(zmq.PUB)
        pub.setsockopt(zmq.SNDHWM, 8)
        pub.setsockopt(zmq.LINGER, 0)
        self.command_endpoint = self._bind(router, self._ports[0])
        self.publish_endpoint = self._bind(pub, self._ports[1])
        self._router, self._pub = router, pub
        self._unsubscribe = self.engine.events.subscribe(self._queue_event)
        self._unsubscribe_focus = self.engine.subscribe_focus_samples(self._queue_focus_sample)
        self._workers = [Worker("engine-server", self._serve_loop).start(),
                         Worker("engine-publisher", self._publish_loop).start()]
        log.info("engine server: commands on %s, data on %s", self.command_endpoint, self.publish_endpoint)
        return self.command_endpoint, self.publish_endpoint

    def _bind(self, socket: zmq.Socket, port: int) -> str:
        if port:
            socket.bind(f"tcp://{self._host}:{port}")
        else:
            socket.bind_to_random_port(f"tcp://{self._host}")
        return socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def stop(self) -> None:
        """End both loops and close the sockets (the engine itself is left to its owner)."""
        for attribute in ("_unsubscribe", "_unsubscribe_focus"):
            unsubscribe = getattr(self, attribute)
            if unsubscribe is not None:
                unsubscribe()
                setattr(self, attribute, None)
        for worker in self._workers:
            worker.stop(5.0)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for socket in (self._router, self._pub):
            if socket is not None:
                socket.close(0)
        self._context.term()
        log.info("engine server stopped (%d requests refused)", self.refused)

    # ------------------------------------------------------------------ commands
    def _serve_loop(self, stop: threading.Event) -> None:
        router = self._router
        assert router is not None
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        while not stop.is_set():
            if poller.poll(20):
                try:
                    frames = router.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    frames = []
                if frames:
                    self._handle(frames)
            while True:
                try:
                    identity, reply = self._replies.get_nowait()
                except queue.Empty:
                    break
                try:
                    router.send_multipart([identity, *reply], zmq.NOBLOCK)
                except zmq.ZMQError as exc:  # the client went away
                    log.debug("reply dropped: %s", exc)

    def _refuse(self, identity: bytes, request_id: Any, message: str) -> None:
        self.refused += 1
        log.warning("request refused: %s", message)
        self._replies.put((identity, wire.encode({"id": request_id, "ok": False, "error": message})))

    def _handle(self, frames: list[bytes]) -> None:
        identity, body = frames[0], frames[1:]
        if len(body) != 1:
            self._refuse(identity, None, "a request is exactly one JSON frame")
            return
        try:
            request = json.loads(body[0].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._refuse(identity, None, "a request must be a JSON object")
            return
        if not isinstance(request, dict):
            self._refuse(identity, None, "a request must be a JSON object")
            return
        request_id = request.get("id") if isinstance(request.get("id"), (int, str)) else None
        token = request.get("token")
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self._token):
            self._refuse(identity, request_id, "not authorised: the engine token is missing or wrong")
            return
        client = request.get("client")
        if not isinstance(client, str) or not 0 < len(client) <= 64:
            self._refuse(identity, request_id, "a request must name its client (1-64 characters)")
            return
        try:
            command, args = validate(self._commands, request.get("method"), request.get("args"))
            method = request["method"]
            self._check_control(client, method, command.control, args)
        except CommandError as exc:
            self._refuse(identity, request_id, str(exc))
            return
        if method == "shutdown":
            self.shutdown_requested.set()
            self._replies.put((identity, wire.encode({"id": request_id, "ok": True, "result": "shutting down"})))
            return
        self._pool.submit(self._execute, identity, request_id, method, command.handler, args)

    def _check_control(self, client: str, method: str, needs_control: bool, args: dict[str, Any]) -> None:
        now = time.monotonic()
        with self._control.lock:
            current = self._control.client
            expired = current is not None and now - self._control.seen_s > CONTROL_LEASE_S
            if current == client:
                self._control.seen_s = now
            if method == "take_control":
                if current in (None, client) or expired or args.get("force"):
                    if current not in (None, client):
                        log.warning("control taken by %s from %s%s", client, current, " (lease expired)" if expired else "")
                    self._control.client, self._control.seen_s = client, now
                    return
                raise CommandError(f"another client ({current}) controls the engine; take_control(force=True) "
                                   "to take it over")
            if method == "release_control":
                if current == client:
                    self._control.client = None
                return
            if needs_control and current != client:
                raise CommandError(f"{method}: this client only observes; take control first "
                                   f"({'no client' if current is None else current} controls the engine)")

    def controller(self) -> str | None:
        """The id of the controlling client (None if nobody controls)."""
        with self._control.lock:
            return self._control.client

    def _execute(self, identity: bytes, request_id: Any, method: str, handler: Any, args: dict[str, Any]) -> None:
        log.info("command %s %s", method, args or "")
        try:
            asked_s = self.engine.status().clock_s if method == "start_recording" else 0.0
            result = handler(self.engine, **args)
            if method == "start_recording" and args.get("duration_s"):
                # armed once the recording runs (a publisher tick before that would see "live" and disarm it)
                self.record_deadline_s = asked_s + float(args["duration_s"])
            reply = wire.encode({"id": request_id, "ok": True, "result": result})
        except Exception as exc:  # noqa: BLE001 - any engine refusal goes back as one line
            log.warning("command %s failed: %s: %s", method, type(exc).__name__, exc)
            reply = wire.encode({"id": request_id, "ok": False, "error": f"{method}: {exc}"})
        self._replies.put((identity, reply))

    # ------------------------------------------------------------------ data
    def _queue_event(self, event: Any) -> None:
        try:
            self._events.put_nowait(event)
        except queue.Full:
            pass

    def _queue_focus_sample(self, sample: Any) -> None:
        try:
            self._focus_samples.put_nowait(sample)
        except queue.Full:  # a slow publisher never slows the lock loop; the newest samples win
            pass

    def _publish(self, topic: bytes, obj: Any) -> None:
        assert self._pub is not None
        try:
            self._pub.send_multipart([topic, *wire.encode(obj)], zmq.NOBLOCK)
        except zmq.Again:
            pass

    def _publish_loop(self, stop: threading.Event) -> None:
        last_frame_id: int | None = None
        last_diff: int | None = None
        last_profile = -1
        last_mask_id: int | None = None
        period_s = 1.0 / self.publish_hz
        while not stop.wait(period_s):
            try:
                status = self.engine.status()
                payload = {"status": status, "controller": self.controller(), "refused": self.refused}
                self._publish(b"status", payload)
                frame = self.engine.latest_frame()
                if frame is not None and frame.frame_id != last_frame_id:
                    last_frame_id = frame.frame_id
                    self._publish(b"frame", frame)
                diff = self.engine.latest_differential()
                if diff is not None and diff.index != last_diff:
                    last_diff = diff.index
                    self._publish(b"diff", diff)
                while True:
                    try:
                        self._publish(b"event", self._events.get_nowait())
                    except queue.Empty:
                        break
                samples = []
                while True:
                    try:
                        samples.append(self._focus_samples.get_nowait())
                    except queue.Empty:
                        break
                if samples:
                    self._publish(b"focus", samples)
                profile, counter = self.engine.latest_focus_profile()
                if profile is not None and counter != last_profile:
                    last_profile = counter
                    self._publish(b"profile", {"profile": profile, "counter": counter})
                mask = self.engine.live_mask
                if mask is not None and id(mask) != last_mask_id:
                    last_mask_id = id(mask)
                    self._publish(b"mask", mask)
                self._check_deadline(status)
            except Exception:  # noqa: BLE001 - publishing must never stop; logged
                log.exception("engine publisher: one tick failed")

    def _check_deadline(self, status: Any) -> None:
        deadline = self.record_deadline_s
        if deadline is None:
            return
        if status.state != "recording":
            self.record_deadline_s = None
        elif status.clock_s >= deadline:
            self.record_deadline_s = None
            summary = self.engine.stop_recording("duration reached")
            log.info("recording ended at its duration: %s", summary)
