"""ldm.eval."""
