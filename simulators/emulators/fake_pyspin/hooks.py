"""Test hooks of the fake PySpin (not part of PySpin): plug cameras in and out, inject faults, inspect state."""

from __future__ import annotations

from typing import Any

from operascope.devices.base import Camera, Clock, WallClock

from .bus import BUS
from .camera import CameraPtr
from .constants import SPINNAKER_IMAGE_STATUS_MISSING_PACKETS
from .device import CAMERA_MEMORY_BYTES, GS3_MODEL, GS3_SENSOR_SHAPE, FakeDevice
from .handlers import stop_pump
from .sources import CameraFrameSource, FrameSource, LineFrameSource, WorldFaults, WorldFrameSource


def attach_camera(
    serial: str,
    frame_source: FrameSource | Camera,
    *,
    clock: Clock | None = None,
    model: str = GS3_MODEL,
    sensor_shape: tuple[int, int] = GS3_SENSOR_SHAPE,
    frame_rate_nodes: str = "GEN2",
    firmware: str = "fake-2.0",
    faults: WorldFaults | None = None,
    camera_memory_bytes: int = CAMERA_MEMORY_BYTES,
) -> None:
    """Plug a camera into the fake bus.

    ``frame_source`` is a ``render(roi, exposure_ms, gain_db)`` callable (e.g.
    ``world.render``) or a :class:`operascope.devices.base.Camera` (wrapped in
    :class:`CameraFrameSource`). ``clock`` times frames (default: wall clock; pass
    ``world.clock`` to follow the simulation). ``frame_rate_nodes`` = "GEN2" (GS3:
    ``AcquisitionFrameRateAuto``/``...Enabled``) or "SFNC" (``AcquisitionFrameRateEnable``).
    ``faults`` feeds a simulated world's injected faults into this camera (:class:`WorldFaults`).
    ``camera_memory_bytes``: the camera's frame memory that holds frames while host buffers are full.
    """
    source = CameraFrameSource(frame_source) if isinstance(frame_source, Camera) else frame_source
    if not callable(source):
        raise TypeError(f"frame_source must be a render callable or a operascope.devices.base.Camera, got {type(frame_source).__name__}")
    with BUS.lock:
        if str(serial) in BUS.devices:
            raise ValueError(f"a fake camera with serial {serial!r} is already attached")
        BUS.devices[str(serial)] = FakeDevice(str(serial), source, clock or WallClock(), model, tuple(sensor_shape),
                                              frame_rate_nodes, firmware, faults, camera_memory_bytes)


def attach_world(world: Any, camera_serial: str = "EMU-CAM-0", focus_serial: str = "EMU-FOCUS-1",
                 focus_profile_axis: int = 1) -> None:
    """Attach the simulated world's two cameras, both timed by ``world.clock``.

    Index 0 / ``camera_serial`` renders the sample at each exposure (``world.render_at``);
    index 1 / ``focus_serial`` shows the reflected focus-laser line (``world.focus_profile``,
    along ``focus_profile_axis``), for ``FlirCamera`` and ``FlirLineSensor`` respectively.
    The world's faults of roles "camera" and "focus_sensor" act on them (:class:`WorldFaults`).
    """
    attach_camera(camera_serial, WorldFrameSource(world), clock=world.clock, faults=WorldFaults(world, "camera"))
    attach_camera(focus_serial, LineFrameSource(world.focus_profile, focus_profile_axis), clock=world.clock,
                  faults=WorldFaults(world, "focus_sensor"))


def _notify(serial: str, arrival: bool) -> None:
    device = BUS.device(serial)
    for handler in list(BUS.handlers):
        camera = CameraPtr(device)
        (handler.OnDeviceArrival if arrival else handler.OnDeviceRemoval)(camera)
        del camera


def unplug(serial: str) -> None:
    """Pull the USB cable: later calls raise -1010 and ``IsValid()`` becomes False."""
    device = BUS.device(serial)
    with device.cond:
        device.present = False
        device.streaming = False
        device.initialised = False
        device.queue.clear()
        device.held.clear()
        device.outstanding = 0
        device.cond.notify_all()
    stop_pump(device)
    _notify(serial, arrival=False)


def detach(serial: str) -> None:
    """Unplug a camera and remove it from the bus (emulator shutdown). Unknown serials are ignored."""
    if str(serial) not in BUS.devices:
        return
    unplug(serial)
    with BUS.lock:
        BUS.devices.pop(str(serial), None)


def replug(serial: str) -> None:
    """Plug the camera back in: it powers up with factory defaults; old pointers stay invalid."""
    device = BUS.device(serial)
    with device.cond:
        device.generation += 1
        device.present = True
        device.power_on()
        device.cond.notify_all()
    _notify(serial, arrival=True)


def stall(serial: str, duration_s: float) -> None:
    """The stream stalls at once for ``duration_s`` (camera clock): frames waiting in the
    host queue and every exposure of the interval are lost, so IDs jump."""
    device = BUS.device(serial)
    with device.cond:
        device.advance()
        device.dropped += len(device.queue)
        device.queue.clear()
        device.stall_until_s = device.clock.now_s() + duration_s


def inject_incomplete(serial: str, count: int = 1) -> None:
    """The next ``count`` frames handed to the application are incomplete (missing packets):
    frames already queued first, then new exposures."""
    device = BUS.device(serial)
    with device.cond:
        device.advance()
        marked = min(int(count), len(device.queue))
        for i in range(marked):
            index, time_s, _ = device.queue[i]
            device.queue[i] = (index, time_s, SPINNAKER_IMAGE_STATUS_MISSING_PACKETS)
        device.pending_incomplete += int(count) - marked


def drop_frames(serial: str, count: int = 1) -> None:
    """The next ``count`` frames are lost in transport (the frame ID jumps): frames already
    queued first, then new exposures."""
    device = BUS.device(serial)
    with device.cond:
        device.advance()
        removed = min(int(count), len(device.queue))
        for _ in range(removed):
            device.queue.popleft()
        device.dropped += removed
        device.pending_drops += int(count) - removed


def inject_error(serial: str, errorcode: int, count: int = 1) -> None:
    """The next ``count`` ``GetNextImage`` calls raise SpinnakerException(``errorcode``)."""
    device = BUS.device(serial)
    with device.cond:
        device.pending_errors.extend([int(errorcode)] * int(count))


def set_in_use(serial: str, in_use: bool = True) -> None:
    """Pretend another process holds the camera: ``Init`` raises -1004."""
    BUS.device(serial).in_use_elsewhere = bool(in_use)


def write_log(serial: str) -> list[tuple[str, Any]]:
    """Every successful node write (name, value read back) and Begin/EndAcquisition, in order."""
    return list(BUS.device(serial).log)


def clear_write_log(serial: str) -> None:
    BUS.device(serial).log.clear()


def stream_stats(serial: str) -> dict[str, int]:
    """Buffer-pool counters: ``outstanding`` (delivered, not released), ``queued``, ``produced``,
    ``dropped``, ``delivered``, ``buffers``, ``held_in_camera`` (frames waiting in camera memory)."""
    d = BUS.device(serial)
    with d.cond:
        return {"outstanding": d.outstanding, "queued": len(d.queue), "produced": d.produced, "dropped": d.dropped,
                "delivered": d.delivered, "buffers": d.buffer_count(), "held_in_camera": len(d.held)}


def is_initialised(serial: str) -> bool:
    """True if the camera is initialised (by anyone)."""
    return BUS.device(serial).initialised


def system_reference_count() -> int:
    """How many ``GetInstance`` references are held."""
    return BUS.system_refs


def initialised_serials() -> list[str]:
    """Serials of attached cameras that are initialised now."""
    return [serial for serial, device in BUS.devices.items() if device.initialised]


def set_isvalid_semantics(mode: str) -> None:
    """``"presence"`` (default): ``CameraPtr.IsValid()`` turns False on unplug; ``"pointer"``: it stays True
    (IsValid only checks the pointer), the behaviour drivers must survive if the real SDK does that."""
    if mode not in ("presence", "pointer"):
        raise ValueError(f"mode must be 'presence' or 'pointer', got {mode!r}")
    BUS.isvalid_tracks_presence = mode == "presence"


def reset() -> None:
    """Forget every camera, the System instance, handlers and references (between tests)."""
    for device in list(BUS.devices.values()):
        with device.cond:
            device.end()
        stop_pump(device)
    BUS.clear()
    BUS.isvalid_tracks_presence = True
