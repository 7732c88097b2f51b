"""Small fake devices for the engine tests (fast, deterministic), plus tests of the fakes themselves.

The fakes follow operascope.devices.base; they are not the simulator (simulators/ is tested on its own). A
fast virtual clock lets a 10 Hz camera deliver hundreds of frames per wall second.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from operascope.acquisition.rig import Rig
from operascope.config.loader import load_config
from operascope.devices.base import (OCV, Camera, CameraSettings, ConstantCurrent, DeviceInfo, DeviceLost, EchemPoint,
                          FocusSensor, Frame, Laser, LaserState, LightSource, LightState, OutOfRange, Positioner,
                          Potentiostat, Profile, Roi, Stage)


class FastClock:
    """Virtual clock: ``speed`` rig seconds per wall second."""

    def __init__(self, speed: float) -> None:
        self.speed = float(speed)
        self._t0 = time.monotonic()

    def now_s(self) -> float:
        return (time.monotonic() - self._t0) * self.speed

    def sleep_s(self, duration_s: float) -> None:
        if duration_s > 0:
            time.sleep(duration_s / self.speed)


class _Opened:
    def __init__(self) -> None:
        self._open = False

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def info(self) -> DeviceInfo:
        return DeviceInfo(model=f"fake {self.name}", serial="0001", driver="fake")


def scene(shape: tuple[int, int]) -> np.ndarray:
    """Background 1000 counts, a disc particle (+3000) and a bright fiducial spot (+8000)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    image = np.full(shape, 1000.0)
    image += 3000.0 * (((xx - 0.6 * w) ** 2 + (yy - 0.5 * h) ** 2) < (0.2 * min(h, w)) ** 2)
    image += 8000.0 * np.exp(-((xx - 0.2 * w) ** 2 + (yy - 0.25 * h) ** 2) / (2 * 2.0 ** 2))
    return image


class FakeCamera(_Opened, Camera):
    """Frames at ``frame_rate_hz`` of the clock; ``drop(k)`` skips the next k frame ids."""

    max_frame_rate_hz = 150.0

    def __init__(self, clock: FastClock, sensor=(120, 160), seed: int = 0) -> None:
        super().__init__()
        self.clock = clock
        self._sensor = sensor
        self._settings = CameraSettings(2.5, 10.0, Roi(0, 0, sensor[1], sensor[0]), "Mono16", 0.0)
        self._streaming = False
        self._rng = np.random.default_rng(seed)
        self._to_drop = 0
        self._lost = False
        self._lock = threading.Lock()
        self._next_id = 0

    @property
    def sensor_shape(self):
        return self._sensor

    def configure(self, exposure_ms, frame_rate_hz, roi=None, pixel_format="Mono16", gain_db=0.0):
        if not 0 < frame_rate_hz <= self.max_frame_rate_hz:
            raise OutOfRange("camera", f"frame rate {frame_rate_hz:g} Hz is outside (0, {self.max_frame_rate_hz:g}] Hz")
        if exposure_ms > 1000.0 / frame_rate_hz:
            raise OutOfRange("camera", f"exposure {exposure_ms} ms longer than the frame period")
        roi = roi or Roi(0, 0, self._sensor[1], self._sensor[0])
        self._settings = CameraSettings(exposure_ms, frame_rate_hz, roi, pixel_format, gain_db)
        self._image = scene((roi.height, roi.width))
        return self._settings

    def settings(self):
        return self._settings

    def start(self):
        self._streaming = True
        self._start_s = self.clock.now_s()
        self._k = 0
        if not hasattr(self, "_image"):
            self.configure(2.5, 10.0)

    def stop(self):
        self._streaming = False

    @property
    def is_streaming(self):
        return self._streaming

    def drop(self, count: int) -> None:
        with self._lock:
            self._to_drop += count

    def read(self, timeout_s=1.0):
        if self._lost:
            raise DeviceLost("camera", "fake unplugged")
        period = 1.0 / self._settings.frame_rate_hz
        with self._lock:
            skip, self._to_drop = self._to_drop, 0
        self._k += skip
        self._next_id += skip
        t_frame = self._start_s + self._k * period
        self.clock.sleep_s(t_frame - self.clock.now_s())
        pixels = np.clip(self._image + self._rng.normal(0, 30, self._image.shape), 0, 65535).astype(np.uint16)
        frame = Frame(pixels, self._next_id, int(t_frame * 1e9), t_frame)
        self._k += 1
        self._next_id += 1
        return frame


class FakeAxis(_Opened, Positioner):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self._pos = 0.0

    @property
    def limits_nm(self):
        return (-1e6, 1e6)

    def position_nm(self):
        return self._pos

    def target_nm(self):
        return self._pos

    def move_to(self, target_nm):
        self.check_target(target_nm)
        self._pos = float(target_nm)

    def is_moving(self):
        return False

    def halt(self):
        pass


class FakeStage(_Opened, Stage):
    def __init__(self) -> None:
        super().__init__()
        self._axes = {a: FakeAxis(a) for a in ("x", "y", "z")}

    @property
    def axes(self):
        return self._axes


class FakeLed(_Opened, LightSource):
    def __init__(self) -> None:
        super().__init__()
        self.on, self.current = False, 0.0

    @property
    def max_current_a(self):
        return 1.0

    def set_current(self, current_a):
        self.current = current_a

    def enable(self, on):
        self.on = bool(on)

    def state(self):
        return LightState(self.on, self.current, self.current if self.on else 0.0)


class FakeLaser(_Opened, Laser):
    name = "focus_laser"

    def __init__(self) -> None:
        super().__init__()
        self.on, self.power = False, 0.0

    @property
    def power_limits_w(self):
        return (0.0, 0.1)

    def set_power(self, power_w):
        self.power = power_w

    def enable(self, on):
        self.on = bool(on)

    def state(self):
        return LaserState(self.on, self.power, self.power if self.on else 0.0, True)


class FakeFocusSensor(_Opened, FocusSensor):
    def __init__(self, clock) -> None:
        super().__init__()
        self.clock = clock

    @property
    def n_pixels(self):
        return 64

    def read_profile(self, timeout_s=1.0):
        x = np.arange(64.0)
        return Profile(np.exp(-((x - 32) ** 2) / 8.0), self.clock.now_s())


class FakeCell(_Opened, Potentiostat):
    """Linear cell: OCV = 3.7 V + 0.6 V x q/200 (q in mAh/g from 0), plus 0.05 mV per mA/g of current.

    Points every ``record_every_s`` of the clock; ConstantCurrent ends at the duration or when the
    voltage crosses ``v_limit_v``. Like the simulated cell, while steps are chained a technique started
    after the last one ended by itself starts at that end (nothing changes at rest here: exact).
    """

    def __init__(self, clock, mass_mg: float = 1.0) -> None:
        super().__init__()
        self.clock = clock
        self.mass_g = mass_mg * 1e-3
        self.q = 0.0
        self._lock = threading.Lock()
        self._tech = None
        self._running = False
        self._reason = "stopped"
        self._points: list[EchemPoint] = []
        self.started: list[tuple[object, int, int, float]] = []
        self._chained = False

    def voltage(self, current_a: float) -> float:
        return 3.7 + 0.6 * self.q / 200.0 + 0.05 * current_a / self.mass_g

    def start(self, technique, step=0, cycle=0):
        with self._lock:
            self._advance()
            follows = self._chained and not self._running and self._reason in ("duration", "limit")
            self._tech, self._step, self._cycle = technique, step, cycle
            self._t_start = self._t = self._t if follows else self.clock.now_s()
            self._running, self._reason = True, "running"
            self.started.append((technique, step, cycle, self._t_start))

    def _advance(self) -> None:
        if not self._running:
            return
        tech = self._tech
        dt = tech.record_every_s
        now = self.clock.now_s()
        current = tech.current_a if isinstance(tech, ConstantCurrent) else 0.0
        while self._running and self._t + dt <= now:
            self._t += dt
            self.q += current * dt / (3.6 * self.mass_g)
            v = self.voltage(current)
            self._points.append(EchemPoint(self._t, v, current, self._step, self._cycle))
            if isinstance(tech, ConstantCurrent) and ((current > 0 and v >= tech.v_limit_v)
                                                      or (current < 0 and v <= tech.v_limit_v)):
                self._running, self._reason = False, "limit"
            elif self._t - self._t_start >= tech.duration_s - 1e-9:
                self._running, self._reason = False, "duration"

    def read_new(self):
        with self._lock:
            self._advance()
            points, self._points = self._points, []
            return points

    def started_at_s(self):
        with self._lock:
            return self._t_start

    def chain_steps(self, enabled):
        self._chained = bool(enabled)

    def stop(self):
        with self._lock:
            if self._running:
                self._running, self._reason = False, "stopped"

    def is_running(self):
        with self._lock:
            self._advance()
            return self._running

    def end_reason(self):
        with self._lock:
            self._advance()
            return self._reason


def fake_rig_factory(speed: float = 50.0, sensor=(120, 160)):
    """A ``rig_factory`` for Microscope; the built rig is kept in ``factory.built``."""

    def factory(config):
        clock = FastClock(speed)
        devices = {"camera": FakeCamera(clock, sensor), "stage": FakeStage(), "led": FakeLed(),
                   "focus_laser": FakeLaser(), "focus_sensor": FakeFocusSensor(clock),
                   "potentiostat": FakeCell(clock, config.sample.active_mass_mg)}
        rig = Rig(config, devices, clock)
        factory.built = rig
        return rig

    factory.built = None
    return factory


def small_config(**acquisition):
    """The simulated preset with a small ROI-free camera and fast flushing."""
    acq = {"bin_size": 5, "roi": None, "queue_frames": 50}
    acq.update(acquisition)
    return load_config(None, {"acquisition": acq})


# ------------------------------------------------------------------ tests of the fakes
