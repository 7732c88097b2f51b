"""operascope.service: the engine in its own process behind a pyzmq API, and the client that attaches to it.

- :mod:`operascope.service.wire` — how typed engine data crosses the wire (JSON + raw array frames, no pickle).
- :mod:`operascope.service.server` — :class:`EngineServer`, serving one engine to many clients.
- :mod:`operascope.service.client` — :func:`connect`, a :class:`RemoteEngine` with the engine's surface.
- :mod:`operascope.service.state` — the engine's address and token file (readable only by the user).
"""
