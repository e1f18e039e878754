"""Environment hub: many Gym/Gymnasium libraries, each isolated, behind one Gymnasium API."""
