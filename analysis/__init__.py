"""operascope analysis package."""
