"""operascope gui package."""
