"""The electrochemistry protocol kinds (no imports: the CLI's ``--help`` lists them without numpy)."""

from __future__ import annotations

import enum


class ProtocolKind(str, enum.Enum):
    """A protocol the engine can run (the values are stored in run files and given on the CLI)."""

    OCV = "ocv"
    CHARGE = "charge"
    DISCHARGE = "discharge"
    CYCLE = "cycle"
    GITT = "gitt"

    def __str__(self) -> str:
        return self.value


PROTOCOL_KINDS: tuple[str, ...] = tuple(kind.value for kind in ProtocolKind)
