"""ldm.data."""
