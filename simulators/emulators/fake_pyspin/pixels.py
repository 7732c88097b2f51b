"""Pixel packing of the camera's formats and ``Image.Save`` file writers (PGM, PNG, BMP, raw; JPEG/TIFF via Pillow)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from .constants import SPINNAKER_ERR_INVALID_PARAMETER, SPINNAKER_ERR_NOT_IMPLEMENTED
from .errors import SpinnakerException

def pack_pixels(counts: np.ndarray, pixel_format: str) -> np.ndarray:
    """Encode 12-bit counts (h, w) into the buffer layout of ``pixel_format``.

    Mono16 is MSB-aligned (counts << 4); Mono8 keeps the top 8 bits; Mono12Packed is the
    IIDC layout (B0 = P0[11:4], B1 = P1[3:0]<<4 | P0[3:0], B2 = P1[11:4]); Mono12p is the
    PFNC layout (B0 = P0[7:0], B1 = P1[3:0]<<4 | P0[11:8], B2 = P1[11:4]).
    """
    c = np.clip(counts, 0, 4095).astype(np.uint16)
    if pixel_format == "Mono16":
        return (c << 4).astype(np.uint16)
    if pixel_format == "Mono8":
        return (c >> 4).astype(np.uint8)
    p0, p1 = c[:, 0::2], c[:, 1::2]
    out = np.empty((c.shape[0], c.shape[1] // 2, 3), dtype=np.uint8)
    if pixel_format == "Mono12Packed":
        out[..., 0] = p0 >> 4
        out[..., 1] = ((p1 & 0xF) << 4) | (p0 & 0xF)
        out[..., 2] = p1 >> 4
    elif pixel_format == "Mono12p":
        out[..., 0] = p0 & 0xFF
        out[..., 1] = ((p1 & 0xF) << 4) | (p0 >> 8)
        out[..., 2] = p1 >> 4
    else:
        raise ValueError(f"unknown pixel format {pixel_format!r}")
    return out.reshape(c.shape[0], -1)


def unpack_pixels(buffer: np.ndarray, pixel_format: str, width: int) -> np.ndarray:
    """Inverse of :func:`pack_pixels`: 12-bit counts (h, w) as uint16."""
    if pixel_format == "Mono16":
        return (buffer >> 4).astype(np.uint16)
    if pixel_format == "Mono8":
        return buffer.astype(np.uint16) << 4
    b = buffer.reshape(buffer.shape[0], width // 2, 3).astype(np.uint16)
    out = np.empty((buffer.shape[0], width), dtype=np.uint16)
    if pixel_format == "Mono12Packed":
        out[:, 0::2] = (b[..., 0] << 4) | (b[..., 1] & 0xF)
    elif pixel_format == "Mono12p":
        out[:, 0::2] = b[..., 0] | ((b[..., 1] & 0xF) << 8)
    else:
        raise ValueError(f"unknown pixel format {pixel_format!r}")
    out[:, 1::2] = (b[..., 2] << 4) | (b[..., 1] >> 4)
    return out


SAVE_FORMATS = ("pgm", "png", "bmp", "raw", "jpg", "jpeg", "tif", "tiff")


def _png_bytes(pixels: np.ndarray) -> bytes:
    """A greyscale PNG (8- or 16-bit) of ``pixels`` (h, w)."""
    depth = 16 if pixels.dtype == np.uint16 else 8
    rows = pixels.astype(">u2" if depth == 16 else np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    height, width = pixels.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def _bmp_bytes(pixels8: np.ndarray) -> bytes:
    """An 8-bit greyscale BMP (bottom-up rows padded to 4 bytes, grey palette)."""
    height, width = pixels8.shape
    stride = (width + 3) // 4 * 4
    rows = np.zeros((height, stride), dtype=np.uint8)
    rows[:, :width] = pixels8
    palette = bytes(b for i in range(256) for b in (i, i, i, 0))
    offset = 14 + 40 + len(palette)
    data = rows[::-1].tobytes()
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 0, len(data), 2835, 2835, 256, 0)
    return struct.pack("<2sIHHI", b"BM", offset + len(data), 0, 0, offset) + info + palette + data


def save_image(path: str, pixels: np.ndarray, file_format: str | None = None) -> None:
    """Write ``pixels`` (uint8 or uint16, h x w) to ``path``; the format comes from ``file_format`` or the suffix.

    16-bit data keeps 16 bits in PGM, PNG, TIFF and raw; BMP and JPEG get the top 8 bits.
    """
    kind = (file_format or Path(str(path)).suffix.lstrip(".")).lower()
    if kind not in SAVE_FORMATS:
        raise SpinnakerException(f"Cannot save image as {kind!r}: use one of {', '.join(SAVE_FORMATS)}",
                                 SPINNAKER_ERR_INVALID_PARAMETER)
    pixels8 = pixels if pixels.dtype == np.uint8 else (pixels >> 8).astype(np.uint8)
    if kind == "pgm":
        max_value = 255 if pixels.dtype == np.uint8 else 65535
        body = pixels.astype(np.uint8 if max_value == 255 else ">u2").tobytes()
        data = f"P5\n{pixels.shape[1]} {pixels.shape[0]}\n{max_value}\n".encode() + body
    elif kind == "png":
        data = _png_bytes(pixels)
    elif kind == "bmp":
        data = _bmp_bytes(pixels8)
    elif kind == "raw":
        data = pixels.tobytes()
    else:
        try:
            from PIL import Image as PilImage
        except ImportError:
            raise SpinnakerException(f"Saving {kind!r} needs Pillow (installed with matplotlib); pgm, png, bmp, raw do not",
                                     SPINNAKER_ERR_NOT_IMPLEMENTED) from None
        picture = PilImage.fromarray(pixels8 if kind in ("jpg", "jpeg") else pixels)
        picture.save(str(path), format="JPEG" if kind in ("jpg", "jpeg") else "TIFF")
        return
    Path(str(path)).write_bytes(data)
