"""FocusService: owns the focus lock, the laser-on-for-focus rule and the calibration record.

It also publishes what the focus sensor sees (the newest profile, every loop sample), so no
client ever reads a device itself: the sensor is wrapped by a :class:`SensorTap` when the rig opens.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from operascope.acquisition.events import EventBus
from operascope.config.schema import FocusLockConfig
from operascope.devices.base import DeviceInfo, FocusSensor, Profile

log = logging.getLogger(__name__)

#: Upper bound of focus-lock loop iterations per wall second (matters only for fast simulations).
MAX_FOCUS_LOOP_WALL_HZ = 100.0


class SensorTap(FocusSensor):
    """A pass-through focus sensor that remembers the newest profile read (thread-safe)."""

    def __init__(self, sensor: FocusSensor) -> None:
        self._sensor = sensor
        self._lock = threading.Lock()
        self._latest: Profile | None = None
        self._reads = 0
        self.name = sensor.name

    def open(self) -> None:
        self._sensor.open()

    def close(self) -> None:
        self._sensor.close()

    def info(self) -> DeviceInfo:
        return self._sensor.info()

    @property
    def is_open(self) -> bool:
        return self._sensor.is_open

    @property
    def n_pixels(self) -> int:
        return self._sensor.n_pixels

    def read_profile(self, timeout_s: float = 1.0) -> Profile:
        profile = self._sensor.read_profile(timeout_s)
        with self._lock:
            self._latest = profile
            self._reads += 1
        return profile

    def latest(self) -> tuple[Profile | None, int]:
        """(newest profile or None, number of profiles read so far)."""
        with self._lock:
            return self._latest, self._reads

    def __getattr__(self, name: str) -> Any:  # driver-specific extras (e.g. reconnect) pass through
        return getattr(self._sensor, name)


class FocusService:
    """The focus lock of one open rig, created on first use; publishes samples and profiles."""

    def __init__(self, config: FocusLockConfig, events: EventBus,
                 on_calibration: Callable[[], None] = lambda: None) -> None:
        self.config = config
        self._events = events
        self._on_calibration = on_calibration
        self._rig: Any = None
        self._lock: Any = None
        self._subscribers: list[Callable[[Any], None]] = []
        self._listeners: list[Callable[[Any, Any], None]] = []   # engine-internal: (previous, sample)
        self.latest_sample: Any = None

    # ------------------------------------------------------------------ rig lifecycle
    def attach(self, rig: Any) -> None:
        """Wrap the rig's focus sensor so every profile the lock reads is published."""
        if not isinstance(rig.devices["focus_sensor"], SensorTap):
            rig.devices["focus_sensor"] = SensorTap(rig.devices["focus_sensor"])
        self._rig = rig

    def close(self) -> None:
        """Stop the lock loop (the laser is switched off by the facade's ordered close)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        self._rig = None

    # ------------------------------------------------------------------ the lock
    @property
    def lock(self) -> Any:
        """The :class:`operascope.acquisition.focus_lock.FocusLock`, created on first use."""
        rig = self._require_rig()
        if self._lock is None:
            from operascope.acquisition.focus_lock import FocusLock

            lock_config = self.config
            if lock_config.rate_hz * rig.clock.speed > MAX_FOCUS_LOOP_WALL_HZ:
                # A simulation faster than real time would ask for thousands of loops per wall second.
                capped_hz = min(lock_config.rate_hz, max(1.0, MAX_FOCUS_LOOP_WALL_HZ / rig.clock.speed))
                lock_config = lock_config.model_copy(update={"rate_hz": capped_hz})
                self._events.emit("info", "focus_lock", f"clock runs {rig.clock.speed:g}x real time: focus-lock "
                                                        f"rate capped at {capped_hz:.3g} Hz of rig time "
                                                        f"({MAX_FOCUS_LOOP_WALL_HZ:g} loops per wall second)")
            self._lock = FocusLock(rig.focus_sensor, rig.stage.axis("z"), rig.clock, lock_config,
                                   on_sample=self._on_sample, on_event=self._on_event,
                                   signal_expected=self._laser_is_on)
        return self._lock

    def _laser_is_on(self) -> bool:
        """The ``recover`` search runs only while the focus laser emits (never switched on by the lock)."""
        rig = self._rig
        return rig is not None and bool(rig.laser.state().enabled)

    @property
    def existing_lock(self) -> Any:
        """The lock if it was created, else None (never creates one)."""
        return self._lock

    @property
    def state(self) -> str:
        return str(self._lock.state) if self._lock is not None else "off"

    def laser_on(self) -> None:
        """The focus lock needs the 980 nm line: laser on at the configured power."""
        rig = self._require_rig()
        rig.laser.set_power(self.config.laser_power_w)
        rig.laser.enable(True)

    def ensure_laser_on(self) -> None:
        """Switch the laser on at the configured power if it is off (manual focus commands)."""
        if not self._require_rig().laser.state().enabled:
            self.laser_on()
            self._events.emit("info", "focus_lock", "focus laser switched on for the focus lock")

    def calibrate(self) -> dict:
        """Laser on if off, calibrate; returns the calibration as a dict."""
        self.ensure_laser_on()
        return dict(self.lock.calibrate().to_dict())

    def lock_on(self) -> dict | None:
        """Laser on if off, lock (calibrating first when there is no calibration); the calibration dict."""
        self.ensure_laser_on()
        self.lock.lock()
        return self.calibration_dict()

    def engage(self, before_lock: Callable[[], Any] | None = None) -> None:
        """Laser on, calibrate (or load config.calibration_file), ``before_lock()`` (e.g. autofocus), lock."""
        lock = self.lock
        self.laser_on()
        cal_file = self.config.calibration_file
        if cal_file and Path(cal_file).is_file():
            lock.load_calibration(cal_file)
            self._events.emit("info", "focus_lock", f"calibration loaded from {cal_file}")
        else:
            lock.calibrate()
            if cal_file:
                lock.save_calibration(cal_file)
        if before_lock is not None:
            before_lock()
        lock.lock()

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.unlock()

    def set_offset_nm(self, offset_nm: float) -> None:
        self.lock.set_offset_nm(float(offset_nm))

    @property
    def calibration(self) -> Any:
        return getattr(self._lock, "calibration", None) if self._lock is not None else None

    def calibration_dict(self) -> dict | None:
        calibration = self.calibration
        if calibration is None:
            return None
        try:
            return dict(calibration.to_dict())
        except Exception:  # noqa: BLE001 - a calibration that cannot be serialised is not stored
            log.warning("focus calibration cannot be serialised; not stored", exc_info=True)
            return None

    # ------------------------------------------------------------------ publishing
    def latest_profile(self) -> tuple[np.ndarray | None, int]:
        """(newest focus-sensor profile as float64 array or None, profiles read so far)."""
        sensor = self._rig.devices.get("focus_sensor") if self._rig is not None else None
        if not isinstance(sensor, SensorTap):
            return None, 0
        profile, reads = sensor.latest()
        return (np.asarray(profile.values, dtype=np.float64) if profile is not None else None), reads

    def read_profile_when_idle(self, timeout_s: float = 1.0) -> np.ndarray | None:
        """Read one profile if the lock loop is not running (it owns the sensor then), else None."""
        rig = self._require_rig()
        if self._lock is not None and self._lock.is_running:
            return None
        return np.asarray(rig.focus_sensor.read_profile(timeout_s).values, dtype=np.float64)

    def subscribe_samples(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(FocusSample)`` (on the focus-lock thread) for every loop sample."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def add_listener(self, listener: Callable[[Any, Any], None]) -> None:
        """Engine-internal: ``listener(previous_sample, sample)`` before the public subscribers."""
        self._listeners.append(listener)

    def _on_sample(self, sample: Any) -> None:
        previous, self.latest_sample = self.latest_sample, sample
        for listener in list(self._listeners):
            listener(previous, sample)
        for callback in list(self._subscribers):
            try:
                callback(sample)
            except Exception:  # noqa: BLE001 - a subscriber must not break the lock loop
                log.exception("focus-sample subscriber %r failed", callback)

    def _on_event(self, level: str, message: str) -> None:
        self._events.emit(level, "focus_lock", message)
        self._on_calibration()

    def _require_rig(self) -> Any:
        if self._rig is None:
            raise RuntimeError("the microscope is not open; use it as a context manager (with ... as scope:)")
        return self._rig
