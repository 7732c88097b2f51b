"""``operascope selftest``: a safe bring-up of a rig, one device at a time.

Every step prints one line ``[pass|FAIL|skip] <device>: <step> - <detail>`` and, on failure, what to do.
Order: stage, LED, focus laser, camera, focus sensor, potentiostat. A device that fails to open is
reported and the next device is tried; the exit status is 1 if any step failed.

Safety: the stage moves only with moves allowed (no ``--no-move``), by ``MOVE_NM`` and back, and only if
both targets lie inside the configured soft limits; the LED and the laser emit only at their lowest
setting and are switched off again in a ``finally`` (also on Ctrl-C, which exits 130); every opened
device is closed (the drivers leave themselves safe on close). Nothing here imports Qt.
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable


log = logging.getLogger(__name__)

MOVE_NM = 100.0
CAMERA_FRAMES = 10
OCV_S = 10.0
LED_LOWEST_A = 0.01  # 10 mA: visible, far below any LED's rating
LASER_LOWEST_W = 0.001  # used when the laser's own lower limit is 0
POSITION_TOLERANCE_NM = 20.0
BIT_DEPTH = {"Mono8": 8, "Mono12Packed": 12, "Mono12p": 12, "Mono16": 16}
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


class StepStatus(str, Enum):
    PASSED = "pass"
    FAILED = "FAIL"
    SKIPPED = "skip"


@dataclass(frozen=True)
class StepResult:
    """One printed line of the self-test."""

    device: str
    step: str
    status: StepStatus
    detail: str = ""
    advice: str = ""

    def line(self) -> str:
        text = f"[{self.status.value}] {self.device}: {self.step}"
        if self.detail:
            text += f" - {self.detail}"
        if self.advice and self.status is StepStatus.FAILED:
            text += f"\n       what to do: {self.advice}"
        return text


@dataclass
class SelfTestReport:
    """Every step's result, in order."""

    results: list[StepResult] = field(default_factory=list)
    interrupted: bool = False

    @property
    def failed(self) -> list[StepResult]:
        return [r for r in self.results if r.status is StepStatus.FAILED]

    @property
    def exit_status(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if self.failed else EXIT_OK


class StepFailed(Exception):
    """A check did not hold; ``advice`` says what to do."""

    def __init__(self, message: str, advice: str = "") -> None:
        super().__init__(message)
        self.advice = advice


ADVICE = {
    "stage": "check the AMC100 network cable and address (host/port in [devices.stage]), that the controller is powered "
             "and that its web page answers",
    "led": "check the DC2200 USB cable, the VISA installation (NI-VISA or pyvisa-py) and the resource name in [devices.led]",
    "focus_laser": "check the laser's serial port and power, the key switch and the interlock connector",
    "camera": "check the camera's USB3 cable and that SpinView sees it; close SpinView before running operascope",
    "focus_sensor": "check the focus-sensor camera's USB3 cable and serial/index in [devices.focus_sensor]",
    "potentiostat": "check the potentiostat's USB/Ethernet link, that EC-Lab is closed and the channel number",
}


class SelfTest:
    """Runs the steps against an assembled (not opened) rig; collects results; never raises (but Ctrl-C)."""

    def __init__(self, rig: Any, move: bool = True, ocv_s: float = OCV_S, out: Callable[[str], None] = print) -> None:
        self.rig = rig
        self.move = move
        self.ocv_s = ocv_s
        self.out = out
        self.report = SelfTestReport()
        self._opened: list[Any] = []

    # ------------------------------------------------------------------ bookkeeping

    def _record(self, device: str, step: str, status: StepStatus, detail: str = "", advice: str = "") -> None:
        result = StepResult(device, step, status, detail, advice)
        self.report.results.append(result)
        log.info("selftest %s %s: %s %s", device, step, status.value, detail)
        self.out(result.line())

    def _step(self, device: str, step: str, action: Callable[[], str]) -> bool:
        """Run ``action`` (returns the detail); record pass/fail; False on failure."""
        try:
            detail = action()
        except StepFailed as exc:
            self._record(device, step, StepStatus.FAILED, str(exc), exc.advice or ADVICE.get(device, ""))
            return False
        except Exception as exc:  # noqa: BLE001 - every device error becomes a FAIL line naming the step
            self._record(device, step, StepStatus.FAILED, f"{type(exc).__name__}: {exc}", ADVICE.get(device, ""))
            return False
        self._record(device, step, StepStatus.PASSED, detail)
        return True

    def _identify(self, role: str) -> bool:
        device = self.rig.devices[role]

        def identify() -> str:
            device.open()
            self._opened.append(device)
            info = device.info()
            return f"model {info.model}, serial {info.serial or '?'}, firmware {info.firmware or '?'}"

        return self._step(role, "identify", identify)

    def make_safe(self) -> None:
        """LED and laser off, stage halted, every opened device closed (never raises)."""
        for role, action in (("led", lambda d: d.enable(False)), ("focus_laser", lambda d: d.enable(False)),
                             ("stage", lambda d: d.halt()), ("potentiostat", lambda d: d.stop())):
            device = self.rig.devices.get(role)
            if device is not None and device in self._opened:
                try:
                    action(device)
                except Exception as exc:  # noqa: BLE001 - keep making the others safe
                    log.warning("selftest: making %s safe failed: %s", role, exc)
        while self._opened:
            device = self._opened.pop()
            try:
                device.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("selftest: closing %s failed: %s", device.name, exc)

    # ------------------------------------------------------------------ run

    def run(self) -> SelfTestReport:
        try:
            for role, test in (("stage", self._test_stage), ("led", self._test_led), ("focus_laser", self._test_laser),
                               ("camera", self._test_camera), ("focus_sensor", self._test_focus_sensor),
                               ("potentiostat", self._test_potentiostat)):
                if self._identify(role):
                    try:
                        test(self.rig.devices[role])
                    finally:
                        self.make_safe()
        except KeyboardInterrupt:
            self.report.interrupted = True
            self.out("selftest interrupted: making every device safe")
        finally:
            self.make_safe()
        return self.report

    # ------------------------------------------------------------------ devices

    def _test_stage(self, stage: Any) -> None:
        positions: dict[str, float] = {}

        def read() -> str:
            positions.update(stage.position_nm())
            return ", ".join(f"{axis} {value:.0f} nm" for axis, value in positions.items())

        if not self._step("stage", "read positions", read):
            return
        for axis_name, start_nm in positions.items():
            step = f"axis {axis_name}: {MOVE_NM:.0f} nm closed-loop move and back"
            if not self.move:
                self._record("stage", step, StepStatus.SKIPPED, "--no-move")
                continue
            self._step("stage", step, lambda a=axis_name, s=start_nm: self._move_and_back(stage.axis(a), s))

    def _move_and_back(self, axis: Any, start_nm: float) -> str:
        low, high = axis.limits_nm
        target = start_nm + MOVE_NM if start_nm + MOVE_NM <= high else start_nm - MOVE_NM
        if not (low <= target <= high and low <= start_nm <= high):
            raise StepFailed(f"position {start_nm:.0f} nm or target {target:.0f} nm is outside the soft limits "
                             f"[{low:.0f}, {high:.0f}] nm; nothing was moved",
                             "move the axis inside its soft limits by hand, or correct limits_nm in [devices.stage]")
        reached = []
        for goal in (target, start_nm):
            axis.move_to(goal)
            position = axis.wait_settled(timeout_s=10.0)
            if abs(position - goal) > POSITION_TOLERANCE_NM:
                raise StepFailed(f"went to {goal:.0f} nm but reads {position:.0f} nm (tolerance {POSITION_TOLERANCE_NM:.0f} nm)",
                                 "check the sensor cable of this axis and the closed-loop settings (target range)")
            reached.append(position)
        return f"{start_nm:.0f} -> {reached[0]:.0f} -> {reached[1]:.0f} nm"

    def _test_led(self, led: Any) -> None:
        if not self._step("led", "interlock", lambda: _interlock_detail(led.state().interlock_ok)):
            return
        current_a = min(LED_LOWEST_A, led.max_current_a)

        def emit() -> str:
            try:
                led.set_current(current_a)
                led.enable(True)
                state = led.state()
            finally:
                led.enable(False)
            if not state.enabled or not math.isclose(state.current_setpoint_a, current_a, rel_tol=0.01, abs_tol=1e-4):
                raise StepFailed(f"read back enabled={state.enabled}, setpoint {state.current_setpoint_a:g} A "
                                 f"(asked on at {current_a:g} A)", "check the LED head cable and the DC2200 front panel")
            off = led.state()
            if off.enabled:
                raise StepFailed("the LED reads back ON after switching it off", "switch the DC2200 output off by hand")
            return f"on at {current_a * 1000:.0f} mA, measured {state.measured_current_a * 1000:.1f} mA, then off"

        self._step("led", "on at lowest current, read back, off", emit)

    def _test_laser(self, laser: Any) -> None:
        if not self._step("focus_laser", "interlock", lambda: _interlock_detail(laser.state().interlock_ok)):
            return
        low, high = laser.power_limits_w
        power_w = low if low > 0 else min(LASER_LOWEST_W, high)

        def emit() -> str:
            try:
                laser.set_power(power_w)
                laser.enable(True)
                state = laser.state()
            finally:
                laser.enable(False)
            if not state.enabled:
                raise StepFailed(f"emission not on after enable (fault word 0x{state.fault_word:x})",
                                 "check the key switch, the interlock and the laser's fault LED")
            if laser.state().enabled:
                raise StepFailed("the laser reads back emitting after switching it off", "switch the laser off at its key")
            return f"on at {power_w * 1000:.1f} mW, read {state.power_w * 1000:.2f} mW, then off"

        self._step("focus_laser", "on at lowest power, read back, off", emit)

    def _test_camera(self, camera: Any) -> None:
        acq = self.rig.config.acquisition
        bits = BIT_DEPTH.get(acq.pixel_format, 16)

        def grab() -> str:
            from operascope.devices.base import Roi

            roi = Roi(*acq.roi) if acq.roi else None
            camera.configure(acq.exposure_ms, acq.frame_rate_hz, roi, acq.pixel_format, acq.gain_db)
            frames = []
            camera.start()
            try:
                for _ in range(CAMERA_FRAMES):
                    frames.append(camera.read(timeout_s=max(2.0, 5.0 / acq.frame_rate_hz)))
            finally:
                camera.stop()
            return _frame_figures(frames, bits)

        self._step("camera", f"{CAMERA_FRAMES} frames at {acq.exposure_ms:g} ms, {acq.frame_rate_hz:g} Hz, {acq.pixel_format}", grab)

    def _test_focus_sensor(self, sensor: Any) -> None:
        def profile() -> str:
            values = sensor.read_profile(timeout_s=2.0).values
            if values.size != sensor.n_pixels:
                raise StepFailed(f"profile has {values.size} pixels, expected {sensor.n_pixels}", "check roi in [devices.focus_sensor]")
            return f"{values.size} px, min {values.min():.0f}, max {values.max():.0f} counts"

        self._step("focus_sensor", "read one profile", profile)

    def _test_potentiostat(self, potentiostat: Any) -> None:
        from operascope.devices.base import OCV

        def ocv() -> str:
            clock = self.rig.clock
            points = []
            potentiostat.start(OCV(duration_s=self.ocv_s, record_every_s=1.0))
            deadline = clock.now_s() + self.ocv_s + 10.0
            try:
                while potentiostat.is_running() and clock.now_s() < deadline:
                    clock.sleep_s(0.25)
                    points += potentiostat.read_new()
                points += potentiostat.read_new()
            finally:
                potentiostat.stop()
            if potentiostat.end_reason() not in ("duration", "running", "stopped") or not points:
                raise StepFailed(f"OCV ended by {potentiostat.end_reason()!r} with {len(points)} points",
                                 "check the cell connections and the channel in EC-Lab")
            volts = [p.voltage_v for p in points]
            if not all(math.isfinite(v) for v in volts):
                raise StepFailed("OCV returned non-finite voltages", "check the cell connections")
            return f"{len(points)} points over {self.ocv_s:g} s, {min(volts):.4f}..{max(volts):.4f} V"

        self._step("potentiostat", f"{self.ocv_s:g} s OCV", ocv)


def _interlock_detail(ok: bool) -> str:
    if not ok:
        raise StepFailed("interlock open: the source refuses to emit", "close the interlock (enclosure lid / connector)")
    return "closed"


def _frame_figures(frames: list[Any], bits: int) -> str:
    """fps from camera timestamps, bit depth, saturated fraction of the last frame."""
    ids = [f.frame_id for f in frames]
    times_ns = [f.camera_time_ns for f in frames]
    span_s = (times_ns[-1] - times_ns[0]) * 1e-9
    fps = (len(frames) - 1) / span_s if span_s > 0 else float("nan")
    pixels = frames[-1].pixels
    full_scale = 2 ** bits - 1 if int(pixels.max(initial=0)) <= 2 ** bits - 1 else 65535  # Mono12 may be MSB-aligned
    import numpy as np

    saturated = float(np.mean(pixels >= full_scale))
    dropped = ids[-1] - ids[0] - (len(ids) - 1)
    detail = (f"{fps:.2f} fps (camera clock), {bits}-bit, max {int(pixels.max())} counts, {saturated * 100:.2f} % saturated, "
              f"{dropped} dropped")
    if saturated > 0.01:
        raise StepFailed(detail, "lower the LED current or the exposure time in [acquisition]")
    return detail


# --------------------------------------------------------------------------- command line


def add_parser(sub: Any) -> None:
    """Register ``operascope selftest`` on the CLI's sub-parsers."""
    parser = sub.add_parser("selftest", help="safe bring-up: identify, move, emit and read each device once")
    parser.add_argument("--config", help="rig TOML (default: the simulated rig)")
    parser.add_argument("--no-move", action="store_true", help="do not move the stage (read positions only)")


def run_selftest(config: Any, move: bool = True, ocv_s: float = OCV_S, out: Callable[[str], None] = print,
                 build: Callable[[Any], Any] | None = None) -> SelfTestReport:
    """Build the rig of ``config``, run every step, tear it down; the report of every step."""
    from operascope.acquisition.rig import build_rig

    report = SelfTestReport()
    try:
        rig = (build or build_rig)(config)
    except Exception as exc:  # noqa: BLE001 - a driver that cannot be loaded is a failed step too
        device = getattr(exc, "device", "rig")  # a DeviceError names its device
        result = StepResult(device, "assemble drivers (and emulators)", StepStatus.FAILED, f"{type(exc).__name__}: {exc}",
                            ADVICE.get(device, "install the vendor SDK named above, or fix the driver in the config"))
        out(result.line())
        report.results.append(result)
        return report
    try:
        report = SelfTest(rig, move=move, ocv_s=ocv_s, out=out).run()
    finally:
        for problem in rig.close():
            out(f"[warn] {problem}")
    failed = report.failed
    out(f"selftest: {len(report.results) - len(failed)} steps passed, {len(failed)} failed"
        + (f" (first: {failed[0].device}: {failed[0].step})" if failed else ""))
    return report


def run(args: argparse.Namespace) -> int:
    """``operascope selftest`` entry point: exit status 0 all passed, 1 a step failed, 130 interrupted."""
    from operascope.config.loader import load_config

    config = load_config(args.config)
    return run_selftest(config, move=not args.no_move).exit_status
