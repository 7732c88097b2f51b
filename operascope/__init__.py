"""operascope: control and analysis software for an operando optical scattering microscope.

Sub-packages: ``operascope.devices`` (instrument interfaces and drivers), ``operascope.simulators``
(the simulated world, simulated backends and protocol emulators), ``operascope.acquisition`` (the engine
and the CLI), ``operascope.analysis`` (run files to figures), ``operascope.gui`` (the PyQt5 window) and
``operascope.config`` (validated TOML configuration). Importing this package does no work.
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """``operascope.__version__``: the installed distribution's version, looked up on first use."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("operascope")
        except PackageNotFoundError:
            return "0+unknown"
    raise AttributeError(f"module 'operascope' has no attribute {name!r}")
