"""Errors raised by the analysis package."""

from __future__ import annotations


class RunFileError(ValueError):
    """A run file (or GITT data file) is missing, truncated, empty or not an operascope file.

    The message always names the file and what is missing or wrong.
    """
