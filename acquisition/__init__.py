"""operascope acquisition package."""
