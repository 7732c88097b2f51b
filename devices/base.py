"""Device interfaces shared by real drivers and simulated backends.

Everything here is Qt-free and synchronous. Every device is a context manager
(``open()``/``close()``), reports :class:`DeviceInfo` and raises subclasses of
:class:`DeviceError` whose message names the device and what to do.

Units are in the names: ``*_ms``, ``*_nm``, ``*_a`` (ampere), ``*_w`` (watt),
``*_v`` (volt), ``*_s`` (second).
"""

from __future__ import annotations

import abc

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

# Errors, clocks and electrochemistry techniques live in their own modules; they are part of this interface.
from operascope.devices.clocks import Clock, WallClock  # noqa: E402,F401
from operascope.devices.errors import (  # noqa: E402,F401
    DeviceError,
    DeviceLost,
    DeviceTimeout,
    EndOfTravel,
    IncompleteFrame,
    InterlockTripped,
    LimitExceeded,
    MissingVendorLibrary,
    NotOpen,
    OutOfRange,
)
from operascope.devices.device import Device, DeviceInfo  # noqa: E402,F401
from operascope.devices.light_sources import Laser, LaserState, LightSource, LightState  # noqa: E402,F401
from operascope.devices.techniques import (  # noqa: E402,F401
    OCV,
    ConstantCurrent,
    ConstantVoltage,
    EchemPoint,
    EndReason,
    Technique,
)


#: The six device roles of a rig, in opening order (the config sections under [devices]).
ROLES: tuple[str, ...] = ("camera", "stage", "led", "focus_laser", "focus_sensor", "potentiostat")


# --------------------------------------------------------------------------- camera

PixelFormat = Literal["Mono8", "Mono12Packed", "Mono12p", "Mono16"]
PIXEL_FORMATS: tuple[str, ...] = ("Mono8", "Mono12Packed", "Mono12p", "Mono16")


@dataclass(frozen=True)
class Roi:
    """Region of interest on the sensor, in pixels."""

    x: int
    y: int
    width: int
    height: int

    def as_slices(self) -> tuple[slice, slice]:
        """Row and column slices into a full-sensor array."""
        return slice(self.y, self.y + self.height), slice(self.x, self.x + self.width)


@dataclass(frozen=True)
class CameraSettings:
    """Camera settings as read back from the device."""

    exposure_ms: float
    frame_rate_hz: float
    roi: Roi
    pixel_format: str
    gain_db: float


@dataclass(frozen=True)
class Frame:
    """One camera image.

    ``pixels`` is a 2-D uint16 array owned by the frame (never an SDK buffer).
    ``frame_id`` increases by one per exposure; gaps are dropped frames.
    ``camera_time_ns`` is the camera's timestamp; ``host_time_s`` the rig clock when read.
    """

    pixels: np.ndarray
    frame_id: int
    camera_time_ns: int
    host_time_s: float


class Camera(Device):
    """An area camera streaming frames."""

    name = "camera"

    @property
    @abc.abstractmethod
    def sensor_shape(self) -> tuple[int, int]:
        """Full sensor size as (height, width) in pixels."""

    @abc.abstractmethod
    def configure(
        self,
        exposure_ms: float,
        frame_rate_hz: float,
        roi: Roi | None = None,
        pixel_format: str = "Mono16",
        gain_db: float = 0.0,
    ) -> CameraSettings:
        """Apply settings (not while streaming) and return them as read back.

        Raises :class:`OutOfRange` for values the camera cannot do.
        """

    @abc.abstractmethod
    def settings(self) -> CameraSettings:
        """Current settings as read back."""

    @abc.abstractmethod
    def start(self) -> None:
        """Begin streaming."""

    @abc.abstractmethod
    def stop(self) -> None:
        """End streaming. Idempotent."""

    @property
    @abc.abstractmethod
    def is_streaming(self) -> bool:
        """True between ``start()`` and ``stop()``."""

    @abc.abstractmethod
    def read(self, timeout_s: float = 1.0) -> Frame:
        """Next frame. Raises DeviceTimeout, IncompleteFrame or DeviceLost."""

    def timestamp_now_ns(self) -> int | None:
        """The camera's time-stamp counter now, on the scale of ``Frame.camera_time_ns`` (GenICam
        ``TimestampLatch`` + ``TimestampLatchValue``), or None when the camera cannot latch it.

        A frame whose ``camera_time_ns`` is at or after this value started its exposure after the call
        began, however late the host reads it. Safe to call while another thread reads frames.
        """
        return None

    def reconnect(self) -> None:
        """Re-open after :class:`DeviceLost` and re-apply the last settings.

        Raises DeviceLost if the device is still absent. The default closes and opens.
        """
        settings = self.settings() if self.is_open else None
        self.close()
        self.open()
        if settings is not None:
            self.configure(
                settings.exposure_ms,
                settings.frame_rate_hz,
                settings.roi,
                settings.pixel_format,
                settings.gain_db,
            )


# --------------------------------------------------------------------------- positioners

AXES: tuple[str, ...] = ("x", "y", "z")


class Positioner(Device):
    """One closed-loop axis, positions in nm. Refuses targets outside soft limits."""

    name = "positioner"

    @property
    @abc.abstractmethod
    def limits_nm(self) -> tuple[float, float]:
        """Soft limits (low, high) in nm."""

    @abc.abstractmethod
    def position_nm(self) -> float:
        """Measured position in nm."""

    @abc.abstractmethod
    def target_nm(self) -> float:
        """Last commanded absolute target in nm."""

    @abc.abstractmethod
    def move_to(self, target_nm: float) -> None:
        """Command an absolute move; returns at once. OutOfRange outside soft limits."""

    @abc.abstractmethod
    def is_moving(self) -> bool:
        """True while the axis is travelling to its target."""

    @abc.abstractmethod
    def halt(self) -> None:
        """Stop the axis where it is."""

    def check_target(self, target_nm: float) -> None:
        """Raise OutOfRange unless ``target_nm`` is within the soft limits."""
        low, high = self.limits_nm
        if not (np.isfinite(target_nm) and low <= target_nm <= high):
            raise OutOfRange(
                self.name,
                f"target {target_nm:.1f} nm is outside the soft limits "
                f"[{low:.1f}, {high:.1f}] nm; nothing was moved",
            )

    def wait_settled(self, timeout_s: float = 10.0, clock: Clock | None = None, poll_s: float = 0.02) -> float:
        """Block until the axis stops moving; return its position (nm).

        Raises DeviceTimeout if still moving after ``timeout_s`` (on ``clock``).
        """
        clock = clock or WallClock()
        deadline = clock.now_s() + timeout_s
        while self.is_moving():
            if clock.now_s() > deadline:
                raise DeviceTimeout(self.name, f"still moving after {timeout_s:.1f} s; check the controller")
            clock.sleep_s(poll_s)
        return self.position_nm()


class StageAxis(Positioner):
    """A :class:`Positioner` that is one axis of a :class:`Stage`: opening, closing and
    identity are the stage's. Subclasses set ``self._stage`` and implement the motion."""

    _stage: "Stage"

    def open(self) -> None:
        self._stage.open()

    def close(self) -> None:
        self._stage.close()

    def info(self) -> DeviceInfo:
        return self._stage.info()

    @property
    def is_open(self) -> bool:
        return self._stage.is_open


class Stage(Device):
    """An XYZ stack of :class:`Positioner` axes."""

    name = "stage"

    @property
    @abc.abstractmethod
    def axes(self) -> dict[str, Positioner]:
        """The axes by name ("x", "y", "z"); opened and closed with the stage."""

    def axis(self, name: str) -> Positioner:
        """One axis by name."""
        try:
            return self.axes[name]
        except KeyError:
            raise OutOfRange(self.name, f"unknown axis {name!r}; allowed: {', '.join(self.axes)}") from None

    def position_nm(self) -> dict[str, float]:
        """Measured positions of every axis in nm."""
        return {name: ax.position_nm() for name, ax in self.axes.items()}

    def move_to(self, **targets_nm: float) -> None:
        """Absolute move of the named axes, e.g. ``move_to(x=1000.0, z=-50.0)``.

        Every target is checked against its soft limits before anything moves.
        """
        for name, target in targets_nm.items():
            self.axis(name).check_target(target)
        for name, target in targets_nm.items():
            self.axis(name).move_to(target)

    def is_moving(self) -> bool:
        return any(ax.is_moving() for ax in self.axes.values())

    def halt(self) -> None:
        for ax in self.axes.values():
            ax.halt()


# --------------------------------------------------------------------------- focus sensor


@dataclass(frozen=True)
class Profile:
    """A 1-D intensity profile across the reflected focus-laser line.

    ``values`` are counts per sensor pixel (float64, not dark-subtracted);
    ``time_s`` is the rig clock at exposure.
    """

    values: np.ndarray
    time_s: float


class FocusSensor(Device):
    """Detector for the reflected 980 nm line, reduced to a 1-D profile."""

    name = "focus_sensor"

    @property
    @abc.abstractmethod
    def n_pixels(self) -> int:
        """Length of a profile."""

    @abc.abstractmethod
    def read_profile(self, timeout_s: float = 1.0) -> Profile:
        """Acquire one profile. Raises DeviceTimeout or DeviceLost."""


# --------------------------------------------------------------------------- potentiostat


class Potentiostat(Device):
    """A single potentiostat channel running one technique at a time."""

    name = "potentiostat"

    @abc.abstractmethod
    def start(self, technique: Technique, step: int = 0, cycle: int = 0) -> None:
        """Start a technique; points are tagged with ``step`` and ``cycle``."""

    @abc.abstractmethod
    def read_new(self) -> list[EchemPoint]:
        """Points acquired since the last call (may be empty)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the channel: no current flows afterwards. Idempotent."""

    @abc.abstractmethod
    def is_running(self) -> bool:
        """True while the technique runs."""

    @abc.abstractmethod
    def end_reason(self) -> EndReason:
        """Why the last technique ended ("running" while it runs)."""

    def chain_steps(self, enabled: bool) -> None:
        """A protocol runs its steps back to back from now on (or no longer): where the instrument can,
        each next technique starts at the end of the last. Default: nothing to do."""

    def started_at_s(self) -> float | None:
        """Rig-clock time the running technique started, where the instrument knows it (None: the
        host's clock when ``start`` returned is the best estimate)."""
        return None


# --------------------------------------------------------------------------- helpers


def validate_in_range(device: str, what: str, value: float, low: float, high: float, unit: str) -> float:
    """Return ``value`` as float or raise OutOfRange naming ``what`` and the allowed range."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OutOfRange(device, f"{what} must be a number, got {value!r}") from None
    if not (np.isfinite(number) and low <= number <= high):
        raise OutOfRange(device, f"{what} {number:g} {unit} is outside the allowed range [{low:g}, {high:g}] {unit}")
    return number



__all__: Sequence[str] = [
    "AXES",
    "PIXEL_FORMATS",
    "Camera",
    "CameraSettings",
    "Clock",
    "ConstantCurrent",
    "ConstantVoltage",
    "Device",
    "DeviceError",
    "DeviceInfo",
    "DeviceLost",
    "DeviceTimeout",
    "EchemPoint",
    "EndOfTravel",
    "EndReason",
    "FocusSensor",
    "Frame",
    "IncompleteFrame",
    "InterlockTripped",
    "Laser",
    "LaserState",
    "LightSource",
    "LightState",
    "LimitExceeded",
    "MissingVendorLibrary",
    "NotOpen",
    "OCV",
    "OutOfRange",
    "Positioner",
    "Potentiostat",
    "Profile",
    "Roi",
    "Stage",
    "StageAxis",
    "Technique",
    "WallClock",
    "validate_in_range",
]
