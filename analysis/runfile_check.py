"""Fast checks of an HDF5 file before h5py opens it: a truncated file is reported at once.

HDF5 in SWMR-read mode retries unreadable metadata for minutes (Ctrl-C has no effect); reading the
superblock's end-of-file address ourselves (versions 2/3, the ones SWMR files use) and comparing it
with the file's size finds a cut copy in microseconds.
"""

from __future__ import annotations

import struct
from pathlib import Path

SIGNATURE = b"\x89HDF\r\n\x1a\n"
SMALL_DEFICIT_BYTES = 64 * 1024


def stored_eof(path: str | Path) -> int | None:
    """The end-of-file address recorded in the superblock (v2/v3), or None for other versions and for a
    file still marked open by a writer (its size may lag the address while SWMR writing goes on)."""
    with open(path, "rb") as fh:
        for base in (0, 512, 1024, 2048, 4096):
            fh.seek(base)
            head = fh.read(48)
            if head[:8] != SIGNATURE:
                continue
            version = head[8]
            if version not in (2, 3):
                return None
            size_of_offsets = head[9]
            if size_of_offsets != 8 or head[11] & 0x05:   # 0x01 open for writing, 0x04 SWMR writing
                return None
            # signature 8, version 1, offsets 1, lengths 1, flags 1, base, ext, EOF, root, checksum
            eof = struct.unpack_from("<Q", head, 12 + 2 * 8)[0]
            return base + eof
    return None


def truncation_error(path: str | Path) -> str | None:
    """A one-line reason if the file is shorter than its superblock says, else None."""
    eof = stored_eof(path)
    size = Path(path).stat().st_size
    # A writer stopped by a full disk leaves a few KB of allocated-but-unwritten space (its data was rolled
    # back to the last flush): tolerated up to SMALL_DEFICIT_BYTES; a cut copy misses far more.
    if eof is not None and eof - size > SMALL_DEFICIT_BYTES:
        return (f"{path}: truncated HDF5 file ({size} of {eof} bytes); copy it again from the original, or run "
                f"`operascope repair` on the original if the acquisition crashed")
    return None
