"""ldm.refgen."""
