"""operascope simulators package."""
