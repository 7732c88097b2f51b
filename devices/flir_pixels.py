"""Mono16 bit alignment of FLIR cameras, decided from the data.

FLIR material checked (the Spinnaker Python examples, GitHub issues of PySpin users) does not say whether a
12-bit Grasshopper3 delivers Mono16 with the ADC value in the top 12 bits (MSB-aligned, counts x 16, as
Point Grey documented for its older cameras) or in the bottom 12 bits. Unconfirmed, so the driver does not
guess: ``"msb"`` or ``"lsb"`` force one; ``"auto"`` looks at the frames: a value above 4095 proves MSB
alignment, a non-zero low nibble proves LSB alignment (MSB-aligned 12-bit data always has it zero); a frame
proving neither (every value a multiple of 16 and at most 4095) is read as MSB without locking the choice.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

MONO16_ALIGNMENTS = ("auto", "msb", "lsb")
MONO16_SHIFT_BITS = 4  # 16 - 12 ADC bits


class Mono16Alignment:
    """Turns Mono16 buffers into 12-bit counts, with a fixed or data-decided alignment."""

    def __init__(self, mode: str = "auto") -> None:
        if mode not in MONO16_ALIGNMENTS:
            raise ValueError(f"mono16_alignment must be one of {', '.join(MONO16_ALIGNMENTS)}, got {mode!r}")
        self.mode = mode
        self.decided: str | None = None if mode == "auto" else mode

    def to_counts(self, data: np.ndarray) -> np.ndarray:
        """12-bit counts (uint16) from a Mono16 buffer."""
        data = np.asarray(data, dtype=np.uint16)
        if self.decided is None:
            if int(data.max(initial=0)) > 4095:
                self._decide("msb", "a value above 4095")
            elif bool(np.any(data & 0xF)):
                self._decide("lsb", "non-zero low 4 bits")
        alignment = self.decided or "msb"
        return data >> MONO16_SHIFT_BITS if alignment == "msb" else data & 0x0FFF

    def _decide(self, alignment: str, evidence: str) -> None:
        self.decided = alignment
        log.info("Mono16 data is %s-aligned (%s in a frame)", alignment.upper(), evidence)
