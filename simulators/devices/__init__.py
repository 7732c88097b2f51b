"""operascope.simulators.devices."""
