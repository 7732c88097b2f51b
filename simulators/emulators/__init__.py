"""operascope.simulators.emulators."""
