"""operascope.simulators.world."""
