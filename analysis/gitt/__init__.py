"""operascope.analysis.gitt."""
