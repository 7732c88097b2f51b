"""Error codes, access modes, node interface types and enumeration constants of the fake PySpin.

Error-code numbers and names follow ``reference/devices.md`` section 1.5 (Spinnaker's ``spinError``).
Enumeration constants (``PySpin.ExposureAuto_Off`` ...) are generated from :data:`ENUM_ENTRIES`: their
integer values are this emulator's choice; code must only use the names, as with the real binding.
"""

from __future__ import annotations

SPINNAKER_ERR_SUCCESS = 0
SPINNAKER_ERR_ERROR = -1001
SPINNAKER_ERR_NOT_INITIALIZED = -1002
SPINNAKER_ERR_NOT_IMPLEMENTED = -1003
SPINNAKER_ERR_RESOURCE_IN_USE = -1004
SPINNAKER_ERR_ACCESS_DENIED = -1005
SPINNAKER_ERR_INVALID_HANDLE = -1006
SPINNAKER_ERR_INVALID_PARAMETER = -1009
SPINNAKER_ERR_IO = -1010
SPINNAKER_ERR_TIMEOUT = -1011
SPINNAKER_ERR_ABORT = -1012
SPINNAKER_ERR_INVALID_BUFFER = -1013
SPINNAKER_ERR_NOT_AVAILABLE = -1014
GENICAM_ERR_INVALID_ARGUMENT = -2001
GENICAM_ERR_OUT_OF_RANGE = -2002
GENICAM_ERR_ACCESS_DENIED = -2006
GENICAM_ERR_TIMEOUT = -2007
GENICAM_ERR_DYNAMIC_CAST = -2008

EVENT_TIMEOUT_INFINITE = 0xFFFFFFFFFFFFFFFF

# Image status (0 = OK); the non-zero values used here are the emulator's choice.
SPINNAKER_IMAGE_STATUS_NO_ERROR = 0
SPINNAKER_IMAGE_STATUS_MISSING_PACKETS = 3
SPINNAKER_IMAGE_STATUS_DATA_INCOMPLETE = 9
IMAGE_STATUS_TEXT = {
    SPINNAKER_IMAGE_STATUS_NO_ERROR: "Image has no error",
    SPINNAKER_IMAGE_STATUS_MISSING_PACKETS: "Image has missing packets",
    SPINNAKER_IMAGE_STATUS_DATA_INCOMPLETE: "Image data is incomplete",
}

# GenApi access modes (values are the emulator's; compare with the names).
NI, NA, WO, RO, RW = 0, 1, 2, 3, 4
# GenApi principal interface types (``node.GetPrincipalInterfaceType()``).
intfIValue, intfIBase, intfIInteger, intfIBoolean, intfICommand = 0, 1, 2, 3, 4  # noqa: N816
intfIFloat, intfIString, intfIRegister, intfICategory = 5, 6, 7, 8  # noqa: N816
intfIEnumeration, intfIEnumEntry, intfIPort = 9, 10, 11  # noqa: N816
INTERFACE_OF_KIND = {
    "integer": intfIInteger, "boolean": intfIBoolean, "command": intfICommand, "float": intfIFloat,
    "string": intfIString, "category": intfICategory, "enumeration": intfIEnumeration,
}

# Colour-processing algorithms accepted by ImageProcessor.SetColorProcessing / ImagePtr.Convert (mono: no effect).
SPINNAKER_COLOR_PROCESSING_ALGORITHM_NONE = 0
SPINNAKER_COLOR_PROCESSING_ALGORITHM_NEAREST_NEIGHBOR = 1
SPINNAKER_COLOR_PROCESSING_ALGORITHM_BILINEAR = 2
SPINNAKER_COLOR_PROCESSING_ALGORITHM_HQ_LINEAR = 3
SPINNAKER_COLOR_PROCESSING_ALGORITHM_EDGE_SENSING = 4
SPINNAKER_COLOR_PROCESSING_ALGORITHM_DIRECTIONAL_FILTER = 5
HQ_LINEAR = SPINNAKER_COLOR_PROCESSING_ALGORITHM_HQ_LINEAR  # Spinnaker 1.x name
NEAREST_NEIGHBOR = SPINNAKER_COLOR_PROCESSING_ALGORITHM_NEAREST_NEIGHBOR

# Pixel formats (fake integers; code must use the names).
PixelFormat_Mono8 = 1
PixelFormat_Mono12Packed = 2
PixelFormat_Mono12p = 3
PixelFormat_Mono16 = 4
PIXEL_FORMAT_NAMES = {
    PixelFormat_Mono8: "Mono8",
    PixelFormat_Mono12Packed: "Mono12Packed",
    PixelFormat_Mono12p: "Mono12p",
    PixelFormat_Mono16: "Mono16",
}
PIXEL_FORMAT_VALUES = {name: value for value, name in PIXEL_FORMAT_NAMES.items()}
BYTES_PER_PIXEL = {"Mono8": 1.0, "Mono12Packed": 1.5, "Mono12p": 1.5, "Mono16": 2.0}

BUFFER_HANDLING_MODES = ("OldestFirst", "OldestFirstOverwrite", "NewestOnly", "NewestFirst")
CHUNK_NAMES = ("Image", "CRC", "FrameID", "OffsetX", "OffsetY", "Width", "Height", "ExposureTime", "Gain",
               "BlackLevel", "PixelFormat", "Timestamp", "SequencerSetActive")
EVENT_NAMES = ("ExposureEnd", "Error")
TRIGGER_SOURCES = ("Software", "Line0", "Line1", "Line2", "Line3")

# Entries of every enumeration node except PixelFormat (whose values are above). Entry value = index.
ENUM_ENTRIES: dict[str, tuple[str, ...]] = {
    "AcquisitionMode": ("Continuous", "SingleFrame", "MultiFrame"),
    "ExposureAuto": ("Off", "Once", "Continuous"),
    "GainAuto": ("Off", "Once", "Continuous"),
    "AcquisitionFrameRateAuto": ("Off", "Once", "Continuous"),
    "TriggerMode": ("Off", "On"),
    "TriggerSelector": ("FrameStart",),
    "TriggerSource": TRIGGER_SOURCES,
    "TriggerActivation": ("RisingEdge", "FallingEdge"),
    "TriggerOverlap": ("Off", "ReadOut"),
    "ChunkSelector": CHUNK_NAMES,
    "EventSelector": EVENT_NAMES,
    "EventNotification": ("Off", "On"),
    "StreamBufferHandlingMode": BUFFER_HANDLING_MODES,
    "StreamBufferCountMode": ("Manual", "Auto"),
}


def enum_value(node: str, symbol: str) -> int:
    """The integer value of entry ``symbol`` of enumeration ``node``."""
    if node == "PixelFormat":
        return PIXEL_FORMAT_VALUES[symbol]
    return ENUM_ENTRIES[node].index(symbol)


def enum_constants() -> dict[str, int]:
    """``{"ExposureAuto_Off": 0, ...}``: the module-level names PySpin exposes for enumeration entries."""
    return {f"{node}_{entry}": index for node, entries in ENUM_ENTRIES.items() for index, entry in enumerate(entries)}
