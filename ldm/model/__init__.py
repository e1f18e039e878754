"""ldm.model."""
