"""Fixtures of the driver tests."""

from __future__ import annotations

import pytest

from operascope.simulators.emulators import fake_pyspin


@pytest.fixture
def fake():
    """A clean fake PySpin bus (no camera attached, no reference held), cleaned again afterwards."""
    fake_pyspin.reset()
    yield fake_pyspin
    fake_pyspin.reset()
