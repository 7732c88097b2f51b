"""Safe manual control enforced by the engine (issue 20 item 1), through the Python API."""

from __future__ import annotations

import h5py
import pytest

from operascope.acquisition.manual_control import ManualControl, ManualMoveRefused, format_si, format_um
from operascope.acquisition.microscope import Microscope
from operascope.analysis import runfile_layout as L
from operascope.config.loader import ConfigError
from operascope.config.schema import ManualControlConfig

TEN_MM_NM = 10_000_000.0


def _event_messages(path) -> list[str]:
    with h5py.File(path, "r") as f:
        messages = f[L.EVENTS]["message"][()]
    return [m.decode() if isinstance(m, bytes) else str(m) for m in messages]


def test_a_10_mm_z_move_in_a_locked_recording_is_refused_and_a_confirmed_move_is_in_the_run_file(tmp_path):
    path = tmp_path / "manual.h5"
    with Microscope.from_config(None, speed=20, seed=2, frame_rate_hz=4.0, bin_size=2) as scope:
        scope.laser.set_power(scope.config.focus_lock.laser_power_w)
        scope.laser.enable(True)
        scope.focus_lock.lock()
        scope.start_recording(path)
        z0 = scope.stage.position_nm()["z"]
        with pytest.raises(ManualMoveRefused) as refused:
            scope.manual.move_stage({"z": z0 + TEN_MM_NM}, origin="test")
        assert refused.value.needs_confirmation
        message = str(refused.value)
        assert "focus lock is active" in message and "recording is running" in message and "larger than 50" in message
        assert abs(scope.stage.axis("z").target_nm() - z0) < 1000.0   # nothing was commanded
        x0 = scope.stage.position_nm()["x"]
        scope.manual.move_stage({"x": x0 + 2000.0}, confirmed=True, origin="test")
        assert scope.stage.axis("x").target_nm() == pytest.approx(x0 + 2000.0)
        scope.manual.enable_led(True, origin="test")
        scope.stop_recording()
    events = _event_messages(path)
    assert any("manual move needs confirmation (test)" in m and "z" in m for m in events)
    confirmed = [m for m in events if m.startswith("manual move (test)")]
    assert len(confirmed) == 1 and "confirmed" in confirmed[0] and "a recording is running" in confirmed[0]
    assert any("LED switched on (test)" in m for m in events)


class FakeAxis:
    def __init__(self, position_nm: float = 0.0, limits_nm=(-12_500_000.0, 12_500_000.0)) -> None:
        self.position = position_nm
        self.limits_nm = limits_nm
        self.moves: list[float] = []

    def position_nm(self) -> float:
        return self.position


class FakeStage:
    def __init__(self) -> None:
        self.axes = {a: FakeAxis() for a in ("x", "y", "z")}
        self.moves: list[dict] = []

    def axis(self, name: str) -> FakeAxis:
        return self.axes[name]

    def move_to(self, **targets: float) -> None:
        self.moves.append(targets)


class FakeRig:
    def __init__(self) -> None:
        self.stage = FakeStage()


def _control(lock=False, recording=False, **config):
    rig, events = FakeRig(), []
    control = ManualControl(ManualControlConfig(**config), lambda: rig, lambda: lock, lambda: recording,
                            lambda level, source, message: events.append((level, source, message)))
    return control, rig, events


def test_small_moves_pass_large_moves_ask_and_a_confirmation_moves():
    control, rig, events = _control()
    control.move_stage({"z": 40_000.0})
    assert rig.stage.moves == [{"z": 40_000.0}] and events[-1][0] == "info"
    with pytest.raises(ManualMoveRefused, match="larger than 50 µm") as refused:
        control.move_stage({"z": 60_000.0})
    assert refused.value.needs_confirmation and len(rig.stage.moves) == 1 and events[-1][0] == "warning"
    control.move_stage({"z": 60_000.0}, confirmed=True)
    assert rig.stage.moves[-1] == {"z": 60_000.0}


def test_safe_range_and_soft_limits_are_never_overridden():
    control, rig, events = _control(z_safe_range_um=(-100.0, 200.0))
    with pytest.raises(ManualMoveRefused, match="safe range") as refused:
        control.move_stage({"z": 300_000.0}, confirmed=True)
    assert not refused.value.needs_confirmation and rig.stage.moves == []
    rig.stage.axes["x"].limits_nm = (-1000.0, 1000.0)
    with pytest.raises(ManualMoveRefused, match="soft limits"):
        control.move_stage({"x": 2000.0}, confirmed=True)
    with pytest.raises(ManualMoveRefused, match="not a finite number"):
        control.move_stage({"z": float("nan")}, confirmed=True)
    assert rig.stage.moves == []


def test_lock_or_recording_alone_need_confirmation_even_for_a_tiny_move():
    for flags in ({"lock": True}, {"recording": True}):
        control, rig, _ = _control(**flags)
        with pytest.raises(ManualMoveRefused, match="confirm"):
            control.move_stage({"x": 10.0})
        assert rig.stage.moves == []


def test_config_refuses_an_inverted_safe_range():
    with pytest.raises(ValueError, match="low must be below high"):
        ManualControlConfig(z_safe_range_um=(5.0, -5.0))
    with pytest.raises(ConfigError):
        Microscope.from_config(None, manual_control={"confirm_above_z_um": -1})


def test_formats_have_no_negative_zero_and_si_prefixes():
    assert format_um(-0.0001) == "0.000 µm"
    assert format_um(-1500.0) == "-1.500 µm"
    assert format_si(0.0123, "A") == "12.3 mA"
    assert format_si(-4.56e-6, "A") == "-4.56 µA"
    assert format_si(0.0, "A") == "0 A"
