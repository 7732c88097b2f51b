"""Helpers for the Biologic driver tests: a simulated channel behind the fake EC-Lab library, the driver on it."""

from __future__ import annotations

import itertools
import time
from typing import Iterator

from operascope.config.loader import load_config
from operascope.devices.biologic import BiologicPotentiostat
from operascope.simulators.devices.backends import build_simulated_devices
from operascope.simulators.emulators import fake_eclib
from operascope.simulators.world.world import World

FAKE = "operascope.simulators.emulators.fake_eclib"
_addresses = itertools.count()


def fast_world(speed: float = 400.0) -> World:
    """A simulated world whose clock runs ``speed`` times real time."""
    return World(load_config(overrides={"simulation": {"speed": speed}}))


def attached_channel(world: World, channel: int, prefix: str) -> Iterator[str]:
    """Serve the world's potentiostat as ``channel`` of a fake instrument; yields its address, then detaches."""
    name = f"{prefix}-VMP300-{next(_addresses)}"
    fake_eclib.attach(name, build_simulated_devices(world)["potentiostat"], channel=channel, clock=world.clock)  # type: ignore[arg-type]
    try:
        yield name
    finally:
        fake_eclib.detach(name)


def make_driver(address: str, world: World, channel: int, timeout_s: float, **kw) -> BiologicPotentiostat:
    """The real driver on the fake library (keyword overrides replace the defaults)."""
    options = dict(address=address, channel=channel, library=FAKE, timeout_s=timeout_s, clock=world.clock)
    options.update(kw)
    return BiologicPotentiostat(**options)


def read_until_stopped(pot: BiologicPotentiostat, timeout_s: float = 5.0) -> list:
    """Every point until the running technique ends (AssertionError after ``timeout_s``)."""
    points, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        points += pot.read_new()
        if not pot.is_running():
            return points + pot.read_new()
        time.sleep(0.02)
    raise AssertionError("technique did not end")
