"""ldm.train."""
