"""operascope devices package."""
