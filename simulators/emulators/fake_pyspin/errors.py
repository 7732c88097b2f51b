"""The SDK's exception type and image-status text."""

from __future__ import annotations

from .constants import IMAGE_STATUS_TEXT, SPINNAKER_ERR_ERROR


class SpinnakerException(Exception):
    """The SDK's error: ``errorcode`` (int) and ``message``; ``str()`` gives the full text."""

    def __init__(self, message: str, errorcode: int = SPINNAKER_ERR_ERROR) -> None:
        self.message = message
        self.errorcode = int(errorcode)
        self.fullmessage = f"Spinnaker: {message} [{self.errorcode}]"
        super().__init__(self.fullmessage)


def Image_GetImageStatusDescription(status: int) -> str:  # noqa: N802 (vendor name)
    """Text for an image status code."""
    return IMAGE_STATUS_TEXT.get(int(status), f"Unknown image status {status}")
