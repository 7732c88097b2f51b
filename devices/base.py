"""Device interfaces shared by real drivers and simulated backends.

Everything here is Qt-free and synchronous. Every device is a context manager
(``open()``/``close()``), reports :class:`DeviceInfo` and raises subclasses of
:class:`DeviceError` whose message names the device and what to do.

Units are in the names: ``*_ms``, ``*_nm``, ``*_a`` (ampere), ``*_w`` (watt),
``*_v`` (volt), ``*_s`` (second).
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import Literal, Protocol, Sequence

import numpy as np

# --------------------------------------------------------------------------- errors


#: The six device roles of a rig, in opening order (the config sections under [devices]).
ROLES: tuple[str, ...] = ("camera", "stage", "led", "focus_laser", "focus_sensor", "potentiostat")


class DeviceError(Exception):
    """A device failed. ``device`` names it; the message says what to do."""

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device
        self.detail = message


class DeviceTimeout(DeviceError):
    """The device did not answer (or deliver a frame) in time."""


class DeviceLost(DeviceError):
    """The device disappeared (unplugged, link dropped, controller gone)."""


class IncompleteFrame(DeviceError):
    """The camera delivered a frame with missing data; it must not be stored."""


class OutOfRange(DeviceError, ValueError):
    """A requested value lies outside what the device allows; nothing was sent."""


class EndOfTravel(DeviceError):
    """A positioner hit its end-of-travel switch."""


class InterlockTripped(DeviceError):
    """A safety interlock is open; the source refuses to emit."""


class NotOpen(DeviceError):
    """The device was used before ``open()`` or after ``close()``."""


class MissingVendorLibrary(DeviceError):
    """A vendor SDK needed by a real driver is not installed."""


class LimitExceeded(DeviceError):
    """A safety limit (e.g. a voltage cut-off) was passed."""


# --------------------------------------------------------------------------- clocks


class Clock(Protocol):
    """Time source shared by a rig: wall time on hardware, virtual time in simulation."""

    def now_s(self) -> float:
        """Seconds on this clock (monotonic)."""

    def sleep_s(self, duration_s: float) -> None:
        """Sleep for ``duration_s`` seconds of this clock."""

    @property
    def speed(self) -> float:
        """Clock seconds per wall second (1 for real hardware)."""


class WallClock:
    """The real clock: ``time.monotonic``."""

    speed = 1.0

    def now_s(self) -> float:
        return time.monotonic()

    def sleep_s(self, duration_s: float) -> None:
        if duration_s > 0:
            time.sleep(duration_s)


# --------------------------------------------------------------------------- base device


@dataclass(frozen=True)
class DeviceInfo:
    """Identity of an opened device."""

    model: str
    serial: str
    firmware: str = ""
    driver: str = ""


class Device(abc.ABC):
    """Base of every device: a context manager with ``open``/``close`` and ``info``."""

    #: The role name used in messages ("camera", "stage", ...).
    name: str = "device"

    @abc.abstractmethod
    def open(self) -> None:
        """Connect to the device and bring it to a known, safe state."""

    @abc.abstractmethod
    def close(self) -> None:
        """Leave the device safe and release every vendor resource. Idempotent."""

    @abc.abstractmethod
    def info(self) -> DeviceInfo:
        """Model, serial and firmware of the opened device."""

    @property
    @abc.abstractmethod
    def is_open(self) -> bool:
        """True between ``open()`` and ``close()``."""

    def _require_open(self) -> None:
        if not self.is_open:
            raise NotOpen(self.name, "not open; call open() or use it as a context manager")

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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


# --------------------------------------------------------------------------- light sources


@dataclass(frozen=True)
class LightState:
    """State of an LED driver."""

    enabled: bool
    current_setpoint_a: float
    measured_current_a: float
    interlock_ok: bool = True


class LightSource(Device):
    """An LED on a current driver."""

    name = "led"

    @property
    @abc.abstractmethod
    def max_current_a(self) -> float:
        """Current limit in A; larger setpoints are refused."""

    @abc.abstractmethod
    def set_current(self, current_a: float) -> None:
        """Set the constant-current setpoint (A). OutOfRange beyond [0, max_current_a]."""

    @abc.abstractmethod
    def enable(self, on: bool) -> None:
        """Switch the output on or off."""

    @abc.abstractmethod
    def state(self) -> LightState:
        """Read back output state and currents."""


@dataclass(frozen=True)
class LaserState:
    """State of a laser."""

    enabled: bool
    power_setpoint_w: float
    power_w: float
    interlock_ok: bool
    fault_word: int = 0


class Laser(Device):
    """A laser with emission on/off and a power setpoint (W)."""

    name = "focus_laser"

    @property
    @abc.abstractmethod
    def power_limits_w(self) -> tuple[float, float]:
        """Allowed power setpoints (low, high) in W."""

    @abc.abstractmethod
    def set_power(self, power_w: float) -> None:
        """Set the power setpoint (W). OutOfRange outside ``power_limits_w``."""

    @abc.abstractmethod
    def enable(self, on: bool) -> None:
        """Emission on/off. InterlockTripped when the interlock is open."""

    @abc.abstractmethod
    def state(self) -> LaserState:
        """Read back emission, setpoint, actual power and interlock."""


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


@dataclass(frozen=True)
class OCV:
    """Open-circuit rest for ``duration_s``."""

    duration_s: float
    record_every_s: float = 1.0


@dataclass(frozen=True)
class ConstantCurrent:
    """Constant current (A; positive = oxidation = cathode charge) until ``duration_s``
    or until the voltage crosses ``v_limit_v`` (upward when charging, downward when
    discharging)."""

    current_a: float
    v_limit_v: float
    duration_s: float
    record_every_s: float = 1.0


@dataclass(frozen=True)
class ConstantVoltage:
    """Hold ``voltage_v`` until ``duration_s`` or until |I| falls below ``i_limit_a``."""

    voltage_v: float
    i_limit_a: float
    duration_s: float
    record_every_s: float = 1.0


Technique = OCV | ConstantCurrent | ConstantVoltage


@dataclass(frozen=True)
class EchemPoint:
    """One electrochemistry sample on the rig clock."""

    time_s: float
    voltage_v: float
    current_a: float
    step: int = 0
    cycle: int = 0


EndReason = Literal["running", "duration", "limit", "stopped", "error"]


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
