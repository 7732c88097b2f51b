"""operascope config package."""
