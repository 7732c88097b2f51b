"""operascope.analysis.particle_model."""
