"""operascope selftest against the emulated rig: passes; a stopped emulator or an injected fault names the device
and step, exits 1 and leaves the LED and the laser off; Ctrl-C makes everything safe (exit 130)."""

from __future__ import annotations

import pytest

from operascope.acquisition import selftest
from operascope.acquisition.cli import main
from operascope.acquisition.rig import build_rig
from operascope.config.loader import load_config, preset_path
from operascope.simulators.emulators.amc100 import Amc100Server


def emulated(faults: list[dict] | None = None):
    sim = {"speed": 20.0}
    if faults:
        sim["faults"] = faults
    return load_config(preset_path("emulated"), overrides={"simulation": sim})


class Capture:
    """build_rig that remembers the rig (to look at the world afterwards)."""

    def __init__(self) -> None:
        self.rig = None
        self.moves: list[tuple[str, float]] = []

    def __call__(self, config):
        self.rig = build_rig(config)
        world_move = self.rig.world.stage_move

        def stage_move(axis: str, target_nm: float) -> None:
            self.moves.append((axis, target_nm))
            world_move(axis, target_nm)

        self.rig.world.stage_move = stage_move
        return self.rig


def run(config, **kwargs):
    lines: list[str] = []
    capture = Capture()
    report = selftest.run_selftest(config, ocv_s=2.0, out=lines.append, build=capture, **kwargs)
    return report, lines, capture


def test_emulated_rig_passes_every_step() -> None:
    report, lines, capture = run(emulated())
    rig = capture.rig
    assert report.exit_status == 0, "\n".join(lines)
    far = [axis for axis, target in capture.moves if abs(target) > 50.0]  # open() holds each axis where it is
    assert far == ["x", "y", "z"], capture.moves
    steps = {(r.device, r.step) for r in report.results}
    for role in ("stage", "led", "focus_laser", "camera", "focus_sensor", "potentiostat"):
        assert (role, "identify") in steps
    moves = [r for r in report.results if r.device == "stage" and "move" in r.step]
    assert len(moves) == 3 and all(r.status is selftest.StepStatus.PASSED for r in moves)
    assert any(r.device == "camera" and "fps" in r.detail and "16-bit" in r.detail for r in report.results)
    assert not capture.rig.world.led_enabled and not capture.rig.world.laser_enabled
    assert lines[-1].startswith("selftest: 17 steps passed, 0 failed")


def test_no_move_skips_every_stage_move_and_moves_nothing() -> None:
    report, _, capture = run(emulated(), move=False)
    moves = [r for r in report.results if r.device == "stage" and "move" in r.step]
    assert [r.status for r in moves] == [selftest.StepStatus.SKIPPED] * 3
    assert report.exit_status == 0
    assert all(abs(target) < 10.0 for _, target in capture.moves), capture.moves  # only open()'s hold-in-place


def test_stopped_stage_emulator_names_the_stage_and_step(monkeypatch) -> None:
    original = Amc100Server.start

    def start_then_stop(self):
        endpoint = original(self)
        self.stop()
        return endpoint

    monkeypatch.setattr(Amc100Server, "start", start_then_stop)
    report, lines, capture = run(emulated())
    assert report.exit_status == 1
    first = report.failed[0]
    assert (first.device, first.step) == ("stage", "identify")
    assert "what to do" in "\n".join(lines) and "stage: identify" in lines[-1]
    assert any(r.device == "led" and r.status is selftest.StepStatus.PASSED for r in report.results)  # went on
    assert not capture.rig.world.led_enabled and not capture.rig.world.laser_enabled


def test_laser_interlock_fault_fails_the_laser_and_leaves_light_off() -> None:
    report, lines, capture = run(emulated([{"device": "focus_laser", "kind": "interlock_trip", "at_s": 0.0, "duration_s": 1e6}]))
    assert report.exit_status == 1
    failed = {(r.device, r.step) for r in report.failed}
    assert ("focus_laser", "interlock") in failed or ("focus_laser", "on at lowest power, read back, off") in failed
    assert all(r.device == "focus_laser" for r in report.failed), lines
    assert not capture.rig.world.led_enabled and not capture.rig.world.laser_enabled


def test_led_lost_before_start_names_the_led() -> None:
    report, lines, capture = run(emulated([{"device": "led", "kind": "device_lost", "at_s": 0.0, "duration_s": 1e6}]))
    assert report.exit_status == 1
    assert report.failed[0].device == "led" and report.failed[0].step.startswith("assemble"), lines
    assert capture.rig is None


def test_led_interlock_fault_fails_the_led_and_leaves_light_off() -> None:
    report, lines, capture = run(emulated([{"device": "led", "kind": "interlock_trip", "at_s": 0.0, "duration_s": 1e6}]))
    assert report.exit_status == 1
    assert {r.device for r in report.failed} == {"led"}, lines
    assert not capture.rig.world.led_enabled and not capture.rig.world.laser_enabled


def test_ctrl_c_while_the_laser_is_open_makes_everything_safe() -> None:
    lines: list[str] = []

    def out(line: str) -> None:
        lines.append(line)
        if "focus_laser: on at lowest power" in line:
            raise KeyboardInterrupt

    capture = Capture()
    report = selftest.run_selftest(emulated(), ocv_s=2.0, out=out, build=capture)
    assert report.interrupted and report.exit_status == 130
    assert not capture.rig.world.led_enabled and not capture.rig.world.laser_enabled
    assert not any(d.is_open for d in capture.rig.devices.values())
    assert not any("camera" in line for line in lines)


def test_cli_selftest_exit_status(capsys) -> None:
    assert main(["selftest", "--config", str(preset_path("emulated")), "--no-move"]) == 0
    out = capsys.readouterr().out
    assert "[skip] stage: axis x" in out and "selftest:" in out
    assert main(["selftest", "--config", "/nonexistent/rig.toml"]) == 2
