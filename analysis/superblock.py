"""The HDF5 superblock (versions 2 and 3, the ones SWMR files use), read and patched without HDF5 tools.

Layout (HDF5 File Format Specification, "Superblock Format Version 2 and 3"): signature (8 bytes),
version (1), size of offsets (1), size of lengths (1), file consistency flags (1), base address,
superblock extension address, end-of-file address, root group object header address (each "size of
offsets" bytes, little-endian), then a Jenkins lookup3 checksum of every byte before it.

``h5clear -s`` clears the consistency flags (bit 0: open for writing, bit 2: SWMR writing) that a writer
killed before closing leaves set, so that HDF5 refuses a normal open. :func:`clear_status_flags` does the
same by rewriting that one byte and the checksum; it first checks that the stored checksum matches its own
computation of the original bytes, so a file it does not understand is never modified.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SIGNATURE = b"\x89HDF\r\n\x1a\n"
FLAG_WRITE_ACCESS, FLAG_SWMR_WRITE = 0x01, 0x04
_BASES = (0, 512, 1024, 2048, 4096)
_MASK = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = (a - c) & _MASK; a ^= _rot(c, 4); c = (c + b) & _MASK
    b = (b - a) & _MASK; b ^= _rot(a, 6); a = (a + c) & _MASK
    c = (c - b) & _MASK; c ^= _rot(b, 8); b = (b + a) & _MASK
    a = (a - c) & _MASK; a ^= _rot(c, 16); c = (c + b) & _MASK
    b = (b - a) & _MASK; b ^= _rot(a, 19); a = (a + c) & _MASK
    c = (c - b) & _MASK; c ^= _rot(b, 4); b = (b + a) & _MASK
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    c ^= b; c = (c - _rot(b, 14)) & _MASK
    a ^= c; a = (a - _rot(c, 11)) & _MASK
    b ^= a; b = (b - _rot(a, 25)) & _MASK
    c ^= b; c = (c - _rot(b, 16)) & _MASK
    a ^= c; a = (a - _rot(c, 4)) & _MASK
    b ^= a; b = (b - _rot(a, 14)) & _MASK
    c ^= b; c = (c - _rot(b, 24)) & _MASK
    return c


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` (the checksum HDF5 metadata uses), byte-wise version."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _MASK
    pos = 0
    while length - pos > 12:
        w = struct.unpack_from("<3I", data, pos)
        a, b, c = _mix((a + w[0]) & _MASK, (b + w[1]) & _MASK, (c + w[2]) & _MASK)
        pos += 12
    tail = data[pos:]
    if not tail:
        return c
    w = struct.unpack("<3I", tail + b"\0" * (12 - len(tail)))
    return _final((a + w[0]) & _MASK, (b + w[1]) & _MASK, (c + w[2]) & _MASK)


@dataclass(frozen=True)
class Superblock:
    """The fields of a v2/v3 superblock that repair needs."""

    offset: int               # where the superblock starts in the file
    version: int
    flags: int
    eof: int                  # end-of-file address (relative to the base address)
    base: int

    @property
    def left_open(self) -> bool:
        return bool(self.flags & (FLAG_WRITE_ACCESS | FLAG_SWMR_WRITE))


def _layout(version: int, size_of_offsets: int) -> int:
    """Bytes covered by the checksum."""
    return 12 + 4 * size_of_offsets


def read_superblock(path: str | Path) -> Superblock:
    """The v2/v3 superblock of ``path``; ValueError naming what is wrong otherwise."""
    with open(path, "rb") as fh:
        for offset in _BASES:
            fh.seek(offset)
            head = fh.read(64)
            if head[:8] != SIGNATURE:
                continue
            version, size_of_offsets = head[8], head[9]
            if version not in (2, 3) or size_of_offsets != 8:
                raise ValueError(f"{path}: HDF5 superblock version {version} (offsets {size_of_offsets} bytes); "
                                 "only versions 2/3 with 8-byte offsets (files written for SWMR) can be repaired")
            n = _layout(version, size_of_offsets)
            stored = struct.unpack_from("<I", head, n)[0]
            if lookup3(head[:n]) != stored:
                raise ValueError(f"{path}: HDF5 superblock checksum does not match; the file is damaged beyond "
                                 "what repair handles")
            base, _ext, eof = struct.unpack_from("<3Q", head, 12)
            return Superblock(offset, version, head[11], eof, base)
    raise ValueError(f"{path}: no HDF5 signature found; not an HDF5 file")


def clear_status_flags(path: str | Path) -> Superblock:
    """Clear the "open for writing"/"SWMR writing" flags (as ``h5clear -s``); returns the old superblock."""
    sb = read_superblock(path)
    if not sb.left_open:
        return sb
    with open(path, "r+b") as fh:
        fh.seek(sb.offset)
        n = _layout(sb.version, 8)
        head = bytearray(fh.read(n))
        head[11] = 0
        fh.seek(sb.offset)
        fh.write(bytes(head) + struct.pack("<I", lookup3(bytes(head))))
        fh.flush()
    log.info("%s: superblock status flags 0x%02x cleared", path, sb.flags)
    return sb
