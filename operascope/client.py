"""``operascope.client.connect()``: attach a script to a running engine (``operascope serve``)."""

from operascope.service.client import EngineRefused, EngineUnreachable, RemoteEngine, connect

__all__ = ["connect", "RemoteEngine", "EngineUnreachable", "EngineRefused"]
