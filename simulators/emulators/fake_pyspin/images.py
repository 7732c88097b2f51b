"""Images of the fake PySpin: ``ImagePtr`` (a stream buffer until ``Release``), chunk data, ``ImageProcessor``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .constants import (
    PIXEL_FORMAT_NAMES,
    SPINNAKER_ERR_INVALID_BUFFER,
    SPINNAKER_ERR_INVALID_PARAMETER,
    SPINNAKER_ERR_NOT_AVAILABLE,
    SPINNAKER_IMAGE_STATUS_NO_ERROR,
)
from .errors import SpinnakerException
from .pixels import pack_pixels, save_image, unpack_pixels


class ChunkData:
    """The chunk block appended to one image (``image.GetChunkData()``); a disabled chunk raises -1014."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = dict(values)

    def _get(self, name: str) -> Any:
        if name not in self._values:
            raise SpinnakerException(f"Chunk {name} is not enabled (ChunkSelector={name}, ChunkEnable=True)",
                                     SPINNAKER_ERR_NOT_AVAILABLE)
        return self._values[name]

    def GetFrameID(self) -> int:  # noqa: N802
        return int(self._get("FrameID"))

    def GetExposureTime(self) -> float:  # noqa: N802
        return float(self._get("ExposureTime"))

    def GetGain(self) -> float:  # noqa: N802
        return float(self._get("Gain"))

    def GetBlackLevel(self) -> float:  # noqa: N802
        return float(self._get("BlackLevel"))

    def GetWidth(self) -> int:  # noqa: N802
        return int(self._get("Width"))

    def GetHeight(self) -> int:  # noqa: N802
        return int(self._get("Height"))

    def GetOffsetX(self) -> int:  # noqa: N802
        return int(self._get("OffsetX"))

    def GetOffsetY(self) -> int:  # noqa: N802
        return int(self._get("OffsetY"))

    def GetTimestamp(self) -> int:  # noqa: N802
        return int(self._get("Timestamp"))

    def GetSequencerSetActive(self) -> int:  # noqa: N802
        return int(self._get("SequencerSetActive"))

    def GetCRC(self) -> int:  # noqa: N802
        return int(self._get("CRC"))


class ImagePtr:
    """An image: from the stream (holds a pool buffer until ``Release``) or converted (owns its data)."""

    def __init__(self, data: np.ndarray, width: int, height: int, pixel_format: int, frame_id: int,
                 timestamp_ns: int, status: int, device: Any = None, chunks: dict[str, Any] | None = None,
                 offsets: tuple[int, int] = (0, 0)) -> None:
        self._data = data
        self._width = width
        self._height = height
        self._pixel_format = pixel_format
        self._frame_id = frame_id
        self._timestamp_ns = timestamp_ns
        self._status = status
        self._device = device
        self._generation = device.generation if device is not None else -1
        self._chunks = chunks
        self._offsets = offsets
        self._released = False

    def _alive(self) -> None:
        if self._released:
            raise SpinnakerException("Image has been released; its buffer belongs to the stream again", SPINNAKER_ERR_INVALID_BUFFER)

    def IsIncomplete(self) -> bool:  # noqa: N802
        self._alive()
        return self._status != SPINNAKER_IMAGE_STATUS_NO_ERROR

    def GetImageStatus(self) -> int:  # noqa: N802
        self._alive()
        return self._status

    def GetNDArray(self) -> np.ndarray:  # noqa: N802
        """A view of the buffer (copy it before ``Release``)."""
        self._alive()
        return self._data

    def GetData(self) -> np.ndarray:  # noqa: N802
        self._alive()
        return self._data.reshape(-1)

    def GetFrameID(self) -> int:  # noqa: N802
        self._alive()
        return self._frame_id

    def GetID(self) -> int:  # noqa: N802
        return self.GetFrameID()

    def GetTimeStamp(self) -> int:  # noqa: N802
        self._alive()
        return self._timestamp_ns

    def GetWidth(self) -> int:  # noqa: N802
        return self._width

    def GetHeight(self) -> int:  # noqa: N802
        return self._height

    def GetXOffset(self) -> int:  # noqa: N802
        return self._offsets[0]

    def GetYOffset(self) -> int:  # noqa: N802
        return self._offsets[1]

    def GetStride(self) -> int:  # noqa: N802
        return int(self._data.shape[1] * self._data.itemsize)

    def GetBitsPerPixel(self) -> int:  # noqa: N802
        return {"Mono8": 8, "Mono16": 16}.get(self.GetPixelFormatName(), 12)

    def GetBufferSize(self) -> int:  # noqa: N802
        return int(self._data.nbytes)

    def GetPixelFormat(self) -> int:  # noqa: N802
        return self._pixel_format

    def GetPixelFormatName(self) -> str:  # noqa: N802
        return PIXEL_FORMAT_NAMES[self._pixel_format]

    def HasChunkData(self) -> bool:  # noqa: N802
        return self._chunks is not None

    def GetChunkData(self) -> ChunkData:  # noqa: N802
        self._alive()
        if self._chunks is None:
            raise SpinnakerException("Image has no chunk data (set ChunkModeActive before BeginAcquisition)",
                                     SPINNAKER_ERR_NOT_AVAILABLE)
        return ChunkData(self._chunks)

    def _counts(self) -> np.ndarray:
        return unpack_pixels(self._data, self.GetPixelFormatName(), self._width)

    def Convert(self, pixel_format: int, algorithm: int | None = None) -> "ImagePtr":  # noqa: N802
        """Spinnaker 1.x/2.x conversion (later: ``ImageProcessor.Convert``)."""
        return ImageProcessor().Convert(self, pixel_format)

    def Save(self, filename: str, file_format: Any = None) -> None:  # noqa: N802
        """Write the image to ``filename`` (format from the suffix: pgm, png, bmp, raw, jpg, tiff)."""
        self._alive()
        name = self.GetPixelFormatName()
        if name in ("Mono8", "Mono16"):
            pixels = self._data
        else:  # packed 12-bit: saved as 16-bit, MSB-aligned like the camera's Mono16
            pixels = (self._counts() << 4).astype(np.uint16)
        save_image(str(filename), pixels, file_format if isinstance(file_format, str) else None)

    def Release(self) -> None:  # noqa: N802
        """Give the buffer back to the stream's pool. Stale views then see garbage."""
        self._alive()
        self._released = True
        if self._device is not None:
            self._data[...] = 0xA5  # the pool reuses the buffer
            if self._device.generation == self._generation:
                self._device.release_buffer()


class ImageProcessor:
    """Pixel-format conversion (Spinnaker 2+/3+ ``ImageProcessor().Convert``)."""

    def SetColorProcessing(self, algorithm: Any) -> None:  # noqa: N802
        return None

    def Convert(self, image: ImagePtr, pixel_format: int) -> ImagePtr:  # noqa: N802
        image._alive()
        target = PIXEL_FORMAT_NAMES.get(pixel_format)
        if target is None:
            raise SpinnakerException(f"Unsupported destination pixel format {pixel_format}", SPINNAKER_ERR_INVALID_PARAMETER)
        return ImagePtr(pack_pixels(image._counts(), target), image._width, image._height, pixel_format,
                        image._frame_id, image._timestamp_ns, image._status, None, image._chunks, image._offsets)
